//! The harness state ([`Fuzz`]): the engine over the instrumented
//! hypervisor, the shadow copy of every domain's memory, the model, and the
//! one entry point for hypercalls ([`Fuzz::call`]), which plans, calls,
//! and runs every check in order.
//!
//! Guest writes go through [`Fuzz::gw`] so that the shadow stays exact and
//! the model learns which rings a guest corrupted.
use super::bytes::{addr_at, e, le32};
use super::env::{FuzzEnv, Scribble};
use super::layout::{va, GUARDS, MEM, MEM_PAGES, NDOM, PAGE, RO_PAGE, VIPL_OFF};
use super::model::{MRing, Plan, VRule};
use super::predict::ERRNOS;
use crate::abi::{errno, op, MAX_MSG_SIZE};
use crate::engine::Engine;
use crate::env::{DomId, Env};
use crate::sim::{Sim, SimFrame, VA_BASE};
use std::string::String;
use std::vec;
use std::vec::Vec;

/// The harness: one input's run.
pub(super) struct Fuzz {
    pub(super) env: FuzzEnv,
    pub(super) engine: Engine<FuzzEnv>,
    /// Each domain's memory as it must be (guest writes applied).
    pub(super) shadow: Vec<Vec<u8>>,
    /// Pages (a bit each) where `shadow` may differ from the initial layout.
    pub(super) dirty: [u64; NDOM],
    pub(super) rings: Vec<MRing>,
    /// Whether the model knows the ring table of each domain.
    pub(super) known: [bool; NDOM],
    pub(super) vip: Vec<VRule>,
    /// The harness's own pins ([`Host::view`]).
    pub(super) view: Vec<SimFrame>,
    /// Extra ranges the current operation may write in trusted rings.
    pub(super) allowed: Vec<(DomId, usize, usize)>,
    pub(super) expect_virq: Vec<DomId>,
    pub(super) trace: bool,
    /// The current hypercall, for failure messages.
    pub(super) last: Last,
    pub(super) vip_todo: VipTodo,
}

/// What the harness is doing, for failure messages and the trace (made
/// into text only when needed: formatting every hypercall cost more than
/// making it).
pub(super) enum Last {
    None,
    Call {
        d: DomId,
        cmd: u32,
        a: [u64; 3],
        a4: u32,
        a5: u32,
        hook: Option<(u32, Scribble)>,
    },
    Destroy(DomId),
    Recv(DomId, u32),
}

impl core::fmt::Display for Last {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Last::None => Ok(()),
            Last::Call {
                d,
                cmd,
                a,
                a4,
                a5,
                hook,
            } => write!(
                f,
                "dom{d} cmd {cmd} args {:#x} {:#x} {:#x} {:#x} {:#x} hook {hook:?}",
                a[0], a[1], a[2], a4, a5
            ),
            Last::Destroy(d) => write!(f, "destroy dom{d}"),
            Last::Recv(d, port) => write!(f, "recv dom{d} port {port:#x}"),
        }
    }
}

/// What to do about the rule table once the current hypercall is checked.
pub(super) enum VipTodo {
    Nothing,
    /// List it and compare with the model.
    Verify,
    /// Take the engine's word for it (a racing guest changed the rule).
    Resync,
}

/// What a thread keeps from one input to the next: the simulated host and
/// the shadow of its memory. Making them anew for every input (memfds, page
/// faults on fresh memory, 132 pins) cost more than most inputs' hypercalls;
/// instead the pages an input changed are put back as they were.
pub(super) struct Host {
    env: FuzzEnv,
    shadow: Vec<Vec<u8>>,
    /// Pages (a bit each, per domain) that may differ from the initial
    /// layout, in memory and shadow alike.
    dirty: [u64; NDOM],
    /// Every page of every domain, pinned by the harness itself so that it
    /// can compare guest memory with `shadow` in place.
    view: Vec<SimFrame>,
}

/// Page `p` of domain `d` as every input starts: the guard pages and the
/// read-only page hold a pattern, the rest is zero.
fn initial_page(d: usize, p: usize, page: &mut [u8]) {
    if GUARDS.contains(&p) || p == RO_PAGE {
        for (i, b) in page.iter_mut().enumerate() {
            *b = 0xa5 ^ (p as u8) ^ (i as u8).wrapping_mul(7) ^ (d as u8);
        }
    } else {
        page.fill(0);
    }
}

impl Host {
    pub(super) fn new() -> Host {
        let doms: Vec<DomId> = (0..NDOM as DomId).collect();
        let sim = Sim::new(&doms, MEM_PAGES);
        let mut view = Vec::with_capacity(NDOM * MEM_PAGES);
        for d in 0..NDOM as DomId {
            sim.as_dom(d, || {
                for p in 0..MEM_PAGES {
                    view.push(sim.pin_frame(Sim::gfn(d, p)).unwrap());
                }
            });
            sim.set_readonly(d, RO_PAGE, true);
        }
        let mut host = Host {
            env: FuzzEnv::new(sim),
            shadow: vec![vec![0; MEM]; NDOM],
            // Everything, once: memory and shadow get the initial layout.
            dirty: [(1 << MEM_PAGES) - 1; NDOM],
            view,
        };
        host.reset();
        host
    }

    /// Put every page the last input changed back to the initial layout.
    fn reset(&mut self) {
        for d in 0..NDOM {
            let mut dirty = core::mem::take(&mut self.dirty[d]);
            while dirty != 0 {
                let p = dirty.trailing_zeros() as usize;
                dirty &= dirty - 1;
                let page = &mut self.shadow[d][p * PAGE..(p + 1) * PAGE];
                initial_page(d, p, page);
                self.env.sim.write(d as DomId, va(p * PAGE), page);
            }
        }
    }
}

impl Fuzz {
    /// A run on `host`, its memory reset to the initial layout and its
    /// engine new.
    pub(super) fn new(mut host: Host) -> Fuzz {
        host.reset();
        // The last input left nothing behind (`finish` checked it).
        debug_assert_eq!(host.env.live_maps(), 0);
        Fuzz {
            env: host.env,
            engine: Engine::try_new().expect("engine"),
            shadow: host.shadow,
            dirty: [0; NDOM],
            rings: Vec::new(),
            known: [true; NDOM],
            vip: Vec::new(),
            view: host.view,
            allowed: Vec::new(),
            expect_virq: Vec::new(),
            trace: std::env::var_os("V4V_FUZZ_TRACE").is_some(),
            last: Last::None,
            vip_todo: VipTodo::Nothing,
        }
    }

    /// Mark `len` bytes of `d`'s shadow at `off` as changed from the initial
    /// layout.
    pub(super) fn dirty(&mut self, d: DomId, off: usize, len: usize) {
        if len > 0 {
            let (first, last) = (off / PAGE, (off + len - 1) / PAGE);
            self.dirty[d as usize] |= (u64::MAX >> (63 - last)) & (u64::MAX << first);
        }
    }

    // -- guest memory --

    /// The guest writes its own memory (marks rings it corrupts untrusted).
    pub(super) fn gw(&mut self, d: DomId, off: usize, bytes: &[u8]) {
        let n = bytes.len().min(MEM.saturating_sub(off));
        if n == 0 || self.shadow[d as usize][off..off + n] == bytes[..n] {
            return;
        }
        self.env.sim.write(d, va(off), &bytes[..n]);
        self.shadow[d as usize][off..off + n].copy_from_slice(&bytes[..n]);
        self.dirty(d, off, n);
        self.touch(d, off, n);
    }

    /// A receiver moving its own `rx_ptr` as the ABI intends.
    pub(super) fn gw_legit(&mut self, d: DomId, off: usize, bytes: &[u8]) {
        self.env.sim.write(d, va(off), bytes);
        self.shadow[d as usize][off..off + bytes.len()].copy_from_slice(bytes);
        self.dirty(d, off, bytes.len());
    }

    pub(super) fn touch(&mut self, d: DomId, off: usize, len: usize) {
        if len == 0 {
            return;
        }
        let (first, last) = (off / PAGE, (off + len - 1) / PAGE);
        for r in self.rings.iter_mut().filter(|r| r.dom == d && r.trusted) {
            if r.pages.iter().any(|&p| p >= first && p <= last) {
                r.untrust();
            }
        }
    }

    /// `len` bytes of `d`'s memory at guest address `at`, if all mapped.
    pub(super) fn peek(&self, d: DomId, at: u64, len: usize) -> Option<&[u8]> {
        if len == 0 {
            // Nothing to read (sendv with no iovs): no fault, whatever `at`.
            return Some(&[]);
        }
        let off = at.checked_sub(VA_BASE)?;
        let end = off.checked_add(len as u64)?;
        if end > MEM as u64 {
            return None;
        }
        Some(&self.shadow[d as usize][off as usize..end as usize])
    }

    pub(super) fn readable(at: u64, len: u64) -> bool {
        len == 0
            || at
                .checked_sub(VA_BASE)
                .and_then(|o| o.checked_add(len))
                .is_some_and(|end| end <= MEM as u64)
    }

    // -- hypercalls --

    /// One hypercall, checked against the model.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call(
        &mut self,
        d: DomId,
        cmd: u32,
        a: [u64; 3],
        a4: u32,
        a5: u32,
        hook: Option<(u32, Scribble)>,
    ) -> i64 {
        self.call_inner(d, cmd, a, a4, a5, hook, true)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn call_inner(
        &mut self,
        d: DomId,
        cmd: u32,
        a: [u64; 3],
        a4: u32,
        a5: u32,
        hook: Option<(u32, Scribble)>,
        checked: bool,
    ) -> i64 {
        self.allowed.clear();
        self.expect_virq.clear();
        self.last = Last::Call {
            d,
            cmd,
            a,
            a4,
            a5,
            hook: hook.clone(),
        };
        let (allowed, plan) = if checked {
            self.plan(d, cmd, a, a4, a5)
        } else {
            (Vec::new(), Plan::None)
        };
        self.env.begin(hook);
        let rv = self.env.sim.as_dom(d, || {
            crate::sim::with_continuations(
                (cmd, a[0], a[1], a[2], a4, a5),
                |(c, a1, a2, a3, a4, a5)| self.engine.hypercall(&self.env, c, a1, a2, a3, a4, a5),
            )
        });
        let log = self.env.end();
        if self.trace {
            std::eprintln!("  {} -> {rv}", self.last);
        }
        // Any result: success or an errno of the ABI; a byte count only from
        // send and sendv.
        if rv >= 0 {
            assert!(
                rv == 0 || ((cmd == op::SEND || cmd == op::SENDV) && rv <= MAX_MSG_SIZE as i64),
                "{}: returned {rv}",
                self.last
            );
        } else {
            assert!(ERRNOS.contains(&-rv), "{}: returned {rv}", self.last);
        }
        if !(1..=8).contains(&cmd) {
            assert_eq!(rv, e(errno::ENOSYS), "{}", self.last);
        }
        // Guest memory the engine wrote on the guest's request, and guest
        // writes made during the call, corrupt the rings they hit.
        for &(dd, off, len) in &log.to_guest {
            let id_writeback = cmd == op::REGISTER_RING && dd == d && va(off) == a[0] + 8;
            if !id_writeback {
                self.touch(dd, off, len);
            }
        }
        for &(dd, off, len) in &log.fired {
            self.touch(dd, off, len);
        }
        if !log.fired.is_empty() {
            // The model read the arguments before the guest changed them:
            // only the result's form is checked, and the model forgets what
            // this call may have changed.
            match cmd {
                op::REGISTER_RING | op::UNREGISTER_RING => self.forget_domain(d),
                op::SEND | op::SENDV => self.lose_rings_reachable_by(d, true),
                op::NOTIFY => self.lose_rings_reachable_by(d, false),
                op::VIPTABLES_ADD | op::VIPTABLES_DEL => self.vip_todo = VipTodo::Resync,
                _ => {}
            }
        } else if checked {
            assert!(
                allowed.contains(&rv),
                "{}: returned {rv}, the ABI allows {allowed:?}",
                self.last
            );
            self.post(d, cmd, a, plan, rv, &log);
        }
        for v in core::mem::take(&mut self.expect_virq) {
            assert!(
                log.virqs.contains(&v),
                "{}: no VIRQ raised in dom{v} (raised: {:?})",
                self.last,
                log.virqs
            );
        }
        self.check_memory(&log);
        self.env.recycle(log);
        self.check_invariants();
        // Listings of the rule table are hypercalls of their own: after this
        // one is fully checked.
        match core::mem::replace(&mut self.vip_todo, VipTodo::Nothing) {
            VipTodo::Nothing => {}
            VipTodo::Verify => self.verify_vip(),
            VipTodo::Resync => self.resync_vip(),
        }
        rv
    }

    /// List the whole rule table as dom0 (each listing checked by the model).
    pub(super) fn verify_vip(&mut self) {
        let mut start = 0u32;
        loop {
            let mut b = [0u8; 132];
            b[128..].copy_from_slice(&start.to_le_bytes());
            self.gw(0, VIPL_OFF, &b);
            let saved = core::mem::take(&mut self.expect_virq);
            let rv = self.call(0, op::VIPTABLES_LIST, [va(VIPL_OFF), 0, 0], 0, 0, None);
            self.expect_virq = saved;
            assert_eq!(rv, 0);
            let n = self.mem_u32(0, VIPL_OFF + 128);
            if n < 8 {
                break;
            }
            start += 8;
        }
    }

    /// Take the engine's word for the rule table (after a racing change).
    pub(super) fn resync_vip(&mut self) {
        let mut rules = Vec::new();
        loop {
            let mut b = [0u8; 132];
            b[128..].copy_from_slice(&(rules.len() as u32).to_le_bytes());
            self.gw(0, VIPL_OFF, &b);
            let rv = self.call_inner(
                0,
                op::VIPTABLES_LIST,
                [va(VIPL_OFF), 0, 0],
                0,
                0,
                None,
                false,
            );
            assert_eq!(rv, 0);
            let b = self.shadow[0][VIPL_OFF..VIPL_OFF + 132].to_vec();
            let n = le32(&b, 128) as usize;
            for k in 0..n.min(8) {
                rules.push(VRule {
                    src: addr_at(&b, 16 * k),
                    dst: addr_at(&b, 16 * k + 6),
                    accept: le32(&b, 16 * k + 12) == 1,
                });
            }
            if n < 8 {
                break;
            }
        }
        self.vip = rules;
    }

    pub(super) fn destroy(&mut self, d: DomId) {
        self.last = Last::Destroy(d);
        if self.trace {
            std::eprintln!("  {}", self.last);
        }
        let mut expect = Vec::new();
        for r in self.rings.iter().filter(|r| r.dom == d) {
            for &(w, _) in r.waiters.iter().flatten() {
                expect.push(w);
            }
        }
        self.env.begin(None);
        self.engine.domain_destroy(&self.env, d);
        let log = self.env.end();
        for w in expect {
            assert!(
                log.virqs.contains(&w),
                "{}: no VIRQ in waiter dom{w}",
                self.last
            );
        }
        self.rings.retain(|r| r.dom != d);
        // Nothing refers to the dead domain any more (the debug dump lists
        // every queued wait as "wait(domN ...)").
        let mut dump = String::new();
        self.engine.dump(&self.env, &mut dump).unwrap();
        assert!(
            !dump.contains(&std::format!("wait(dom{d} ")),
            "{}: a wait of the dead domain survives:\n{dump}",
            self.last
        );
        for r in &mut self.rings {
            r.remove_waiter(d);
        }
        if (d as usize) < NDOM {
            self.known[d as usize] = true;
            assert_eq!(self.env.pins_of(d as usize), 0, "{}: pins left", self.last);
            let mine = MEM_PAGES as u32; // the harness's own view of memory
            assert_eq!(self.env.sim.pins(d), mine, "{}: pins left", self.last);
        }
        self.check_memory(&log);
        self.env.recycle(log);
        self.check_invariants();
    }

    /// Destroy every domain, check that nothing is left (pins, ring
    /// mappings, a byte of memory the model does not account for), and
    /// hand the host back for the next input.
    pub(super) fn finish(mut self) -> Host {
        let mut s = String::new();
        self.engine.dump(&self.env, &mut s).unwrap();
        for d in 0..NDOM as DomId {
            self.destroy(d);
        }
        let mine = (NDOM * MEM_PAGES) as u32; // the harness's own view
        assert_eq!(
            self.env.sim.all_pins(),
            mine,
            "frames still pinned at the end"
        );
        assert_eq!(self.env.live_maps(), 0, "rings still mapped at the end");
        self.check_all_memory();
        Host {
            env: self.env,
            shadow: self.shadow,
            dirty: self.dirty,
            view: self.view,
        }
    }
}
