//! The instrumented hypervisor: [`FuzzEnv`] is the simulation with a record
//! of what the engine asked of it during one hypercall (copies to the guest,
//! frames pinned, VIRQs) and a hook that lets a guest write its memory in the
//! middle of a hypercall (a racing vCPU).
//!
//! The checks need the record to tell the engine's legitimate writes from
//! stray ones, and to compare pins and VIRQs with the model's predictions.
//!
//! Rings are mapped through [`RingMaps`]: each ring in a mapping of its own
//! between guard pages, made inaccessible when the engine gives it back. So
//! the engine can change guest memory only through `copy_to_guest` (logged
//! here) and the frames of the rings it has mapped (counted here): the
//! memory check compares those pages after each hypercall instead of all of
//! memory, and a write anywhere else faults on the spot.
use super::layout::{va, MEM_PAGES, NDOM};
use crate::env::{DomId, Env, Fault, PinError, SendAccess};
use crate::guest::GuestRange;
use crate::sim::maps::RingMaps;
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
    /// The same pages, a bit each per domain.
    pub(super) pinned_mask: [u64; NDOM],
    pub(super) virqs: Vec<DomId>,
    /// Guest writes made during the operation (the hook fired).
    pub(super) fired: Vec<(DomId, usize, usize)>,
    /// A racing guest write: made just before the n-th guest access.
    pub(super) hook: Option<(u32, Scribble)>,
    /// Pages (a bit per page, per domain) of the rings mapped or given back
    /// during the operation: the engine could write them for part of it.
    pub(super) mapped: [u64; NDOM],
}

/// How many times each page is held (pinned, or in a ring mapping), kept
/// with the totals the checks ask for after every hypercall.
pub(super) struct Counts {
    count: [[u32; MEM_PAGES]; NDOM],
    /// Sum of `count[d]`.
    total: [u32; NDOM],
    /// A bit for each page of `d` whose count is not zero.
    mask: [u64; NDOM],
}

impl Counts {
    pub(super) const fn new() -> Counts {
        Counts {
            count: [[0; MEM_PAGES]; NDOM],
            total: [0; NDOM],
            mask: [0; NDOM],
        }
    }

    fn add(&mut self, d: DomId, p: usize) {
        let (d, c) = (d as usize, &mut self.count[d as usize][p]);
        *c += 1;
        self.total[d] += 1;
        self.mask[d] |= 1 << p;
    }

    /// Undo `add`; false if the count was zero.
    fn sub(&mut self, d: DomId, p: usize) -> bool {
        let (d, c) = (d as usize, &mut self.count[d as usize][p]);
        if *c == 0 {
            return false;
        }
        *c -= 1;
        self.total[d] -= 1;
        if *c == 0 {
            self.mask[d] &= !(1 << p);
        }
        true
    }

    pub(super) fn get(&self, d: usize, p: usize) -> u32 {
        self.count[d][p]
    }

    pub(super) fn total(&self, d: usize) -> u32 {
        self.total[d]
    }

    pub(super) fn mask(&self, d: usize) -> u64 {
        self.mask[d]
    }
}

/// The engine's ring mappings and how many of them hold each page.
pub(super) struct Maps {
    pub(super) cache: RingMaps,
    pub(super) count: Counts,
}

/// [`Sim`], with a record of what the engine asks of it and a hook that
/// lets a guest write its memory in the middle of a hypercall.
pub struct FuzzEnv {
    pub(super) sim: Sim,
    /// The record and the pin counts, under one lock (taken once a frame
    /// when the engine pins a ring's thousands).
    pub(super) rec: Mutex<Rec>,
    pub(super) maps: Mutex<Maps>,
}

/// What [`FuzzEnv`] keeps under its lock.
pub(super) struct Rec {
    pub(super) log: OpLog,
    pub(super) pins: Counts,
}

impl Rec {
    /// The racing guest write, when its turn has come (one more guest
    /// access by the engine).
    fn tick(&mut self, sim: &Sim) {
        match &mut self.log.hook {
            None => return,
            Some((n, _)) if *n > 0 => {
                *n -= 1;
                return;
            }
            Some(_) => {}
        }
        let (_, s) = self.log.hook.take().unwrap();
        sim.write(s.dom, va(s.off), &s.bytes);
        self.log.fired.push((s.dom, s.off, s.bytes.len()));
    }
}

impl FuzzEnv {
    pub(super) fn new(sim: Sim) -> FuzzEnv {
        FuzzEnv {
            sim,
            rec: Mutex::new(Rec {
                log: OpLog::default(),
                pins: Counts::new(),
            }),
            maps: Mutex::new(Maps {
                cache: RingMaps::new(),
                count: Counts::new(),
            }),
        }
    }

    fn tick(&self) {
        self.rec.lock().unwrap().tick(&self.sim);
    }

    pub(super) fn pins_of(&self, d: usize) -> u32 {
        self.rec.lock().unwrap().pins.total(d)
    }

    pub(super) fn pin_count(&self, d: usize, p: usize) -> u32 {
        self.rec.lock().unwrap().pins.get(d, p)
    }

    /// Pages of `d` pinned by the engine, a bit each.
    pub(super) fn pinned_mask(&self, d: usize) -> u64 {
        self.rec.lock().unwrap().pins.mask(d)
    }

    /// Pages of `d` in a ring mapping the engine holds, a bit each.
    pub(super) fn mapped_mask(&self, d: usize) -> u64 {
        self.maps.lock().unwrap().count.mask(d)
    }

    /// Ring mappings the engine holds.
    pub(super) fn live_maps(&self) -> usize {
        self.maps.lock().unwrap().cache.live()
    }

    /// Start recording an operation (the log's buffers are reused).
    pub(super) fn begin(&self, hook: Option<(u32, Scribble)>) {
        let log = &mut self.rec.lock().unwrap().log;
        log.to_guest.clear();
        log.pinned.clear();
        log.pinned_mask = [0; NDOM];
        log.virqs.clear();
        log.fired.clear();
        log.mapped = [0; NDOM];
        log.hook = hook;
    }

    /// The record of the operation since `begin`.
    pub(super) fn end(&self) -> OpLog {
        core::mem::take(&mut self.rec.lock().unwrap().log)
    }

    /// Give the record back once checked (for its buffers).
    pub(super) fn recycle(&self, log: OpLog) {
        self.rec.lock().unwrap().log = log;
    }
}

impl Env for FuzzEnv {
    type Frame = FuzzFrame;
    type Mutex = <Sim as Env>::Mutex;
    type RwLock = <Sim as Env>::RwLock;

    fn current_vcpu(&self) -> u32 {
        self.sim.current_vcpu()
    }

    fn preempt_check(&self) -> bool {
        self.sim.preempt_check()
    }

    fn continuation(&self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
        self.sim.continuation(cmd, a1, a2, a3, a4, a5)
    }

    fn process_softirqs(&self) {
        self.sim.process_softirqs()
    }

    fn current_domain(&self) -> DomId {
        self.sim.current_domain()
    }

    fn xsm_use(&self) -> bool {
        self.sim.xsm_use()
    }

    fn xsm_register(&self, partner: DomId) -> bool {
        self.sim.xsm_register(partner)
    }

    fn xsm_send(&self, dst: DomId) -> SendAccess {
        self.sim.xsm_send(dst)
    }

    fn xsm_viptables(&self) -> bool {
        self.sim.xsm_viptables()
    }

    unsafe fn copy_from_guest(&self, dst: *mut u8, src: GuestRange) -> Result<(), Fault> {
        self.tick();
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.sim.copy_from_guest(dst, src) }
    }

    unsafe fn copy_to_guest(&self, dst: GuestRange, src: *const u8) -> Result<(), Fault> {
        self.tick();
        // SAFETY: forwarded from the caller's contract.
        let r = unsafe { self.sim.copy_to_guest(dst, src) };
        let len = dst.len() as usize;
        if r.is_ok() && len > 0 {
            let dom = self.current_domain();
            let off = (dst.start() - VA_BASE) as usize;
            self.rec.lock().unwrap().log.to_guest.push((dom, off, len));
        }
        r
    }

    fn pin_frame(&self, gfn: u64) -> Result<FuzzFrame, PinError> {
        let mut rec = self.rec.lock().unwrap();
        rec.tick(&self.sim);
        let inner = self.sim.pin_frame(gfn)?;
        let dom = self.current_domain();
        let pfn = (gfn - gfn_base(dom)) as usize;
        rec.pins.add(dom, pfn);
        rec.log.pinned.push((dom, pfn));
        rec.log.pinned_mask[dom as usize] |= 1 << pfn;
        Ok(FuzzFrame { inner, dom, pfn })
    }

    fn map_frames(&self, frames: &[FuzzFrame]) -> Result<core::ptr::NonNull<u8>, PinError> {
        let pages: Vec<(DomId, usize)> = frames.iter().map(|f| (f.dom, f.pfn)).collect();
        let mut maps = self.maps.lock().unwrap();
        let va = maps.cache.map(&self.sim, &pages)?;
        let mut mapped = [0u64; NDOM];
        for (d, p) in pages {
            maps.count.add(d, p);
            mapped[d as usize] |= 1 << p;
        }
        let log = &mut self.rec.lock().unwrap().log;
        for (m, new) in log.mapped.iter_mut().zip(mapped) {
            *m |= new;
        }
        Ok(va)
    }

    fn unmap_frames(&self, va: core::ptr::NonNull<u8>, count: usize) {
        let mut maps = self.maps.lock().unwrap();
        let Maps { cache, count: acc } = &mut *maps;
        let mut mapped = [0u64; NDOM];
        for (d, p) in cache.unmap(va, count) {
            assert!(acc.sub(d, p), "unmap of a frame that is not mapped");
            mapped[d as usize] |= 1 << p;
        }
        let log = &mut self.rec.lock().unwrap().log;
        for (m, new) in log.mapped.iter_mut().zip(mapped) {
            *m |= new;
        }
    }

    fn unpin_frame(&self, frame: FuzzFrame) {
        let unpinned = self.rec.lock().unwrap().pins.sub(frame.dom, frame.pfn);
        assert!(unpinned, "unpin of a frame that is not pinned");
        self.sim.unpin_frame(frame.inner);
    }

    fn raise_virq(&self, dom: DomId) {
        self.rec.lock().unwrap().log.virqs.push(dom);
        self.sim.raise_virq(dom);
    }
}
