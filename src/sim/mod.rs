//! A simulated hypervisor for host tests, fuzzing and benchmarks.
//!
//! Each simulated domain owns a run of 4 KiB pages, visible to itself at
//! guest virtual addresses `VA_BASE + pfn * 4096` and named by frame numbers
//! `gfn_base(dom) + pfn`, so frames of different domains never coincide.
//! Any other address faults, like a bad or hypervisor-space pointer does in
//! Xen. Pages can be made read-only (pinning them for a ring then fails),
//! pins are counted per page (tests check that nothing leaks), and raised
//! VIRQs are counted per domain. The calling domain is per thread, so
//! several threads can act as several domains at once.
//!
//! Guest pages are written by the engine through raw pointers while tests
//! read, rewrite and corrupt them through this module: that is the point.
pub mod client;
pub mod fuzz;

use crate::abi::PAGE_SIZE;
use crate::env::{DomId, Env, Fault, PinError};
use std::boxed::Box;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::vec::Vec;

/// Where every simulated domain's memory starts in its virtual address space.
pub const VA_BASE: u64 = 0x0000_0010_0000_0000;

/// First frame number of domain `dom`.
pub const fn gfn_base(dom: DomId) -> u64 {
    0x10_0000 * (dom as u64 + 1)
}

#[repr(C, align(4096))]
struct Page(UnsafeCell<[u8; PAGE_SIZE]>);

struct SimDomain {
    id: DomId,
    pages: Vec<Box<Page>>,
    pins: Vec<AtomicU32>,
    readonly: Vec<AtomicBool>,
    virqs: AtomicU64,
    /// Next page `client` hands out.
    next_free: AtomicU32,
}

/// The simulated host. Domain 0 is privileged.
pub struct Sim {
    doms: Vec<SimDomain>,
    /// When set, `pin_frame` fails with `NoMem` after this many more pins.
    pin_budget: AtomicU64,
}

// SAFETY: the pages are only accessed through raw pointers (the engine's
// frame mappings and this module's copies), which is the shared, racy
// guest memory being simulated; every other field is atomic or immutable.
unsafe impl Sync for Sim {}

/// A pinned frame of the simulation.
pub struct SimFrame {
    dom: DomId,
    pfn: usize,
    va: *mut u8,
}

// SAFETY: `va` points into a page owned by the `Sim`, which outlives every
// frame the engine holds (tests drop the engine's rings before the Sim, and
// the engine unpins before the Sim checks). The page is plain shared memory.
unsafe impl Send for SimFrame {}
// SAFETY: as above; `&SimFrame` only exposes the pointer value.
unsafe impl Sync for SimFrame {}

std::thread_local! {
    static CURRENT: Cell<DomId> = const { Cell::new(0) };
}

impl Sim {
    /// A host with the given domains, each with `pages` pages of memory.
    pub fn new(doms: &[DomId], pages: usize) -> Sim {
        let doms = doms
            .iter()
            .map(|&id| SimDomain {
                id,
                pages: (0..pages)
                    .map(|_| Box::new(Page(UnsafeCell::new([0; PAGE_SIZE]))))
                    .collect(),
                pins: (0..pages).map(|_| AtomicU32::new(0)).collect(),
                readonly: (0..pages).map(|_| AtomicBool::new(false)).collect(),
                virqs: AtomicU64::new(0),
                next_free: AtomicU32::new(0),
            })
            .collect();
        Sim {
            doms,
            pin_budget: AtomicU64::new(u64::MAX),
        }
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

    /// Guest virtual address of page `pfn` of `dom`.
    pub const fn va(pfn: usize) -> u64 {
        VA_BASE + (pfn * PAGE_SIZE) as u64
    }

    /// Frame number of page `pfn` of `dom`.
    pub const fn gfn(dom: DomId, pfn: usize) -> u64 {
        gfn_base(dom) + pfn as u64
    }

    /// Pointer to byte `va` of `dom`'s memory and the bytes left in its page.
    fn locate(&self, dom: DomId, va: u64) -> Option<(*mut u8, usize)> {
        let d = self.dom(dom)?;
        let rel = va.checked_sub(VA_BASE)?;
        let pfn = usize::try_from(rel / PAGE_SIZE as u64).ok()?;
        let page = d.pages.get(pfn)?;
        let within = (rel % PAGE_SIZE as u64) as usize;
        // SAFETY: `within < PAGE_SIZE`, inside the page allocation.
        Some((
            unsafe { page.0.get().cast::<u8>().add(within) },
            PAGE_SIZE - within,
        ))
    }

    /// Raw copy between `dom`'s memory at `va` and `buf` (`to_guest` picks
    /// the direction).
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
        // Check the whole range first so that a fault copies nothing.
        let mut done = 0;
        while done < len {
            let a = va.checked_add(done as u64).ok_or(Fault)?;
            let (_, left) = self.locate(dom, a).ok_or(Fault)?;
            done += left.min(len - done);
        }
        let mut done = 0;
        while done < len {
            let (p, left) = self.locate(dom, va + done as u64).ok_or(Fault)?;
            let n = left.min(len - done);
            // SAFETY: `p` is valid for `n` bytes of its page; the caller
            // guarantees `buf` for `len` bytes. Raw copies, as guest memory
            // may be written concurrently.
            unsafe {
                if to_guest {
                    core::ptr::copy(buf.add(done), p, n);
                } else {
                    core::ptr::copy(p, buf.add(done), n);
                }
            }
            done += n;
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
        assert!(first + n <= d.pages.len(), "sim: dom{dom} out of pages");
        first
    }
}

impl Env for Sim {
    type Frame = SimFrame;

    fn current_domain(&self) -> DomId {
        CURRENT.with(|c| c.get())
    }

    fn current_is_privileged(&self) -> bool {
        self.current_domain() == 0
    }

    unsafe fn copy_from_guest(&self, dst: *mut u8, src: u64, len: usize) -> Result<(), Fault> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.copy(self.current_domain(), src, dst, len, false) }
    }

    unsafe fn copy_to_guest(&self, dst: u64, src: *const u8, len: usize) -> Result<(), Fault> {
        // SAFETY: forwarded; `src` is only read when copying to the guest.
        unsafe { self.copy(self.current_domain(), dst, src.cast_mut(), len, true) }
    }

    fn pin_frame(&self, gfn: u64) -> Result<SimFrame, PinError> {
        let dom = self.current_domain();
        let d = self.dom(dom).ok_or(PinError::Invalid)?;
        let pfn = gfn.checked_sub(gfn_base(dom)).ok_or(PinError::Invalid)?;
        let pfn = usize::try_from(pfn).map_err(|_| PinError::Invalid)?;
        if pfn >= d.pages.len() || d.readonly[pfn].load(Ordering::Relaxed) {
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
        Ok(SimFrame {
            dom,
            pfn,
            va: d.pages[pfn].0.get().cast(),
        })
    }

    fn frame_va(&self, frame: &SimFrame) -> *mut u8 {
        frame.va
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
