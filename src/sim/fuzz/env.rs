//! The instrumented hypervisor: [`FuzzEnv`] is the simulation with a record
//! of what the engine asked of it during one hypercall (copies to the guest,
//! frames pinned, VIRQs) and a hook that lets a guest write its memory in the
//! middle of a hypercall (a racing vCPU).
//!
//! The checks need the record to tell the engine's legitimate writes from
//! stray ones, and to compare pins and VIRQs with the model's predictions.
use super::layout::{va, MEM_PAGES, NDOM};
use crate::env::{DomId, Env, Fault, PinError};
use crate::sim::{gfn_base, Sim, SimFrame, VA_BASE};
use std::sync::Mutex;
use std::vec::Vec;

/// A frame pinned through [`FuzzEnv`]: the simulation's frame and its page.
pub struct FuzzFrame {
    pub(super) inner: SimFrame,
    pub(super) dom: DomId,
    pub(super) pfn: usize,
}

/// A guest write the harness makes (between or during hypercalls).
#[derive(Clone, Debug)]
pub(super) struct Scribble {
    pub(super) dom: DomId,
    pub(super) off: usize,
    pub(super) bytes: Vec<u8>,
}

/// What the engine did during one operation.
#[derive(Default)]
pub(super) struct OpLog {
    /// `copy_to_guest` ranges: domain, memory offset, length.
    pub(super) to_guest: Vec<(DomId, usize, usize)>,
    /// Frames pinned, in order.
    pub(super) pinned: Vec<(DomId, usize)>,
    pub(super) virqs: Vec<DomId>,
    /// Guest writes made during the operation (the hook fired).
    pub(super) fired: Vec<(DomId, usize, usize)>,
    /// A racing guest write: made just before the n-th guest access.
    pub(super) hook: Option<(u32, Scribble)>,
}

/// [`Sim`], with a record of what the engine asks of it and a hook that
/// lets a guest write its memory in the middle of a hypercall.
pub struct FuzzEnv {
    pub(super) sim: Sim,
    pub(super) pins: Mutex<[[u32; MEM_PAGES]; NDOM]>,
    pub(super) log: Mutex<OpLog>,
}

impl FuzzEnv {
    pub(super) fn tick(&self) {
        let mut log = self.log.lock().unwrap();
        match &mut log.hook {
            None => return,
            Some((n, _)) if *n > 0 => {
                *n -= 1;
                return;
            }
            Some(_) => {}
        }
        let (_, s) = log.hook.take().unwrap();
        self.sim.write(s.dom, va(s.off), &s.bytes);
        log.fired.push((s.dom, s.off, s.bytes.len()));
    }

    pub(super) fn pins_of(&self, d: usize) -> u32 {
        self.pins.lock().unwrap()[d].iter().sum()
    }

    pub(super) fn pin_count(&self, d: usize, p: usize) -> u32 {
        self.pins.lock().unwrap()[d][p]
    }
}

impl Env for FuzzEnv {
    type Frame = FuzzFrame;

    fn current_domain(&self) -> DomId {
        self.sim.current_domain()
    }

    fn current_is_privileged(&self) -> bool {
        self.sim.current_is_privileged()
    }

    unsafe fn copy_from_guest(&self, dst: *mut u8, src: u64, len: usize) -> Result<(), Fault> {
        self.tick();
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.sim.copy_from_guest(dst, src, len) }
    }

    unsafe fn copy_to_guest(&self, dst: u64, src: *const u8, len: usize) -> Result<(), Fault> {
        self.tick();
        // SAFETY: forwarded from the caller's contract.
        let r = unsafe { self.sim.copy_to_guest(dst, src, len) };
        if r.is_ok() && len > 0 {
            let dom = self.current_domain();
            let off = (dst - VA_BASE) as usize;
            self.log.lock().unwrap().to_guest.push((dom, off, len));
        }
        r
    }

    fn pin_frame(&self, gfn: u64) -> Result<FuzzFrame, PinError> {
        self.tick();
        let inner = self.sim.pin_frame(gfn)?;
        let dom = self.current_domain();
        let pfn = (gfn - gfn_base(dom)) as usize;
        self.pins.lock().unwrap()[dom as usize][pfn] += 1;
        self.log.lock().unwrap().pinned.push((dom, pfn));
        Ok(FuzzFrame { inner, dom, pfn })
    }

    fn map_frames(&self, frames: &[FuzzFrame]) -> Result<core::ptr::NonNull<u8>, PinError> {
        let pages: Vec<(DomId, usize)> = frames.iter().map(|f| (f.dom, f.pfn)).collect();
        self.sim.map_pages(&pages)
    }

    fn unmap_frames(&self, va: core::ptr::NonNull<u8>, count: usize) {
        self.sim.unmap_pages(va, count)
    }

    fn unpin_frame(&self, frame: FuzzFrame) {
        {
            let mut pins = self.pins.lock().unwrap();
            let c = &mut pins[frame.dom as usize][frame.pfn];
            assert!(*c > 0, "unpin of a frame that is not pinned");
            *c -= 1;
        }
        self.sim.unpin_frame(frame.inner);
    }

    fn raise_virq(&self, dom: DomId) {
        self.log.lock().unwrap().virqs.push(dom);
        self.sim.raise_virq(dom);
    }
}
