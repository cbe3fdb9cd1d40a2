//! A simulated hypervisor for host tests, fuzzing and benchmarks.
//!
//! Each simulated domain owns a run of 4 KiB pages, visible to itself at
//! guest virtual addresses `VA_BASE + pfn * 4096` and named by frame numbers
//! `gfn_base(dom) + pfn`, so frames of different domains never coincide.
//! Any other address faults, like a bad or hypervisor-space pointer does in
//! Xen. A domain's memory is a memfd mapped once for the "guest" side; the
//! engine's contiguous ring mappings map the same frames again, in the
//! order the ring lists them, as Xen's vmap does (frames that already lie in
//! order are used where they are). Pages can be made read-only (pinning them
//! for a ring then fails), pins are counted per page (tests check that
//! nothing leaks), and raised VIRQs are counted per domain. The calling
//! domain is per thread, so several threads can act as several domains.
//!
//! Guest pages are written by the engine through raw pointers while tests
//! read, rewrite and corrupt them through this module: that is the point.
//!
//! XSM: by default the simulation answers the hooks as Xen's dummy module
//! does (everything allowed, the viptables to dom0 only);
//! [`Sim::set_policy`] puts a policy of the test's own in its place, as
//! FLASK would be, and records every check it is asked.
//!
//! [`maps::RingMaps`] is the other way to map rings, for the fuzz target:
//! every ring in a mapping of its own between guard pages, cached for reuse.
pub mod client;
pub mod fuzz;
pub mod lock;
pub mod maps;

use crate::abi::{DOMID_ANY, PAGE_SIZE};
use crate::env::{DomId, Env, Fault, PinError, SendAccess};
use crate::guest::GuestRange;
use core::ptr::NonNull;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::vec::Vec;

/// Where every simulated domain's memory starts in its virtual address space.
pub const VA_BASE: u64 = 0x0000_0010_0000_0000;

/// First frame number of domain `dom`.
pub const fn gfn_base(dom: DomId) -> u64 {
    0x10_0000 * (dom as u64 + 1)
}

struct SimDomain {
    id: DomId,
    /// The memfd holding the domain's memory.
    fd: libc::c_int,
    /// Its mapping for the guest side: `npages` pages, read-write, shared.
    base: *mut u8,
    npages: usize,
    pins: Vec<AtomicU32>,
    readonly: Vec<AtomicBool>,
    virqs: AtomicU64,
    /// Next page `client` hands out.
    next_free: AtomicU32,
}

/// A question the engine asks XSM, with the domains as the shim would pass
/// them to Xen's hooks (the caller first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsmCheck {
    /// `xsm_v4v_use(caller)`.
    Use(DomId),
    /// `xsm_v4v_register_single_source(caller, partner)`.
    RegisterSingle(DomId, DomId),
    /// `xsm_v4v_register_any_source(caller)`: a ring for `DOMID_ANY`, or
    /// for an id that names no domain.
    RegisterAny(DomId),
    /// `xsm_v4v_send(caller, destination)`, by send and by notify.
    Send(DomId, DomId),
    /// `xsm_v4v_viptables(caller)`.
    Viptables(DomId),
}

impl XsmCheck {
    /// What Xen's dummy XSM module answers, which is V4V's behaviour
    /// without XSM: everything is allowed but the viptables, which are for
    /// the control domain (dom0).
    pub fn dummy(self) -> bool {
        match self {
            XsmCheck::Viptables(d) => d == 0,
            _ => true,
        }
    }
}

/// A policy for [`Sim::set_policy`]: true allows.
pub type Policy = std::boxed::Box<dyn Fn(XsmCheck) -> bool + Send + Sync>;

/// The simulated host. Domain 0 is privileged (the dummy policy).
pub struct Sim {
    doms: Vec<SimDomain>,
    /// When set, `pin_frame` fails with `NoMem` after this many more pins.
    pin_budget: AtomicU64,
    /// Ring mappings made by aliasing frames (address, pages), to unmap.
    aliases: Mutex<Vec<(usize, usize)>>,
    /// `preempt_check` answers yes every this many calls (0: never).
    preempt_every: AtomicU64,
    preempt_checks: AtomicU64,
    /// Called once, inside the first guest read of at least this many
    /// bytes (a test's way into the middle of a copy).
    copy_hook: Mutex<Option<(usize, CopyHook)>>,
    /// Continuations made and softirq passes asked for (for tests).
    continuations: AtomicU64,
    softirq_passes: AtomicU64,
    /// The XSM policy in place of the dummy one, and whether there is one
    /// (so that the default costs no lock).
    policy: RwLock<Option<Policy>>,
    has_policy: AtomicBool,
    /// Every check the policy answered, with its answer.
    xsm_log: Mutex<Vec<(XsmCheck, bool)>>,
}

/// See [`Sim::set_copy_hook`].
pub type CopyHook = std::boxed::Box<dyn FnOnce() + Send>;

/// The arguments of a hypercall continuation: cmd and a1..a5.
pub type Continuation = (u32, u64, u64, u64, u32, u32);

/// What [`Env::continuation`] returns in the simulation: not an errno of
/// the ABI, so one that reached a guest would stand out.
pub const CONTINUED: i64 = -85;

// SAFETY: the domains' memory is only accessed through raw pointers (the
// engine's ring mappings and this module's copies), which is the shared,
// racy guest memory being simulated; every other field is atomic, behind a
// mutex, or immutable after construction.
unsafe impl Sync for Sim {}
// SAFETY: as above; the mappings belong to the Sim and go with it.
unsafe impl Send for Sim {}

/// A pinned frame of the simulation.
pub struct SimFrame {
    dom: DomId,
    pfn: usize,
}

std::thread_local! {
    static CURRENT: Cell<DomId> = const { Cell::new(0) };
    static CONTINUE: Cell<Option<Continuation>> = const { Cell::new(None) };
    /// The calling vCPU: each thread is one vCPU (tests set it).
    static VCPU: Cell<u32> = const { Cell::new(0) };
}

/// The continuation the last hypercall on this thread made, taken (for
/// tests that make hypercalls one at a time).
pub fn take_continuation() -> Option<Continuation> {
    CONTINUE.with(|c| c.take())
}

/// The calling thread acts as vCPU `v` of its domain from now on.
pub fn set_current_vcpu(v: u32) {
    VCPU.with(|c| c.set(v));
}

/// Make one hypercall as a guest does: `call` with the arguments, then
/// again with the arguments of each continuation it made, until it
/// returns without one.
pub fn with_continuations(args: Continuation, mut call: impl FnMut(Continuation) -> i64) -> i64 {
    let mut args = args;
    loop {
        CONTINUE.with(|c| c.set(None));
        let r = call(args);
        match CONTINUE.with(|c| c.take()) {
            Some(next) => {
                assert_eq!(r, CONTINUED, "a continuation must return its own value");
                args = next;
            }
            None => return r,
        }
    }
}

/// `mmap` with the error turned into a panic (the simulation's own setup).
///
/// # Safety
/// As for `mmap(2)`; with `MAP_FIXED`, `addr` must be a range this process
/// owns and may replace.
unsafe fn map(
    addr: *mut u8,
    len: usize,
    prot: libc::c_int,
    flags: libc::c_int,
    fd: libc::c_int,
    off: usize,
) -> *mut u8 {
    // SAFETY: forwarded.
    let p = unsafe { libc::mmap(addr.cast(), len, prot, flags, fd, off as libc::off_t) };
    assert!(
        p != libc::MAP_FAILED,
        "sim: mmap failed: {}",
        std::io::Error::last_os_error()
    );
    p.cast()
}

impl Sim {
    /// A host with the given domains, each with `pages` pages of memory.
    pub fn new(doms: &[DomId], pages: usize) -> Sim {
        let size = pages * PAGE_SIZE;
        let doms = doms
            .iter()
            .map(|&id| {
                // SAFETY: plain system calls on a new anonymous file; the
                // mapping is owned by the SimDomain and unmapped in Drop.
                let (fd, base) = unsafe {
                    let fd = libc::memfd_create(c"v4v-sim".as_ptr(), libc::MFD_CLOEXEC);
                    assert!(fd >= 0, "sim: memfd_create failed");
                    assert_eq!(
                        libc::ftruncate(fd, size as libc::off_t),
                        0,
                        "sim: ftruncate failed"
                    );
                    let rw = libc::PROT_READ | libc::PROT_WRITE;
                    (
                        fd,
                        map(core::ptr::null_mut(), size, rw, libc::MAP_SHARED, fd, 0),
                    )
                };
                SimDomain {
                    id,
                    fd,
                    base,
                    npages: pages,
                    pins: (0..pages).map(|_| AtomicU32::new(0)).collect(),
                    readonly: (0..pages).map(|_| AtomicBool::new(false)).collect(),
                    virqs: AtomicU64::new(0),
                    next_free: AtomicU32::new(0),
                }
            })
            .collect();
        Sim {
            doms,
            pin_budget: AtomicU64::new(u64::MAX),
            aliases: Mutex::new(Vec::new()),
            preempt_every: AtomicU64::new(0),
            preempt_checks: AtomicU64::new(0),
            copy_hook: Mutex::new(None),
            continuations: AtomicU64::new(0),
            softirq_passes: AtomicU64::new(0),
            policy: RwLock::new(None),
            has_policy: AtomicBool::new(false),
            xsm_log: Mutex::new(Vec::new()),
        }
    }

    /// Answer XSM's checks with `policy` from now on (as FLASK would),
    /// recording each (see [`Sim::take_xsm_log`]).
    pub fn set_policy(&self, policy: impl Fn(XsmCheck) -> bool + Send + Sync + 'static) {
        *self.policy.write().unwrap() = Some(std::boxed::Box::new(policy));
        self.has_policy.store(true, Ordering::Release);
    }

    /// Back to the dummy module's answers.
    pub fn clear_policy(&self) {
        self.has_policy.store(false, Ordering::Release);
        *self.policy.write().unwrap() = None;
    }

    /// The checks a policy set by [`Sim::set_policy`] answered since the
    /// last call, in order, with the answers.
    pub fn take_xsm_log(&self) -> Vec<(XsmCheck, bool)> {
        core::mem::take(&mut *self.xsm_log.lock().unwrap())
    }

    /// XSM's answer to `check`.
    fn xsm(&self, check: XsmCheck) -> bool {
        if !self.has_policy.load(Ordering::Acquire) {
            return check.dummy();
        }
        let ok = match &*self.policy.read().unwrap() {
            Some(p) => p(check),
            None => check.dummy(),
        };
        self.xsm_log.lock().unwrap().push((check, ok));
        ok
    }

    /// Run `f` inside the next guest read of `min_len` bytes or more,
    /// before it copies: the engine is then in the middle of a copy, with
    /// whatever locks it holds for one.
    pub fn set_copy_hook(&self, min_len: usize, f: CopyHook) {
        *self.copy_hook.lock().unwrap() = Some((min_len, f));
    }

    /// From now on `preempt_check` says yes every `n`-th time (0: never),
    /// as if the CPU had other work that often.
    pub fn set_preempt_every(&self, n: u64) {
        self.preempt_every.store(n, Ordering::Relaxed);
    }

    /// Preemption checks, continuations and softirq passes so far.
    pub fn preemption_counts(&self) -> (u64, u64, u64) {
        (
            self.preempt_checks.load(Ordering::Relaxed),
            self.continuations.load(Ordering::Relaxed),
            self.softirq_passes.load(Ordering::Relaxed),
        )
    }

    fn dom(&self, dom: DomId) -> Option<&SimDomain> {
        self.doms.iter().find(|d| d.id == dom)
    }

    /// Run `f` as domain `dom` (the caller of hypercalls made in `f`).
    pub fn as_dom<R>(&self, dom: DomId, f: impl FnOnce() -> R) -> R {
        let old = CURRENT.with(|c| c.replace(dom));
        let r = f();
        CURRENT.with(|c| c.set(old));
        r
    }

    /// Make later hypercalls on this thread come from `dom`.
    pub fn set_current(&self, dom: DomId) {
        CURRENT.with(|c| c.set(dom));
    }

    /// Guest virtual address of page `pfn` (the same in every domain).
    pub const fn va(pfn: usize) -> u64 {
        VA_BASE + (pfn * PAGE_SIZE) as u64
    }

    /// Frame number of page `pfn` of `dom`.
    pub const fn gfn(dom: DomId, pfn: usize) -> u64 {
        gfn_base(dom) + pfn as u64
    }

    /// Pointer to `len` bytes of `dom`'s memory at `va`, if all are mapped.
    fn locate(&self, dom: DomId, va: u64, len: usize) -> Option<*mut u8> {
        let d = self.dom(dom)?;
        let rel = va.checked_sub(VA_BASE)?;
        let end = rel.checked_add(len as u64)?;
        if end > (d.npages * PAGE_SIZE) as u64 {
            return None;
        }
        // SAFETY: `rel + len` is within the domain's mapping.
        Some(unsafe { d.base.add(rel as usize) })
    }

    /// Raw copy between `dom`'s memory at `va` and `buf` (`to_guest` picks
    /// the direction). A fault copies nothing.
    ///
    /// # Safety
    /// `buf` must be valid for `len` bytes of reads (to guest) or writes.
    unsafe fn copy(
        &self,
        dom: DomId,
        va: u64,
        buf: *mut u8,
        len: usize,
        to_guest: bool,
    ) -> Result<(), Fault> {
        if len == 0 {
            return Ok(());
        }
        let p = self.locate(dom, va, len).ok_or(Fault)?;
        // SAFETY: `p` is valid for `len` bytes of the domain's memory; the
        // caller guarantees `buf`. Raw (possibly overlapping-safe) copies,
        // as guest memory may be written concurrently.
        unsafe {
            if to_guest {
                core::ptr::copy(buf, p, len);
            } else {
                core::ptr::copy(p, buf, len);
            }
        }
        Ok(())
    }

    /// Write bytes into `dom`'s memory (as the guest itself would).
    pub fn write(&self, dom: DomId, va: u64, data: &[u8]) {
        // SAFETY: `data` is valid for reads of its length.
        unsafe { self.copy(dom, va, data.as_ptr().cast_mut(), data.len(), true) }
            .expect("sim write: bad address");
    }

    /// Read bytes from `dom`'s memory.
    pub fn read(&self, dom: DomId, va: u64, out: &mut [u8]) {
        // SAFETY: `out` is valid for writes of its length.
        unsafe { self.copy(dom, va, out.as_mut_ptr(), out.len(), false) }
            .expect("sim read: bad address");
    }

    pub fn read_u32(&self, dom: DomId, va: u64) -> u32 {
        let mut b = [0; 4];
        self.read(dom, va, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn write_u32(&self, dom: DomId, va: u64, v: u32) {
        self.write(dom, va, &v.to_le_bytes());
    }

    /// Make page `pfn` of `dom` read-only (it can no longer be pinned).
    pub fn set_readonly(&self, dom: DomId, pfn: usize, ro: bool) {
        self.dom(dom).expect("no such domain").readonly[pfn].store(ro, Ordering::Relaxed);
    }

    /// Total pins held on `dom`'s pages.
    pub fn pins(&self, dom: DomId) -> u32 {
        self.dom(dom).map_or(0, |d| {
            d.pins.iter().map(|p| p.load(Ordering::Relaxed)).sum()
        })
    }

    /// Total pins held on every page of the host.
    pub fn all_pins(&self) -> u32 {
        self.doms.iter().map(|d| self.pins(d.id)).sum()
    }

    /// Ring mappings that alias frames and are still mapped.
    pub fn live_aliases(&self) -> usize {
        self.aliases.lock().expect("aliases").len()
    }

    /// How many times VIRQ_V4V was raised in `dom`.
    pub fn virqs(&self, dom: DomId) -> u64 {
        self.dom(dom).map_or(0, |d| d.virqs.load(Ordering::Relaxed))
    }

    /// Let the next `n` pins succeed and later ones fail with out-of-memory.
    pub fn limit_pins(&self, n: u64) {
        self.pin_budget.store(n, Ordering::Relaxed);
    }

    /// Hand out `n` fresh pages of `dom` (test-side memory management).
    pub fn alloc_pages(&self, dom: DomId, n: usize) -> usize {
        let d = self.dom(dom).expect("no such domain");
        let first = d.next_free.fetch_add(n as u32, Ordering::Relaxed) as usize;
        assert!(first + n <= d.npages, "sim: dom{dom} out of pages");
        first
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let aliases = self
            .aliases
            .get_mut()
            .map(core::mem::take)
            .unwrap_or_default();
        // SAFETY: every mapping below was made by this Sim and is no longer
        // used (the engine's rings are gone before the Sim they run on).
        unsafe {
            for (addr, pages) in aliases {
                libc::munmap(addr as *mut libc::c_void, pages * PAGE_SIZE);
            }
            for d in &self.doms {
                libc::munmap(d.base.cast(), d.npages * PAGE_SIZE);
                libc::close(d.fd);
            }
        }
    }
}

impl Sim {
    /// Map `(domain, pfn)` pages contiguously, in order, as Xen's vmap
    /// does for a ring: pages already in order in one domain are used where
    /// they are; any other list is aliased page by page.
    pub fn map_pages(&self, frames: &[(DomId, usize)]) -> Result<NonNull<u8>, PinError> {
        let &(dom0, pfn0) = frames.first().ok_or(PinError::Invalid)?;
        let d = self.dom(dom0).ok_or(PinError::Invalid)?;
        let in_order = frames
            .iter()
            .enumerate()
            .all(|(i, &(d, p))| d == dom0 && p == pfn0 + i);
        if in_order {
            // Already contiguous in the domain's mapping.
            // SAFETY: `pfn0` is a page of the domain (pinned).
            let p = unsafe { d.base.add(pfn0 * PAGE_SIZE) };
            return NonNull::new(p).ok_or(PinError::NoMem);
        }
        let fds = frames
            .iter()
            .map(|&(d, _)| self.dom(d).map(|d| d.fd).ok_or(PinError::Invalid))
            .collect::<Result<Vec<_>, _>>()?;
        let n = frames.len();
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: reserve fresh address space, then replace each page of it
        // (MAP_FIXED inside our own reservation) with the frame's page of
        // its domain's memfd: the same memory, aliased in ring order.
        let base = unsafe {
            let base = map(
                core::ptr::null_mut(),
                n * PAGE_SIZE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            for (i, (f, &fd)) in frames.iter().zip(&fds).enumerate() {
                map(
                    base.add(i * PAGE_SIZE),
                    PAGE_SIZE,
                    rw,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd,
                    f.1 * PAGE_SIZE,
                );
            }
            base
        };
        self.aliases
            .lock()
            .expect("aliases")
            .push((base as usize, n));
        NonNull::new(base).ok_or(PinError::NoMem)
    }

    /// Start of page `pfn` of `dom` in the guest-side mapping (for test
    /// harnesses that inspect memory directly).
    pub fn page_ptr(&self, dom: DomId, pfn: usize) -> *mut u8 {
        let d = self.dom(dom).expect("no such domain");
        assert!(pfn < d.npages, "no such page");
        // SAFETY: `pfn` is a page of the domain's mapping.
        unsafe { d.base.add(pfn * PAGE_SIZE) }
    }

    /// Undo `map_pages`.
    pub fn unmap_pages(&self, va: NonNull<u8>, count: usize) {
        let mut aliases = self.aliases.lock().expect("aliases");
        if let Some(i) = aliases.iter().position(|&(a, _)| a == va.as_ptr() as usize) {
            let (addr, pages) = aliases.swap_remove(i);
            assert_eq!(pages, count, "unmap_frames: wrong count");
            // SAFETY: the alias mapping was made by `map_frames` and the
            // engine no longer uses it.
            unsafe { libc::munmap(addr as *mut libc::c_void, pages * PAGE_SIZE) };
        } else {
            let direct = self.doms.iter().any(|d| {
                let (lo, hi) = (d.base as usize, d.base as usize + d.npages * PAGE_SIZE);
                (lo..hi).contains(&(va.as_ptr() as usize))
                    && va.as_ptr() as usize + count * PAGE_SIZE <= hi
            });
            assert!(direct, "unmap_frames of a range map_frames did not return");
        }
    }
}

impl Env for Sim {
    type Frame = SimFrame;
    type Mutex = lock::SimMutex;
    type RwLock = lock::SimRwLock;

    fn current_vcpu(&self) -> u32 {
        VCPU.with(|c| c.get())
    }

    fn preempt_check(&self) -> bool {
        let n = self.preempt_checks.fetch_add(1, Ordering::Relaxed) + 1;
        let every = self.preempt_every.load(Ordering::Relaxed);
        every != 0 && n.is_multiple_of(every)
    }

    fn continuation(&self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
        self.continuations.fetch_add(1, Ordering::Relaxed);
        let prev = CONTINUE.with(|c| c.replace(Some((cmd, a1, a2, a3, a4, a5))));
        assert!(prev.is_none(), "two continuations from one hypercall");
        CONTINUED
    }

    fn process_softirqs(&self) {
        self.softirq_passes.fetch_add(1, Ordering::Relaxed);
    }

    fn current_domain(&self) -> DomId {
        CURRENT.with(|c| c.get())
    }

    fn xsm_use(&self) -> bool {
        self.xsm(XsmCheck::Use(self.current_domain()))
    }

    fn xsm_register(&self, partner: DomId) -> bool {
        let me = self.current_domain();
        // As the shim: a partner that is no domain is asked as any sender.
        if partner == DOMID_ANY || self.dom(partner).is_none() {
            self.xsm(XsmCheck::RegisterAny(me))
        } else {
            self.xsm(XsmCheck::RegisterSingle(me, partner))
        }
    }

    fn xsm_send(&self, dst: DomId) -> SendAccess {
        if self.dom(dst).is_none() {
            return SendAccess::NoDomain;
        }
        if self.xsm(XsmCheck::Send(self.current_domain(), dst)) {
            SendAccess::Allowed
        } else {
            SendAccess::Denied
        }
    }

    fn xsm_viptables(&self) -> bool {
        self.xsm(XsmCheck::Viptables(self.current_domain()))
    }

    unsafe fn copy_from_guest(&self, dst: *mut u8, src: GuestRange) -> Result<(), Fault> {
        let len = src.len() as usize;
        let hook = {
            let mut h = self.copy_hook.lock().unwrap();
            match &*h {
                Some((min, _)) if len >= *min => h.take().map(|(_, f)| f),
                _ => None,
            }
        };
        if let Some(f) = hook {
            f();
        }
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.copy(self.current_domain(), src.start(), dst, len, false) }
    }

    unsafe fn copy_to_guest(&self, dst: GuestRange, src: *const u8) -> Result<(), Fault> {
        let len = dst.len() as usize;
        // SAFETY: forwarded; `src` is only read when copying to the guest.
        unsafe {
            self.copy(
                self.current_domain(),
                dst.start(),
                src.cast_mut(),
                len,
                true,
            )
        }
    }

    fn pin_frame(&self, gfn: u64) -> Result<SimFrame, PinError> {
        let dom = self.current_domain();
        let d = self.dom(dom).ok_or(PinError::Invalid)?;
        let pfn = gfn.checked_sub(gfn_base(dom)).ok_or(PinError::Invalid)?;
        let pfn = usize::try_from(pfn).map_err(|_| PinError::Invalid)?;
        if pfn >= d.npages || d.readonly[pfn].load(Ordering::Relaxed) {
            return Err(PinError::Invalid);
        }
        if self
            .pin_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_err()
        {
            return Err(PinError::NoMem);
        }
        d.pins[pfn].fetch_add(1, Ordering::Relaxed);
        Ok(SimFrame { dom, pfn })
    }

    fn map_frames(&self, frames: &[SimFrame]) -> Result<NonNull<u8>, PinError> {
        let pages: Vec<(DomId, usize)> = frames.iter().map(|f| (f.dom, f.pfn)).collect();
        self.map_pages(&pages)
    }

    fn unmap_frames(&self, va: NonNull<u8>, count: usize) {
        self.unmap_pages(va, count)
    }

    fn unpin_frame(&self, frame: SimFrame) {
        let d = self.dom(frame.dom).expect("frame of an unknown domain");
        let old = d.pins[frame.pfn].fetch_sub(1, Ordering::Relaxed);
        assert!(old > 0, "unpin of an unpinned frame");
    }

    fn raise_virq(&self, dom: DomId) {
        if let Some(d) = self.dom(dom) {
            d.virqs.fetch_add(1, Ordering::Relaxed);
        }
    }
}
