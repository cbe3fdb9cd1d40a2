//! The C shim's services (`xen/common/v4v.c`, declared in `xen/v4v.h` by
//! the patch series in `xen-patches/`).
//!
//! The signatures here and there must agree; both sides use fixed-width
//! types (`domid_t` is `uint16_t`, `size_t` is `usize`, C `bool` is Rust
//! `bool`). Functions without preconditions are declared `safe`.
//!
//! SAFETY (of the block): each declaration matches the C prototype in
//! `xen/include/xen/v4v.h` of the patch series (argument and return types
//! of the same size and ABI class), and the shim defines every one; a
//! function declared `safe` has no precondition a caller could break.
//! `scripts/ffi-check.py` (run by `make abi-check` on each patched tree)
//! enforces the first part: the same functions here and in the header,
//! and for each the same number of parameters, integer widths and
//! signedness, pointer constness at every level and return (`!` for
//! `noreturn`); the same for the `v4v_rs_*` definitions in `mod.rs`. The
//! C compiler holds the shim's definitions to that header, and Xen's link
//! fails if one the engine calls is missing. That a `safe` function has no
//! precondition is checked by review alone.
use core::ffi::c_void;

unsafe extern "C" {
    /// Copy `len` bytes from guest virtual address `src` of the current
    /// vCPU to `dst`. 0, or -EFAULT for a bad or hypervisor address.
    pub fn v4v_shim_copy_from_guest(dst: *mut u8, src: u64, len: usize) -> i32;
    /// Read one byte of every page of guest range `[addr, addr + len)` of
    /// the current vCPU (`len > 0`), in one call. 0, or -EFAULT at the first
    /// page that cannot be read.
    pub safe fn v4v_shim_probe_guest(addr: u64, len: u64) -> i32;
    /// Copy `len` bytes from `src` to guest virtual address `dst` of the
    /// current vCPU. 0, or -EFAULT.
    pub fn v4v_shim_copy_to_guest(dst: u64, src: *const u8, len: usize) -> i32;
    /// Id of the domain making the current hypercall.
    pub safe fn v4v_shim_current_domid() -> u16;
    /// The current vCPU's number within its domain.
    pub safe fn v4v_shim_current_vcpu() -> u32;
    /// XSM (`xsm_v4v_use`): may the current domain use V4V? 0, or -EPERM.
    pub safe fn v4v_shim_xsm_use() -> i32;
    /// XSM: may the current domain register a ring for `partner`
    /// (`xsm_v4v_register_single_source`), or for any sender
    /// (`xsm_v4v_register_any_source`: `partner` is `V4V_DOMID_ANY` or names
    /// no domain)? 0, or -EPERM.
    pub safe fn v4v_shim_xsm_register(partner: u16) -> i32;
    /// XSM (`xsm_v4v_send`): may the current domain send to domain `dst`?
    /// 0, -EPERM, or -ESRCH when there is no domain `dst`.
    pub safe fn v4v_shim_xsm_send(dst: u16) -> i32;
    /// XSM (`xsm_v4v_viptables`; the dummy module: the control domain
    /// only): may the current domain list and change the viptables? 0, or
    /// -EPERM.
    pub safe fn v4v_shim_xsm_viptables() -> i32;
    /// Pin frame `gfn` of the current domain as a writable RAM page.
    /// 0 (and `*page` set) or -EINVAL.
    pub fn v4v_shim_pin_frame(gfn: u64, page: *mut *mut c_void) -> i32;
    /// `vmap` the `nr` pinned pages at `pages` contiguously, in order; null
    /// when out of memory or address space.
    pub fn v4v_shim_map_frames(pages: *const *mut c_void, nr: usize) -> *mut c_void;
    /// `vunmap` a mapping from `v4v_shim_map_frames`.
    pub fn v4v_shim_unmap_frames(va: *mut c_void);
    /// Undo one successful `v4v_shim_pin_frame`.
    pub fn v4v_shim_unpin_frame(page: *mut c_void);
    /// Raise VIRQ_V4V in domain `domid` if it exists.
    pub safe fn v4v_shim_raise_virq(domid: u16);
    /// `_xmalloc(size, align)`: null when out of memory.
    pub fn v4v_shim_alloc(size: usize, align: usize) -> *mut u8;
    /// `xfree(ptr)`.
    pub fn v4v_shim_free(ptr: *mut u8);
    /// `printk("%.*s")` of `len` bytes at `s`.
    pub fn v4v_shim_print(s: *const u8, len: usize);
    /// Xen `panic()` with the message at `s`.
    pub fn v4v_shim_panic(s: *const u8, len: usize) -> !;
    /// A new `spinlock_t` (`xmalloc` and `spin_lock_init`); null when out
    /// of memory.
    pub safe fn v4v_shim_spin_alloc() -> *mut c_void;
    /// Free a lock from `v4v_shim_spin_alloc` (not held).
    pub fn v4v_shim_spin_free(lock: *mut c_void);
    /// `spin_lock` / `spin_unlock` on a lock from `v4v_shim_spin_alloc`.
    pub fn v4v_shim_spin_lock(lock: *mut c_void);
    pub fn v4v_shim_spin_unlock(lock: *mut c_void);
    /// A new `rwlock_t` (`xmalloc` and `rwlock_init`); null when out of
    /// memory.
    pub safe fn v4v_shim_rw_alloc() -> *mut c_void;
    /// Free a lock from `v4v_shim_rw_alloc` (not held).
    pub fn v4v_shim_rw_free(lock: *mut c_void);
    /// `read_lock`, `read_unlock`, `write_lock`, `write_unlock`.
    pub fn v4v_shim_read_lock(lock: *mut c_void);
    pub fn v4v_shim_read_unlock(lock: *mut c_void);
    pub fn v4v_shim_write_lock(lock: *mut c_void);
    pub fn v4v_shim_write_unlock(lock: *mut c_void);
    /// `hypercall_preempt_check()`.
    pub safe fn v4v_shim_preempt_check() -> bool;
    /// `hypercall_create_continuation(__HYPERVISOR_v4v_op, ...)` with the
    /// six arguments; returns what the hypercall must return now.
    pub safe fn v4v_shim_continuation(cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32)
        -> i64;
    /// `process_pending_softirqs()`.
    pub safe fn v4v_shim_process_softirqs();
    /// This physical CPU's word of held V4V lock levels (debug builds).
    #[cfg(debug_assertions)]
    pub safe fn v4v_shim_lock_levels() -> *mut u32;
}
