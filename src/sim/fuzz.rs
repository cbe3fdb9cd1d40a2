//! Fuzz target: sequences of hostile operations from several simulated
//! domains, checked after every step.
//!
//! [`run`] decodes its input bytes into operations (register rings of odd
//! and boundary lengths, unregister, send, sendv with arbitrary iovs,
//! notify with arbitrary entries, raw hypercalls with arbitrary arguments,
//! guests scribbling over their ring headers, `rx_ptr`, pfn lists and
//! argument memory, domain destruction, viptables changes from dom0 and
//! from others) and runs them against the engine over a simulated
//! hypervisor. Every pointer argument is sometimes replaced by a bad one
//! (null, unmapped, straddling the end of memory, hypervisor space, a guard
//! page), and a guest may also scribble *during* a hypercall (a racing vCPU:
//! the write happens at the k-th guest access the engine makes).
//!
//! After every hypercall it checks:
//! - the engine did not panic, and the return value is `>= 0` (positive only
//!   for send/sendv) or one of the ABI's errnos;
//! - the return value is one the ABI allows for the arguments as they were in
//!   guest memory (a reference model of rings, waits and viptables predicts
//!   the set of acceptable results; it is strict where the ABI is and loose
//!   where it leaves the order of checks open);
//! - guest memory changed only where the engine may write: bytes the guest
//!   asked it to write back (`copy_to_guest`), and frames pinned for rings;
//!   inside a ring the receiver has not corrupted, only that ring's
//!   `tx_ptr` and the slot of the message being delivered (so guard pages,
//!   pfn lists, unregistered rings and unread messages are never touched);
//! - messages read back from rings whose receiver behaved are exactly the
//!   messages sent, whole, in order, with the sender's real domain;
//! - pins per domain match the rings registered, a register pins exactly the
//!   listed frames, and destroying a domain leaves none of its frames pinned;
//! - a successful send raises VIRQ_V4V in the destination, and notify,
//!   unregister and teardown raise it in the waiters they release.
//!
//! At the end every domain is destroyed and no frame may remain pinned.
//! Set `V4V_FUZZ_TRACE=1` to print every step (to reproduce a finding).
use super::{gfn_base, Sim, SimFrame, VA_BASE};
use crate::abi::{
    self, errno, op, Addr, DOMID_ANY, DOMID_WILDCARD, MAXENT, MAXIOV, MAX_MSG_SIZE, MAX_RING_PAGES,
    MAX_RING_SIZE, MIN_RING_SIZE, PAGE_SIZE, PFN_LIST_MAGIC, PORT_ANY, PORT_NONE, PROTO_DGRAM,
    PROTO_STREAM, RING_DATA_MAGIC, RING_MAGIC,
};
use crate::engine::{Engine, MAX_PAGES_PER_DOMAIN, MAX_RINGS_PER_DOMAIN};
use crate::env::{DomId, Env, Fault, PinError};
use crate::guest::GuestRange;
use crate::viptables::MAX_RULES;
use std::collections::VecDeque;
use std::string::String;
use std::sync::Mutex;
use std::vec;
use std::vec::Vec;

/// Domains of the simulated host (dom0 is privileged).
const NDOM: usize = 4;
const PAGE: usize = PAGE_SIZE;
/// Pages of memory per domain, laid out as below.
const MEM_PAGES: usize = 33;
const MEM: usize = MEM_PAGES * PAGE;
/// Pages 0..4: hypercall arguments.
const ARGS_LEN: usize = 4 * PAGE;
/// A read-only page (pinning it must fail).
const RO_PAGE: usize = 4;
/// Where the harness's own viptables listings go (dom0 arguments).
const VIPL_OFF: usize = ARGS_LEN - 256;
/// Most operations decoded from one input.
const MAX_OPS: usize = 192;

/// Ring slot: a pfn list, a guard page, `cap` ring pages, a guard page.
#[derive(Clone, Copy)]
struct Slot {
    list: usize,
    list_pages: usize,
    ring: usize,
    cap: usize,
}

const SLOTS: [Slot; 4] = [
    Slot {
        list: 5,
        list_pages: 1,
        ring: 7,
        cap: 1,
    },
    Slot {
        list: 9,
        list_pages: 1,
        ring: 11,
        cap: 2,
    },
    Slot {
        list: 14,
        list_pages: 1,
        ring: 16,
        cap: 3,
    },
    // Room for a list of 4097 frames: the largest ring, its frames aliased.
    Slot {
        list: 20,
        list_pages: 9,
        ring: 30,
        cap: 2,
    },
];
const GUARDS: [usize; 8] = [6, 8, 10, 13, 15, 19, 29, 32];

const ERRNOS: [i64; 10] = errno::ALL;

/// The ABI's order of checks puts "bad guest pointer" among the caller's own
/// arguments, before destination and space, and the engine probes payloads
/// up front. With this false the model would also accept an engine that
/// notices an unreadable payload only while copying.
const STRICT_PAYLOAD_FAULT_ORDER: bool = true;

const fn va(off: usize) -> u64 {
    VA_BASE + off as u64
}

fn e(x: i64) -> i64 {
    -x
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn addr_at(b: &[u8], at: usize) -> Addr {
    Addr {
        port: le32(b, at),
        domain: le16(b, at + 4),
    }
}

fn addr_bytes(a: Addr) -> [u8; 6] {
    let mut b = [0; 6];
    b[..4].copy_from_slice(&{ a.port }.to_le_bytes());
    b[4..].copy_from_slice(&{ a.domain }.to_le_bytes());
    b
}

fn valid_ring_len(len: u32) -> bool {
    len.is_multiple_of(16) && (MIN_RING_SIZE..=MAX_RING_SIZE).contains(&len)
}

/// Whether the engine can use `rx` as an offset into a ring of `len` bytes.
fn valid_offset(len: u32, rx: u32) -> bool {
    rx.is_multiple_of(16) && rx < len
}

fn frames_for(len: u32) -> usize {
    (60 + len as usize).div_ceil(PAGE)
}

/// Whether a message with payload `m` fits now (ABI section 5, "Space").
fn fits(len: u32, rx: u32, tx: u32, m: u32) -> bool {
    let free = if rx == tx {
        len as u64
    } else {
        (rx as u64 + len as u64 - tx as u64) % len as u64
    };
    16 + abi::roundup(m as u64) + 16 <= free
}

fn payload_space(len: u32, rx: u32, tx: u32) -> u32 {
    let free = if rx == tx {
        len
    } else {
        ((rx as u64 + len as u64 - tx as u64) % len as u64) as u32
    };
    free.saturating_sub(32)
}

// ---- the instrumented hypervisor ------------------------------------------

/// A frame pinned through [`FuzzEnv`]: the simulation's frame and its page.
pub struct FuzzFrame {
    inner: SimFrame,
    dom: DomId,
    pfn: usize,
}

/// A guest write the harness makes (between or during hypercalls).
#[derive(Clone, Debug)]
struct Scribble {
    dom: DomId,
    off: usize,
    bytes: Vec<u8>,
}

/// What the engine did during one operation.
#[derive(Default)]
struct OpLog {
    /// `copy_to_guest` ranges: domain, memory offset, length.
    to_guest: Vec<(DomId, usize, usize)>,
    /// Frames pinned, in order.
    pinned: Vec<(DomId, usize)>,
    virqs: Vec<DomId>,
    /// Guest writes made during the operation (the hook fired).
    fired: Vec<(DomId, usize, usize)>,
    /// A racing guest write: made just before the n-th guest access.
    hook: Option<(u32, Scribble)>,
}

/// [`Sim`], with a record of what the engine asks of it and a hook that
/// lets a guest write its memory in the middle of a hypercall.
pub struct FuzzEnv {
    sim: Sim,
    pins: Mutex<[[u32; MEM_PAGES]; NDOM]>,
    log: Mutex<OpLog>,
}

impl FuzzEnv {
    fn tick(&self) {
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

    fn pins_of(&self, d: usize) -> u32 {
        self.pins.lock().unwrap()[d].iter().sum()
    }

    fn pin_count(&self, d: usize, p: usize) -> u32 {
        self.pins.lock().unwrap()[d][p]
    }
}

impl Env for FuzzEnv {
    type Frame = FuzzFrame;
    type Mutex = <Sim as Env>::Mutex;
    type RwLock = <Sim as Env>::RwLock;

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

    fn current_is_privileged(&self) -> bool {
        self.sim.current_is_privileged()
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

// ---- the reference model ----------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    source: Addr,
    protocol: u32,
    payload: Vec<u8>,
}

/// A registered ring, as the model knows it.
#[derive(Debug)]
struct MRing {
    dom: DomId,
    port: u32,
    partner: DomId,
    len: u32,
    /// Frames (pages of `dom`) in ring order.
    pages: Vec<usize>,
    /// The receiver never corrupted it: its contents, `rx_ptr` and `tx_ptr`
    /// are known, its pages are its own and laid out contiguously.
    trusted: bool,
    /// Xen's `tx_ptr` (when trusted).
    tx: u32,
    /// Messages between `rx_ptr` and `tx_ptr` (when trusted).
    msgs: VecDeque<Msg>,
    /// Senders queued on it; `None` when the model lost track.
    waiters: Option<Vec<(DomId, u32)>>,
}

impl MRing {
    fn untrust(&mut self) {
        self.trusted = false;
        self.msgs.clear();
    }

    fn hdr(&self) -> usize {
        self.pages[0] * PAGE
    }

    /// Memory offset of data byte `o` (trusted rings: pages contiguous).
    fn data(&self, o: u32) -> usize {
        self.pages[0] * PAGE + 60 + o as usize
    }

    fn remove_waiter(&mut self, d: DomId) {
        if let Some(ws) = &mut self.waiters {
            ws.retain(|w| w.0 != d);
        }
    }

    fn add_waiter(&mut self, d: DomId, space: u32) {
        if let Some(ws) = &mut self.waiters {
            match ws.iter_mut().find(|w| w.0 == d) {
                Some(w) => w.1 = space,
                None => ws.push((d, space)),
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VRule {
    src: Addr,
    dst: Addr,
    accept: bool,
}

fn dom_matches(p: DomId, d: DomId) -> bool {
    p == d || p == DOMID_ANY || p == DOMID_WILDCARD
}

fn addr_matches(p: Addr, a: Addr) -> bool {
    dom_matches(p.domain, a.domain) && ({ p.port } == { a.port } || { p.port } == PORT_ANY)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    /// The destination domain's ring table is not known to the model.
    Unknown,
    None,
    Ring(usize),
}

struct RegPlan {
    ring_va: u64,
    port: u32,
    partner: DomId,
    rx: u32,
    len: u32,
    pfns: Vec<usize>,
    expect_tx: u32,
}

struct SendPlan {
    dst: Addr,
    source: Addr,
    protocol: u32,
    parts: Vec<(u64, u64)>,
    total: u32,
    look: Look,
}

struct Ent {
    off: usize,
    ring: Addr,
    req: u32,
    look: Look,
    /// Flags that must be set / clear (mask, value) and max_message_size.
    expect: Option<(u16, u16, u32)>,
}

struct NotifyPlan {
    header_ok: bool,
    wake: Vec<(usize, DomId)>,
    lost: Vec<usize>,
    ents: Vec<Ent>,
    lenient: bool,
}

enum Plan {
    None,
    Register(Option<RegPlan>),
    Unregister(Option<(u32, DomId)>),
    Send(Option<SendPlan>),
    Notify(NotifyPlan),
    VipAdd(Option<(VRule, u32)>),
    VipDel(Option<i64>, Option<VRule>),
    VipList(Option<(usize, u32)>),
}

/// Payload arguments of send (buffer, length) or sendv (iovs, count).
enum Payload {
    Buffer(u64, u32),
    Iovs(u64, u32),
}

// ---- the input decoder --------------------------------------------------------

struct Input<'a> {
    d: &'a [u8],
    i: usize,
}

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        self.u32() as u64 | (self.u32() as u64) << 32
    }
    /// True with probability 1/n.
    fn one_in(&mut self, n: u8) -> bool {
        self.u8().is_multiple_of(n)
    }
    fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }
    fn done(&self) -> bool {
        self.i >= self.d.len()
    }
}

// ---- the harness ----------------------------------------------------------------

struct Fuzz {
    env: FuzzEnv,
    engine: Engine<FuzzEnv>,
    /// Each domain's memory as it must be (guest writes applied).
    shadow: Vec<Vec<u8>>,
    rings: Vec<MRing>,
    /// Whether the model knows the ring table of each domain.
    known: [bool; NDOM],
    vip: Vec<VRule>,
    /// Every page of every domain, pinned by the harness itself so that it
    /// can compare guest memory with `shadow` in place. Unpinned at the end.
    view: Vec<SimFrame>,
    /// Extra ranges the current operation may write in trusted rings.
    allowed: Vec<(DomId, usize, usize)>,
    expect_virq: Vec<DomId>,
    trace: bool,
    /// The current hypercall, for failure messages.
    last: String,
    vip_todo: VipTodo,
}

/// What to do about the rule table once the current hypercall is checked.
enum VipTodo {
    Nothing,
    /// List it and compare with the model.
    Verify,
    /// Take the engine's word for it (a racing guest changed the rule).
    Resync,
}

impl Fuzz {
    fn new(mut shadow: Vec<Vec<u8>>) -> Fuzz {
        let doms: Vec<DomId> = (0..NDOM as DomId).collect();
        let sim = Sim::new(&doms, MEM_PAGES);
        let mut view = Vec::with_capacity(NDOM * MEM_PAGES);
        for d in 0..NDOM as DomId {
            sim.as_dom(d, || {
                for p in 0..MEM_PAGES {
                    view.push(sim.pin_frame(Sim::gfn(d, p)).unwrap());
                }
            });
        }
        shadow.resize_with(NDOM, Vec::new);
        for m in shadow.iter_mut() {
            m.clear();
            m.resize(MEM, 0);
        }
        for (d, mem) in shadow.iter_mut().enumerate() {
            sim.set_readonly(d as DomId, RO_PAGE, true);
            for &p in GUARDS.iter().chain(&[RO_PAGE]) {
                let page = &mut mem[p * PAGE..(p + 1) * PAGE];
                for (i, b) in page.iter_mut().enumerate() {
                    *b = 0xa5 ^ (p as u8) ^ (i as u8).wrapping_mul(7) ^ (d as u8);
                }
                sim.write(d as DomId, va(p * PAGE), page);
            }
        }
        Fuzz {
            env: FuzzEnv {
                sim,
                pins: Mutex::new([[0; MEM_PAGES]; NDOM]),
                log: Mutex::new(OpLog::default()),
            },
            engine: Engine::try_new().expect("engine"),
            shadow,
            rings: Vec::new(),
            known: [true; NDOM],
            vip: Vec::new(),
            view,
            allowed: Vec::new(),
            expect_virq: Vec::new(),
            trace: std::env::var_os("V4V_FUZZ_TRACE").is_some(),
            last: String::new(),
            vip_todo: VipTodo::Nothing,
        }
    }

    // -- guest memory --

    /// The guest writes its own memory (marks rings it corrupts untrusted).
    fn gw(&mut self, d: DomId, off: usize, bytes: &[u8]) {
        let n = bytes.len().min(MEM.saturating_sub(off));
        if n == 0 || self.shadow[d as usize][off..off + n] == bytes[..n] {
            return;
        }
        self.env.sim.write(d, va(off), &bytes[..n]);
        self.shadow[d as usize][off..off + n].copy_from_slice(&bytes[..n]);
        self.touch(d, off, n);
    }

    /// A receiver moving its own `rx_ptr` as the ABI intends.
    fn gw_legit(&mut self, d: DomId, off: usize, bytes: &[u8]) {
        self.env.sim.write(d, va(off), bytes);
        self.shadow[d as usize][off..off + bytes.len()].copy_from_slice(bytes);
    }

    fn touch(&mut self, d: DomId, off: usize, len: usize) {
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
    fn peek(&self, d: DomId, at: u64, len: usize) -> Option<&[u8]> {
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

    fn readable(at: u64, len: u64) -> bool {
        len == 0
            || at
                .checked_sub(VA_BASE)
                .and_then(|o| o.checked_add(len))
                .is_some_and(|end| end <= MEM as u64)
    }

    fn mem_u32(&self, d: DomId, off: usize) -> u32 {
        le32(&self.shadow[d as usize], off)
    }

    fn ring_rx(&self, r: &MRing) -> u32 {
        self.mem_u32(r.dom, r.hdr() + 20)
    }

    // -- the model --

    fn lookup(&self, dst: Addr, sender: DomId) -> Look {
        let dd = dst.domain;
        if (dd as usize) < NDOM && !self.known[dd as usize] {
            return Look::Unknown;
        }
        let find = |partner: DomId| {
            self.rings
                .iter()
                .position(|r| r.dom == dd && r.port == { dst.port } && r.partner == partner)
        };
        match find(sender).or_else(|| find(DOMID_ANY)) {
            Some(i) => Look::Ring(i),
            None => Look::None,
        }
    }

    fn allows(&self, src: Addr, dst: Addr) -> bool {
        self.vip
            .iter()
            .find(|r| addr_matches(r.src, src) && addr_matches(r.dst, dst))
            .is_none_or(|r| r.accept)
    }

    fn forget_domain(&mut self, d: DomId) {
        self.known[d as usize] = false;
        for r in self.rings.iter_mut().filter(|r| r.dom == d) {
            r.untrust();
            r.waiters = None;
        }
    }

    fn lose_rings_reachable_by(&mut self, d: DomId, content: bool) {
        for r in self
            .rings
            .iter_mut()
            .filter(|r| r.partner == d || r.partner == DOMID_ANY || r.dom == d)
        {
            if content {
                r.untrust();
            }
            r.waiters = None;
        }
    }

    // -- hypercalls --

    /// One hypercall, checked against the model.
    #[allow(clippy::too_many_arguments)]
    fn call(
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
    fn call_inner(
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
        self.last = std::format!(
            "dom{d} cmd {cmd} args {:#x} {:#x} {:#x} {:#x} {:#x} hook {hook:?}",
            a[0],
            a[1],
            a[2],
            a4,
            a5
        );
        let (allowed, plan) = if checked {
            self.plan(d, cmd, a, a4, a5)
        } else {
            (Vec::new(), Plan::None)
        };
        *self.env.log.lock().unwrap() = OpLog {
            hook,
            ..OpLog::default()
        };
        let rv = self.env.sim.as_dom(d, || {
            super::with_continuations(
                (cmd, a[0], a[1], a[2], a4, a5),
                |(c, a1, a2, a3, a4, a5)| self.engine.hypercall(&self.env, c, a1, a2, a3, a4, a5),
            )
        });
        let log = core::mem::take(&mut *self.env.log.lock().unwrap());
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

    fn plan(&mut self, d: DomId, cmd: u32, a: [u64; 3], a4: u32, a5: u32) -> (Vec<i64>, Plan) {
        match cmd {
            op::REGISTER_RING => self.plan_register(d, a[0], a[1]),
            op::UNREGISTER_RING => self.plan_unregister(d, a[0]),
            op::SEND => self.plan_send(d, a[0], a[1], Payload::Buffer(a[2], a4), a5),
            op::SENDV => self.plan_send(d, a[0], a[1], Payload::Iovs(a[2], a4), a5),
            op::NOTIFY => self.plan_notify(d, a[0]),
            op::VIPTABLES_ADD => self.plan_vip_add(d, a[0], a4),
            op::VIPTABLES_DEL => self.plan_vip_del(d, a[0], a4 as i32),
            op::VIPTABLES_LIST => self.plan_vip_list(d, a[0]),
            _ => (vec![e(errno::ENOSYS)], Plan::None),
        }
    }

    fn pinnable(d: DomId, gfn: u64) -> Option<usize> {
        let p = gfn.checked_sub(gfn_base(d))?;
        (p < MEM_PAGES as u64 && p as usize != RO_PAGE).then_some(p as usize)
    }

    fn plan_register(&mut self, d: DomId, ring_p: u64, list_p: u64) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if !ring_p.is_multiple_of(PAGE as u64) {
            errs.push(e(errno::EINVAL));
        }
        let hdr = self.peek(d, ring_p, 60).map(|h| h.to_vec());
        let list = self.peek(d, list_p, 40).map(|l| l.to_vec());
        let mut len = None;
        match &hdr {
            None => errs.push(e(errno::EFAULT)),
            Some(h) => {
                if le64(h, 0) != RING_MAGIC || !valid_ring_len(le32(h, 16)) {
                    errs.push(e(errno::EINVAL));
                } else {
                    len = Some(le32(h, 16));
                }
            }
        }
        match &list {
            None => errs.push(e(errno::EFAULT)),
            Some(l) if le64(l, 0) != PFN_LIST_MAGIC || le32(l, 12) != 0 => {
                errs.push(e(errno::EINVAL))
            }
            Some(_) => {}
        }
        let mut pfns = Vec::new();
        let mut needed = 0;
        if let (Some(l), Some(len)) = (&list, len) {
            needed = frames_for(len);
            let npage = le32(l, 8);
            if (npage as usize) < needed || npage > MAX_RING_PAGES {
                errs.push(e(errno::EINVAL));
            } else {
                match list_p
                    .checked_add(40)
                    .and_then(|at| self.peek(d, at, 8 * needed))
                {
                    None => errs.push(e(errno::EFAULT)),
                    Some(ents) => {
                        for i in 0..needed {
                            match Self::pinnable(d, le64(ents, 8 * i)) {
                                Some(p) => pfns.push(p),
                                None => {
                                    errs.push(e(errno::EINVAL));
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        // Per-domain quotas (the engine's, not the ABI's numbers).
        let over = match (&hdr, self.known[d as usize]) {
            (Some(h), true) => {
                let (port, partner) = (le32(h, 8), le16(h, 14));
                let mine = self.rings.iter().filter(|r| r.dom == d);
                let count = mine.clone().count();
                let pages: usize = mine.clone().map(|r| r.pages.len()).sum();
                let old = mine
                    .clone()
                    .find(|r| r.port == port && r.partner == partner);
                let replaced = old.map_or(0, |r| r.pages.len());
                (old.is_none() && count >= MAX_RINGS_PER_DOMAIN)
                    || pages - replaced + needed > MAX_PAGES_PER_DOMAIN
            }
            _ => true,
        };
        let mut allowed = if errs.is_empty() { vec![0] } else { errs };
        if over {
            allowed.push(e(errno::ENOSPC));
        }
        let plan = hdr.filter(|_| allowed.contains(&0)).map(|h| {
            let (rx, tx) = (le32(&h, 20), le32(&h, 24));
            let len = le32(&h, 16);
            let expect_tx = if tx.is_multiple_of(16) && tx < len {
                tx
            } else if abi::roundup(rx as u64) < len as u64 {
                abi::roundup(rx as u64) as u32
            } else {
                0
            };
            RegPlan {
                ring_va: ring_p,
                port: le32(&h, 8),
                partner: le16(&h, 14),
                rx,
                len,
                pfns,
                expect_tx,
            }
        });
        (allowed, Plan::Register(plan))
    }

    fn post_register(&mut self, d: DomId, p: RegPlan, log: &OpLog) {
        let pinned: Vec<usize> = log.pinned.iter().map(|&(_, pfn)| pfn).collect();
        assert!(
            log.pinned.iter().all(|&(dd, _)| dd == d) && pinned == p.pfns,
            "{}: pinned {:?}, the pfn list names {:?}",
            self.last,
            log.pinned,
            p.pfns
        );
        // The id goes back with the caller's real domain.
        let mut id = [0u8; 8];
        self.env.sim.read(d, p.ring_va + 8, &mut id);
        assert_eq!(
            (le32(&id, 0), le16(&id, 4), le16(&id, 6)),
            (p.port, d, p.partner),
            "{}: ring id written back",
            self.last
        );
        let tx = self.env.sim.read_u32(d, va(p.pfns[0] * PAGE + 24));
        assert_eq!(tx, p.expect_tx, "{}: tx_ptr after register", self.last);

        let old = self
            .rings
            .iter()
            .position(|r| r.dom == d && r.port == p.port && r.partner == p.partner)
            .map(|i| self.rings.remove(i));
        let n = p.pfns.len();
        let contiguous = SLOTS
            .iter()
            .any(|s| n <= s.cap && p.pfns.iter().enumerate().all(|(i, &pf)| pf == s.ring + i));
        let exclusive = p
            .pfns
            .iter()
            .all(|&pf| self.env.pin_count(d as usize, pf) == 1);
        let laid_out =
            contiguous && exclusive && self.known[d as usize] && p.ring_va == va(p.pfns[0] * PAGE);
        let mut msgs = VecDeque::new();
        let trusted = if !laid_out {
            false
        } else if p.rx == p.expect_tx {
            true
        } else if let Some(o) = old
            .as_ref()
            .filter(|o| o.trusted && o.pages == p.pfns && o.len == p.len && o.tx == p.expect_tx)
        {
            msgs = o.msgs.clone();
            true
        } else {
            false
        };
        let waiters = match &old {
            Some(o) => o.waiters.clone(),
            None => Some(Vec::new()),
        };
        self.rings.push(MRing {
            dom: d,
            port: p.port,
            partner: p.partner,
            len: p.len,
            pages: p.pfns.clone(),
            trusted,
            tx: p.expect_tx,
            msgs,
            waiters,
        });
        // Frames shared between rings (or listed twice): the rings write
        // over each other, so none of them can be checked.
        for &pf in &p.pfns {
            if self.env.pin_count(d as usize, pf) > 1 {
                for r in self.rings.iter_mut().filter(|r| r.dom == d) {
                    if r.pages.contains(&pf) {
                        r.untrust();
                    }
                }
            }
        }
    }

    fn plan_unregister(&mut self, d: DomId, ring_p: u64) -> (Vec<i64>, Plan) {
        let Some(h) = self.peek(d, ring_p, 60) else {
            return (vec![e(errno::EFAULT)], Plan::Unregister(None));
        };
        if le64(h, 0) != RING_MAGIC {
            return (vec![e(errno::EINVAL)], Plan::Unregister(None));
        }
        let key = (le32(h, 8), le16(h, 14));
        let exists = self
            .rings
            .iter()
            .any(|r| r.dom == d && r.port == key.0 && r.partner == key.1);
        let allowed = if !self.known[d as usize] {
            vec![0, e(errno::ENOENT)]
        } else if exists {
            vec![0]
        } else {
            vec![e(errno::ENOENT)]
        };
        (allowed, Plan::Unregister(Some(key)))
    }

    fn plan_send(
        &mut self,
        d: DomId,
        src_p: u64,
        dst_p: u64,
        payload: Payload,
        protocol: u32,
    ) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        let src = self.peek(d, src_p, 6).map(|b| addr_at(b, 0));
        let dst = self.peek(d, dst_p, 6).map(|b| addr_at(b, 0));
        if src.is_none() || dst.is_none() {
            errs.push(e(errno::EFAULT));
        }
        let mut parts = Vec::new();
        match payload {
            Payload::Buffer(buf, len) => {
                if len > MAX_MSG_SIZE {
                    errs.push(e(errno::EINVAL));
                }
                parts.push((buf, len as u64));
            }
            Payload::Iovs(iov, niov) => {
                if niov > MAXIOV {
                    errs.push(e(errno::EINVAL));
                } else {
                    match self.peek(d, iov, 16 * niov as usize) {
                        None => errs.push(e(errno::EFAULT)),
                        Some(b) => {
                            for i in 0..niov as usize {
                                parts.push((le64(b, 16 * i), le64(b, 16 * i + 8)));
                            }
                        }
                    }
                    let total = parts.iter().fold(0u64, |t, p| t.saturating_add(p.1));
                    if total > MAX_MSG_SIZE as u64 {
                        errs.push(e(errno::EINVAL));
                    }
                }
            }
        }
        let total = parts.iter().fold(0u64, |t, p| t.saturating_add(p.1));
        let readable = parts.iter().all(|&(b, l)| Self::readable(b, l));
        if let Some(s) = src {
            if s.domain != d && s.domain != DOMID_ANY {
                errs.push(e(errno::EPERM));
            }
        }
        // An unreadable payload is a bad caller argument (ABI section 6);
        // unless strict, the model also accepts finding it only when copying.
        if !readable && (STRICT_PAYLOAD_FAULT_ORDER || !errs.is_empty()) {
            errs.push(e(errno::EFAULT));
        }
        if !errs.is_empty() {
            return (errs, Plan::Send(None));
        }
        let (src, dst) = (src.unwrap(), dst.unwrap());
        let total = total as u32;
        let source = Addr {
            port: src.port,
            domain: d,
        };
        let look = self.lookup(dst, d);
        let vip = self.allows(source, dst);
        let ok_or_fault = if readable {
            total as i64
        } else {
            e(errno::EFAULT)
        };
        let mut allowed = match look {
            Look::Unknown => vec![
                e(errno::ENOTCONN),
                e(errno::EPERM),
                e(errno::EAGAIN),
                e(errno::ENOBUFS),
                e(errno::ENOSPC),
                ok_or_fault,
            ],
            Look::None if vip => vec![e(errno::ENOTCONN)],
            // Rejected: -EPERM, unless the domain has no V4V state at all.
            Look::None => vec![e(errno::ENOTCONN), e(errno::EPERM)],
            Look::Ring(_) if !vip => vec![e(errno::EPERM)],
            Look::Ring(i) => {
                let r = &self.rings[i];
                if total > r.len - 32 {
                    vec![e(errno::ENOBUFS)]
                } else if r.trusted && fits(r.len, self.ring_rx(r), r.tx, total) {
                    vec![ok_or_fault]
                } else if r.trusted || !valid_offset(r.len, self.ring_rx(r)) {
                    // A corrupt rx_ptr means no space (ABI section 5).
                    vec![e(errno::EAGAIN), e(errno::ENOSPC)]
                } else {
                    vec![e(errno::EAGAIN), e(errno::ENOSPC), ok_or_fault]
                }
            }
        };
        if !readable {
            allowed.push(e(errno::EFAULT));
        }
        let plan = SendPlan {
            dst,
            source,
            protocol,
            parts,
            total,
            look,
        };
        (allowed, Plan::Send(Some(plan)))
    }

    fn post_send(&mut self, d: DomId, p: SendPlan, rv: i64) {
        if rv >= 0 {
            self.expect_virq.push(p.dst.domain);
        }
        let Look::Ring(i) = p.look else { return };
        if rv == p.total as i64 {
            self.rings[i].remove_waiter(d);
        } else if rv == e(errno::EAGAIN) {
            self.rings[i].add_waiter(d, p.total);
        }
        let r = &self.rings[i];
        if !r.trusted || !(rv >= 0 || rv == e(errno::EFAULT)) {
            return;
        }
        // The message's slot is the only part of the ring it may write
        // (on -EFAULT a part of it may be written, tx_ptr stays).
        let slot = 16 + abi::roundup(p.total as u64) as usize;
        let first = slot.min((r.len - r.tx) as usize);
        self.allowed.push((r.dom, r.data(r.tx), first));
        if slot > first {
            self.allowed.push((r.dom, r.data(0), slot - first));
        }
        if rv < 0 {
            return;
        }
        // A payload read out of the destination ring itself changes as the
        // message is written: its content is not predictable.
        let own = r.pages[0] * PAGE..(r.pages[r.pages.len() - 1] + 1) * PAGE;
        let overlaps = r.dom == d
            && p.parts.iter().any(|&(b, l)| {
                let o = b.wrapping_sub(VA_BASE) as usize;
                l > 0 && o < own.end && o + l as usize > own.start
            });
        if overlaps {
            self.rings[i].untrust();
            return;
        }
        let mut payload = Vec::with_capacity(p.total as usize);
        for &(b, l) in &p.parts {
            if l > 0 {
                payload.extend_from_slice(self.peek(d, b, l as usize).unwrap());
            }
        }
        let r = &mut self.rings[i];
        r.msgs.push_back(Msg {
            source: p.source,
            protocol: p.protocol,
            payload,
        });
        r.tx = ((r.tx as u64 + slot as u64) % r.len as u64) as u32;
    }

    fn plan_notify(&mut self, d: DomId, rd: u64) -> (Vec<i64>, Plan) {
        let mut plan = NotifyPlan {
            header_ok: false,
            wake: Vec::new(),
            lost: Vec::new(),
            ents: Vec::new(),
            lenient: false,
        };
        let nent = if rd == 0 {
            0
        } else {
            let Some(h) = self.peek(d, rd, 48) else {
                return (vec![e(errno::EFAULT)], Plan::Notify(plan));
            };
            if le64(h, 0) != RING_DATA_MAGIC || le32(h, 12) != 0 || le32(h, 8) > MAXENT {
                return (vec![e(errno::EINVAL)], Plan::Notify(plan));
            }
            le32(h, 8)
        };
        plan.header_ok = true;
        // Senders queued on the caller's rings whose message now fits.
        for (i, r) in self.rings.iter().enumerate().filter(|(_, r)| r.dom == d) {
            match &r.waiters {
                Some(ws) if r.trusted => {
                    let rx = self.ring_rx(r);
                    for &(w, space) in ws {
                        if fits(r.len, rx, r.tx, space) {
                            plan.wake.push((i, w));
                        }
                    }
                }
                Some(ws) if !ws.is_empty() => plan.lost.push(i),
                _ => {}
            }
        }
        let mut fault = false;
        for k in 0..nent as u64 {
            let Some(at) = rd.checked_add(48 + 16 * k) else {
                fault = true;
                break;
            };
            let Some(b) = self.peek(d, at, 16) else {
                fault = true;
                break;
            };
            let (ring, req) = (addr_at(b, 0), le32(b, 8));
            let look = self.lookup(ring, d);
            let vip = self.allows(
                Addr {
                    port: PORT_NONE,
                    domain: d,
                },
                ring,
            );
            let expect = match look {
                Look::Unknown => None,
                Look::None => Some((0xffff, 0, 0)),
                Look::Ring(_) if !vip => Some((0xffff, 0, 0)),
                Look::Ring(i) => {
                    let r = &self.rings[i];
                    if r.trusted {
                        let rx = self.ring_rx(r);
                        let mut f = 2; // EXISTS
                        if rx == r.tx {
                            f |= 1; // EMPTY
                        }
                        // "else queue a wait and set PENDING", even for a
                        // size the ring can never take.
                        if fits(r.len, rx, r.tx, req) {
                            f |= 8; // SUFFICIENT
                        } else {
                            f |= 4; // PENDING
                        }
                        Some((0xffff, f, r.len - 32))
                    } else if !valid_offset(r.len, self.ring_rx(r)) {
                        // Corrupt rx_ptr: no space, not empty, a wait queued.
                        Some((0xf, 2 | 4, r.len - 32))
                    } else {
                        Some((2, 2, r.len - 32))
                    }
                }
            };
            plan.ents.push(Ent {
                off: (at - VA_BASE) as usize,
                ring,
                req,
                look,
                expect,
            });
        }
        // Entries written back over ring pages change what later entries
        // see: then only the form of the answers is checked.
        if let (Some(f), Some(l)) = (plan.ents.first(), plan.ents.last()) {
            let (p0, p1) = (f.off / PAGE, (l.off + 15) / PAGE);
            plan.lenient = (p0..=p1).any(|p| self.env.pin_count(d as usize, p) > 0);
        }
        let rv = if fault { e(errno::EFAULT) } else { 0 };
        (vec![rv], Plan::Notify(plan))
    }

    fn post_notify(&mut self, d: DomId, p: NotifyPlan) {
        if !p.header_ok {
            return;
        }
        for (i, w) in p.wake {
            self.rings[i].remove_waiter(w);
            self.expect_virq.push(w);
        }
        for i in p.lost {
            self.rings[i].waiters = None;
        }
        for ent in &p.ents {
            let mut b = [0u8; 16];
            self.env.sim.read(d, va(ent.off), &mut b);
            let (flags, mms) = (le16(&b, 6), le32(&b, 12));
            if !p.lenient {
                assert!(
                    addr_at(&b, 0) == ent.ring && le32(&b, 8) == ent.req,
                    "{}: notify changed an entry's ring or space_required",
                    self.last
                );
                if let Some((mask, want, want_mms)) = ent.expect {
                    assert!(
                        flags & mask == want && mms == want_mms,
                        "{}: entry {:?} req {}: flags {flags:#x} mms {mms}, \
                         expected flags {want:#x} (mask {mask:#x}) mms {want_mms}",
                        self.last,
                        ent.ring,
                        ent.req
                    );
                }
                assert!(
                    flags & 12 != 12,
                    "{}: both SUFFICIENT and PENDING",
                    self.last
                );
            }
            if let Look::Ring(i) = ent.look {
                if p.lenient {
                    self.rings[i].waiters = None;
                } else if flags & 8 != 0 {
                    self.rings[i].remove_waiter(d);
                } else if flags & 4 != 0 {
                    self.rings[i].add_waiter(d, ent.req);
                }
            }
        }
    }

    fn read_rule(&self, d: DomId, at: u64) -> Option<Result<VRule, ()>> {
        let b = self.peek(d, at, 16)?;
        Some(match le32(b, 12) {
            a @ (0 | 1) => Ok(VRule {
                src: addr_at(b, 0),
                dst: addr_at(b, 6),
                accept: a == 1,
            }),
            _ => Err(()),
        })
    }

    fn plan_vip_add(&mut self, d: DomId, rule_p: u64, pos: u32) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if d != 0 {
            errs.push(e(errno::EPERM));
        }
        let rule = match self.read_rule(d, rule_p) {
            None => {
                errs.push(e(errno::EFAULT));
                None
            }
            Some(Err(())) => {
                errs.push(e(errno::EINVAL));
                None
            }
            Some(Ok(r)) => Some(r),
        };
        if !errs.is_empty() {
            return (errs, Plan::VipAdd(None));
        }
        if self.vip.len() >= MAX_RULES {
            return (vec![e(errno::ENOSPC)], Plan::VipAdd(None));
        }
        (vec![0], Plan::VipAdd(rule.map(|r| (r, pos))))
    }

    fn plan_vip_del(&mut self, d: DomId, rule_p: u64, pos: i32) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if d != 0 {
            errs.push(e(errno::EPERM));
        }
        let mut rule = None;
        if pos == -1 && rule_p != 0 {
            match self.read_rule(d, rule_p) {
                None => errs.push(e(errno::EFAULT)),
                Some(Err(())) => errs.push(e(errno::EINVAL)),
                Some(Ok(r)) => rule = Some(r),
            }
        }
        if pos < -1 {
            // A negative position other than -1: invalid, or "names none"
            // (-ENOENT); the ABI can be read either way.
            errs.push(e(errno::EINVAL));
            errs.push(e(errno::ENOENT));
        }
        if !errs.is_empty() {
            return (errs, Plan::VipDel(None, None));
        }
        let allowed = if pos >= 0 {
            if (pos as usize) < self.vip.len() {
                vec![0]
            } else {
                vec![e(errno::ENOENT)]
            }
        } else if let Some(r) = rule {
            if self.vip.contains(&r) {
                vec![0]
            } else {
                vec![e(errno::ENOENT)]
            }
        } else if self.vip.is_empty() {
            // Flushing an empty list: the ABI does not say.
            vec![0, e(errno::ENOENT)]
        } else {
            vec![0]
        };
        (allowed, Plan::VipDel(Some(pos as i64), rule))
    }

    fn plan_vip_list(&mut self, d: DomId, list_p: u64) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if d != 0 {
            errs.push(e(errno::EPERM));
        }
        let start = match self.peek(d, list_p, 132) {
            None => {
                errs.push(e(errno::EFAULT));
                None
            }
            Some(b) => Some(le32(b, 128)),
        };
        if !errs.is_empty() {
            return (errs, Plan::VipList(None));
        }
        let off = (list_p - VA_BASE) as usize;
        (vec![0], Plan::VipList(start.map(|s| (off, s))))
    }

    fn post(&mut self, d: DomId, _cmd: u32, _a: [u64; 3], plan: Plan, rv: i64, log: &OpLog) {
        match plan {
            Plan::None => {}
            Plan::Register(p) => {
                if let (0, Some(p)) = (rv, p) {
                    self.post_register(d, p, log);
                }
            }
            Plan::Unregister(Some((port, partner))) if rv == 0 => {
                if let Some(i) = self
                    .rings
                    .iter()
                    .position(|r| r.dom == d && r.port == port && r.partner == partner)
                {
                    let r = self.rings.remove(i);
                    for (w, _) in r.waiters.unwrap_or_default() {
                        self.expect_virq.push(w);
                    }
                }
            }
            Plan::Unregister(_) => {}
            Plan::Send(p) => {
                if let Some(p) = p {
                    self.post_send(d, p, rv);
                }
            }
            Plan::Notify(p) => self.post_notify(d, p),
            Plan::VipAdd(Some((r, pos))) if rv == 0 => {
                let at = (pos as usize).min(self.vip.len());
                self.vip.insert(at, r);
                self.vip_todo = VipTodo::Verify;
            }
            Plan::VipAdd(_) => {}
            Plan::VipDel(Some(pos), rule) if rv == 0 => {
                if pos >= 0 {
                    self.vip.remove(pos as usize);
                } else if let Some(r) = rule {
                    let i = self.vip.iter().position(|x| *x == r).unwrap();
                    self.vip.remove(i);
                } else {
                    self.vip.clear();
                }
                self.vip_todo = VipTodo::Verify;
            }
            Plan::VipDel(..) => {}
            Plan::VipList(Some((off, start))) if rv == 0 => {
                let mut b = [0u8; 132];
                self.env.sim.read(d, va(off), &mut b);
                let n = le32(&b, 128) as usize;
                let want: Vec<VRule> = self
                    .vip
                    .iter()
                    .skip(start as usize)
                    .take(8)
                    .copied()
                    .collect();
                assert_eq!(n, want.len(), "{}: nb_rules", self.last);
                for (k, w) in want.iter().enumerate() {
                    let got = VRule {
                        src: addr_at(&b, 16 * k),
                        dst: addr_at(&b, 16 * k + 6),
                        accept: le32(&b, 16 * k + 12) == 1,
                    };
                    assert_eq!(got, *w, "{}: rule {k} listed", self.last);
                }
            }
            Plan::VipList(_) => {}
        }
    }

    /// List the whole rule table as dom0 (each listing checked by the model).
    fn verify_vip(&mut self) {
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
    fn resync_vip(&mut self) {
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

    /// Page `p` of domain `d` as it is now.
    fn page(&self, d: usize, p: usize) -> &[u8] {
        debug_assert!(self.view.len() > d * MEM_PAGES + p);
        let at = self.env.sim.page_ptr(d as DomId, p);
        // SAFETY: a pinned page of the simulation, PAGE bytes, alive as long
        // as `self.env`; the engine is not running (this thread is here), so
        // nothing writes it while the slice lives.
        unsafe { core::slice::from_raw_parts(at, PAGE) }
    }

    /// Guest memory may only have changed where the engine may write.
    fn check_memory(&mut self, log: &OpLog) {
        // Bytes the guest asked to be written, or wrote itself, may hold
        // anything.
        for &(d, o, l) in log.to_guest.iter().chain(&log.fired) {
            let (d, mut off) = (d as usize, o);
            while off < o + l {
                let n = (PAGE - off % PAGE).min(o + l - off);
                let now = &self.page(d, off / PAGE)[off % PAGE..][..n];
                // (two borrows of self: copy through a small buffer)
                let now = now.to_vec();
                self.shadow[d][off..off + n].copy_from_slice(&now);
                off += n;
            }
        }
        for d in 0..NDOM {
            for p in 0..MEM_PAGES {
                let range = p * PAGE..(p + 1) * PAGE;
                if self.page(d, p) == &self.shadow[d][range.clone()] {
                    continue;
                }
                let rule = self.page_rule(d as DomId, p, log);
                let now = self.page(d, p).to_vec();
                let was = &self.shadow[d][range.clone()];
                // The parts of the page the engine may not write must be as
                // they were (compared piecewise, without byte loops).
                let mut bad = None;
                for (a, b) in self.forbidden(rule, d as DomId, p) {
                    if now[a..b] != was[a..b] {
                        let i = (a..b).find(|&i| now[i] != was[i]).unwrap();
                        bad = Some(i);
                        break;
                    }
                }
                if let Some(i) = bad {
                    panic!(
                        "{}: engine wrote dom{d} memory at offset {:#x} (page {p}, \
                         byte {i:#x}): {:#04x} -> {:#04x}, outside every pinned frame, \
                         requested copy and message slot",
                        self.last,
                        p * PAGE + i,
                        was[i],
                        now[i],
                    );
                }
                self.shadow[d][range].copy_from_slice(&now);
            }
        }
    }

    /// What the engine may write in page `p` of `d`: nothing (not a ring
    /// frame), anything (a frame of a ring the model does not vouch for),
    /// or, in a trusted ring, its tx_ptr and the current message's slot.
    fn page_rule(&self, d: DomId, p: usize, log: &OpLog) -> Option<Option<usize>> {
        if self.env.pin_count(d as usize, p) == 0 && !log.pinned.contains(&(d, p)) {
            return None;
        }
        Some(
            self.rings
                .iter()
                .position(|r| r.dom == d && r.trusted && r.pages.contains(&p)),
        )
    }

    /// Byte ranges of page `p` of `d` (page offsets) that the engine must
    /// not have changed, given the page's rule.
    fn forbidden(&self, rule: Option<Option<usize>>, d: DomId, p: usize) -> Vec<(usize, usize)> {
        let i = match rule {
            None => return vec![(0, PAGE)],
            Some(None) => return Vec::new(),
            Some(Some(i)) => i,
        };
        // Allowed: the ring's tx_ptr and this operation's message slot.
        let base = p * PAGE;
        let h = self.rings[i].hdr();
        let mut ok: Vec<(usize, usize)> = core::iter::once((h + 24, 4))
            .chain(self.allowed.iter().filter(|a| a.0 == d).map(|a| (a.1, a.2)))
            .filter_map(|(o, l)| {
                let (a, b) = (o.max(base), (o + l).min(base + PAGE));
                (a < b).then(|| (a - base, b - base))
            })
            .collect();
        ok.sort_unstable();
        let mut out = Vec::new();
        let mut at = 0;
        for (a, b) in ok {
            if a > at {
                out.push((at, a));
            }
            at = at.max(b);
        }
        if at < PAGE {
            out.push((at, PAGE));
        }
        out
    }

    fn check_invariants(&self) {
        for r in self.rings.iter().filter(|r| r.trusted) {
            let tx = self.mem_u32(r.dom, r.hdr() + 24);
            assert_eq!(
                tx, r.tx,
                "{}: tx_ptr of dom{} port {:#x}",
                self.last, r.dom, r.port
            );
        }
        for d in 0..NDOM {
            if self.known[d] {
                let want: usize = self
                    .rings
                    .iter()
                    .filter(|r| r.dom as usize == d)
                    .map(|r| r.pages.len())
                    .sum();
                assert_eq!(
                    self.env.pins_of(d) as usize,
                    want,
                    "{}: frames pinned for dom{d}",
                    self.last
                );
            }
        }
    }

    fn destroy(&mut self, d: DomId) {
        self.last = std::format!("destroy dom{d}");
        if self.trace {
            std::eprintln!("  {}", self.last);
        }
        let mut expect = Vec::new();
        for r in self.rings.iter().filter(|r| r.dom == d) {
            for &(w, _) in r.waiters.iter().flatten() {
                expect.push(w);
            }
        }
        *self.env.log.lock().unwrap() = OpLog::default();
        self.engine.domain_destroy(&self.env, d);
        let log = core::mem::take(&mut *self.env.log.lock().unwrap());
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
        self.check_invariants();
    }

    /// Destroy every domain; returns the shadow buffers for reuse.
    fn finish(mut self) -> Vec<Vec<u8>> {
        let mut s = String::new();
        self.engine.dump(&self.env, &mut s).unwrap();
        for d in 0..NDOM as DomId {
            self.destroy(d);
        }
        for f in self.view.drain(..) {
            self.env.sim.unpin_frame(f);
        }
        assert_eq!(self.env.sim.all_pins(), 0, "frames still pinned at the end");
        core::mem::take(&mut self.shadow)
    }

    // -- decoding operations --

    fn dom(inp: &mut Input) -> DomId {
        inp.below(NDOM) as DomId
    }

    fn other_dom(inp: &mut Input) -> DomId {
        match inp.u8() % 8 {
            0..=3 => inp.below(NDOM) as DomId,
            4 => 7,
            5 => DOMID_ANY,
            6 => DOMID_WILDCARD,
            _ => inp.u16(),
        }
    }

    fn port(inp: &mut Input) -> u32 {
        match inp.u8() {
            0..=219 => [1, 2, 80][inp.below(3)],
            220..=239 => [PORT_NONE, PORT_ANY][inp.below(2)],
            _ => inp.u32(),
        }
    }

    /// A pointer argument: usually the intended one, sometimes a bad one.
    fn ptr(inp: &mut Input, natural: u64) -> u64 {
        let sel = inp.u8();
        if sel < 224 {
            return natural;
        }
        match sel % 12 {
            0 => 0,
            1 => natural.wrapping_add(1 + inp.u8() as u64 % 15),
            2 => va(MEM),
            3 => va(MEM) - 1 - inp.u8() as u64 % 64,
            4 => 0xffff_8300_0000_0000,
            5 => u64::MAX - inp.u8() as u64,
            6 => inp.u64(),
            7 => VA_BASE - 1 - inp.u8() as u64 % 16,
            8 => va(GUARDS[inp.below(8)] * PAGE + inp.u16() as usize % PAGE),
            9 => va(RO_PAGE * PAGE + inp.u16() as usize % PAGE),
            10 => va(SLOTS[inp.below(4)].ring * PAGE),
            _ => va(inp.u32() as usize % MEM),
        }
    }

    /// A guest write: where and what.
    fn scribble(inp: &mut Input, dom: DomId) -> Scribble {
        let junk = |inp: &mut Input, n: usize| (0..n).map(|_| inp.u8()).collect::<Vec<u8>>();
        let s = SLOTS[inp.below(4)];
        let (off, bytes) = match inp.u8() % 8 {
            0 => {
                let f = [0, 8, 12, 14, 16, 20, 24, 28][inp.below(8)];
                (s.ring * PAGE + f, junk(inp, 4))
            }
            1 => {
                let v = match inp.u8() % 6 {
                    0 => 0,
                    1 => u32::MAX,
                    2 => 16 * (inp.u16() as u32 % 800),
                    3 => 8,
                    _ => inp.u32(),
                };
                (s.ring * PAGE + 20, v.to_le_bytes().to_vec())
            }
            2 => {
                let o = 60 + inp.u16() as usize % (s.cap * PAGE - 76);
                let n = 1 + inp.below(16);
                (s.ring * PAGE + o, junk(inp, n))
            }
            3 => {
                let o = inp.u16() as usize % (s.list_pages * PAGE - 8);
                (s.list * PAGE + o, junk(inp, 8))
            }
            4 => {
                let n = 1 + inp.below(16);
                (inp.u16() as usize % (ARGS_LEN - 16), junk(inp, n))
            }
            5 => {
                let p = [GUARDS[inp.below(8)], RO_PAGE][inp.below(2)];
                (p * PAGE + inp.u16() as usize % (PAGE - 16), junk(inp, 8))
            }
            _ => {
                let n = 1 + inp.below(16);
                (inp.u32() as usize % (MEM - 16), junk(inp, n))
            }
        };
        Scribble { dom, off, bytes }
    }

    /// Sometimes, a guest write in the middle of the next hypercall.
    fn hook(inp: &mut Input, d: DomId) -> Option<(u32, Scribble)> {
        if inp.u8() < 244 {
            return None;
        }
        let n = inp.below(8) as u32;
        let dom = if inp.one_in(4) { Self::dom(inp) } else { d };
        Some((n, Self::scribble(inp, dom)))
    }

    fn pick_dst(&self, inp: &mut Input) -> Addr {
        if inp.u8() < 160 && !self.rings.is_empty() {
            let r = &self.rings[inp.below(self.rings.len().min(256))];
            return Addr {
                port: r.port,
                domain: r.dom,
            };
        }
        Addr {
            port: Self::port(inp),
            domain: Self::other_dom(inp),
        }
    }

    fn pick_src(inp: &mut Input, d: DomId) -> Addr {
        let domain = match inp.u8() % 8 {
            0..=4 => d,
            5 => DOMID_ANY,
            6 => Self::dom(inp),
            _ => inp.u16(),
        };
        Addr {
            port: Self::port(inp),
            domain,
        }
    }

    fn pick_len(&self, inp: &mut Input, ring: Look) -> u32 {
        let (max, space) = match ring {
            Look::Ring(i) => {
                let r = &self.rings[i];
                let space = if r.trusted {
                    payload_space(r.len, self.ring_rx(r), r.tx)
                } else {
                    r.len - 32
                };
                (r.len - 32, space)
            }
            _ => (100, 100),
        };
        match inp.u8() % 16 {
            0 => 0,
            1 => 1,
            2 => 15,
            3 => 16,
            4 => 17,
            5 => 33,
            6 => inp.u8() as u32,
            7 => inp.u16() as u32 % 5000,
            8 => max,
            9 => max + 1,
            10 => space,
            11 => space + 1,
            12 => space.saturating_sub(16),
            13 => MAX_MSG_SIZE + inp.below(2) as u32,
            14 => inp.u32(),
            _ => 4096,
        }
    }

    fn protocol(inp: &mut Input) -> u32 {
        match inp.u8() % 4 {
            0 | 1 => PROTO_DGRAM,
            2 => PROTO_STREAM,
            _ => inp.u32(),
        }
    }

    /// Fill `n` bytes of `d`'s argument area at `off` with a pattern.
    fn fill(&mut self, d: DomId, off: usize, n: usize, seed: u8) {
        // A fixed pattern, entered at a seed-chosen point (built once: byte
        // loops are slow under the fuzzer's instrumentation).
        std::thread_local! {
            static PATTERN: Vec<u8> = (0..ARGS_LEN + 256)
                .map(|i| (i as u8).wrapping_mul(37) ^ (i >> 8) as u8 ^ (i >> 13) as u8)
                .collect();
        }
        let n = n.min(ARGS_LEN - off);
        let bytes = PATTERN.with(|p| p[seed as usize..][..n].to_vec());
        self.gw(d, off, &bytes);
    }

    fn slot_ring(&self, d: DomId, s: usize) -> Option<usize> {
        let first = SLOTS[s].ring;
        let at_slot = |r: &MRing| r.dom == d && r.pages[0] == first;
        self.rings
            .iter()
            .position(|r| at_slot(r) && r.trusted)
            .or_else(|| self.rings.iter().position(at_slot))
    }

    fn step(&mut self, inp: &mut Input) {
        match inp.u8() % 17 {
            0 | 1 => self.op_register(inp),
            2 => self.op_unregister(inp),
            3 | 4 => self.op_send(inp, false),
            5 => self.op_sendv(inp),
            6 => self.op_notify(inp),
            7 | 8 => self.op_recv(inp),
            9 => {
                let d = Self::dom(inp);
                let s = Self::scribble(inp, d);
                self.gw(s.dom, s.off, &s.bytes);
            }
            10 => self.op_set_rx(inp),
            11 => {
                let d = if inp.u8() % 8 == 7 { 7 } else { Self::dom(inp) };
                self.destroy(d);
            }
            12 => self.op_vip_add(inp),
            13 => self.op_vip_del_or_list(inp),
            14 => self.op_raw(inp),
            15 => self.op_send(inp, true),
            _ => self.op_pump(inp),
        }
    }

    fn op_register(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = SLOTS[inp.below(4)];
        const LENS: [u32; 24] = [
            48,
            64,
            80,
            96,
            128,
            256,
            512,
            1008,
            2048,
            4032,
            4036,
            4048,
            4096,
            8128,
            8144,
            12224,
            12240,
            MAX_RING_SIZE,
            MAX_RING_SIZE + 16,
            0,
            32,
            47,
            49,
            u32::MAX,
        ];
        let len = match inp.u8() {
            0..=199 => LENS[inp.below(LENS.len())],
            200..=229 => 16 * (inp.u16() as u32 % 800 + 3),
            _ => inp.u32(),
        };
        let port = Self::port(inp);
        let partner = match inp.u8() % 10 {
            0..=4 => DOMID_ANY,
            5..=8 => Self::dom(inp),
            _ => inp.u16(),
        };
        let flags = inp.u8();
        let fresh = flags & 1 != 0;
        let id_dom = if flags & 2 != 0 { inp.u16() } else { d };
        let magic = if flags & 0x7c == 0x7c {
            RING_MAGIC ^ 1
        } else {
            RING_MAGIC
        };
        let mut h = Vec::with_capacity(60);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&port.to_le_bytes());
        h.extend_from_slice(&id_dom.to_le_bytes());
        h.extend_from_slice(&partner.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
        if fresh {
            h.resize(60, 0);
        }
        self.gw(d, s.ring * PAGE, &h);

        let needed = if valid_ring_len(len) {
            frames_for(len)
        } else {
            1 + (len as usize % 4)
        };
        let npage = match inp.u8() % 32 {
            0..=27 => needed as u32,
            28 => needed as u32 - 1,
            29 => needed as u32 + 1,
            30 => MAX_RING_PAGES + inp.below(2) as u32,
            _ => inp.u32(),
        };
        let pad = if inp.one_in(16) { inp.u32() } else { 0 };
        let list_magic = if inp.one_in(32) {
            inp.u64()
        } else {
            PFN_LIST_MAGIC
        };
        let room = (s.list_pages * PAGE - 40) / 8;
        let n = (npage as usize).min(needed + 1).min(room);
        let mut l = Vec::with_capacity(40 + 8 * n);
        l.extend_from_slice(&list_magic.to_le_bytes());
        l.extend_from_slice(&npage.to_le_bytes());
        l.extend_from_slice(&pad.to_le_bytes());
        l.resize(40, 0);
        let mut ents: Vec<u64> = (0..n).map(|i| Sim::gfn(d, s.ring + i % s.cap)).collect();
        if n > 0 && inp.one_in(16) {
            let j = inp.u16() as usize % n;
            ents[j] = match inp.u8() % 8 {
                0 => Sim::gfn(d, RO_PAGE),
                1 => Sim::gfn((d + 1) % NDOM as DomId, s.ring),
                2 => Sim::gfn(d, MEM_PAGES),
                3 => u64::MAX,
                4 => Sim::gfn(d, 0),
                5 => Sim::gfn(d, SLOTS[inp.below(4)].ring),
                6 => Sim::gfn(d, GUARDS[inp.below(8)]),
                _ => inp.u64(),
            };
        }
        for g in ents {
            l.extend_from_slice(&g.to_le_bytes());
        }
        self.gw(d, s.list * PAGE, &l);
        let hook = Self::hook(inp, d);
        let a1 = Self::ptr(inp, va(s.ring * PAGE));
        let a2 = Self::ptr(inp, va(s.list * PAGE));
        self.call(d, op::REGISTER_RING, [a1, a2, 0], 0, 0, hook);
    }

    fn op_unregister(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = SLOTS[inp.below(4)];
        let hook = Self::hook(inp, d);
        let a1 = Self::ptr(inp, va(s.ring * PAGE));
        self.call(d, op::UNREGISTER_RING, [a1, 0, 0], 0, 0, hook);
    }

    fn op_send(&mut self, inp: &mut Input, burst: bool) {
        let d = Self::dom(inp);
        let hook = if burst { None } else { Self::hook(inp, d) };
        let src = Self::pick_src(inp, d);
        let dst = self.pick_dst(inp);
        let len = self.pick_len(inp, self.lookup(dst, d));
        let proto = Self::protocol(inp);
        let seed = inp.u8();
        self.gw(d, 0, &addr_bytes(src));
        self.gw(d, 16, &addr_bytes(dst));
        self.fill(d, 64, len as usize, seed);
        if burst {
            let n = 1 + inp.below(48);
            for _ in 0..n {
                let rv = self.call(d, op::SEND, [va(0), va(16), va(64)], len, proto, None);
                if rv < 0 {
                    break;
                }
            }
            return;
        }
        let a1 = Self::ptr(inp, va(0));
        let a2 = Self::ptr(inp, va(16));
        let a3 = Self::ptr(inp, va(64));
        self.call(d, op::SEND, [a1, a2, a3], len, proto, hook);
    }

    fn op_sendv(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let hook = Self::hook(inp, d);
        let src = Self::pick_src(inp, d);
        let dst = self.pick_dst(inp);
        let proto = Self::protocol(inp);
        let niov = match inp.u8() % 16 {
            0 => 0,
            x @ 1..=8 => (x as u32 - 1) % 4 + 1,
            9 => MAXIOV,
            10 => MAXIOV + 1,
            11 => inp.u32(),
            _ => 1 + inp.below(16) as u32,
        };
        let seed = inp.u8();
        self.gw(d, 0, &addr_bytes(src));
        self.gw(d, 16, &addr_bytes(dst));
        self.fill(d, 512, 8192, seed);
        let mut iovs = Vec::new();
        for _ in 0..niov.min(16) {
            let at = 512 + inp.u16() as usize % 8192;
            let base = Self::ptr(inp, va(at));
            let len: u64 = match inp.u8() % 32 {
                0..=3 => 0,
                4..=11 => inp.u8() as u64,
                12..=15 => inp.u16() as u64 % 4096,
                16..=19 => 16,
                20..=23 => 1,
                24 => inp.u64(),
                25 => MAX_MSG_SIZE as u64 / 2 + 1,
                _ => inp.u8() as u64 % 64,
            };
            iovs.extend_from_slice(&base.to_le_bytes());
            iovs.extend_from_slice(&len.to_le_bytes());
        }
        self.gw(d, 32, &iovs);
        let a1 = Self::ptr(inp, va(0));
        let a2 = Self::ptr(inp, va(16));
        let a3 = Self::ptr(inp, va(32));
        self.call(d, op::SENDV, [a1, a2, a3], niov, proto, hook);
    }

    fn op_notify(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let hook = Self::hook(inp, d);
        let null = inp.one_in(8);
        let nent = match inp.u8() % 16 {
            0 => 0,
            x @ 1..=10 => (x as u32 - 1) % 4 + 1,
            11 => MAXENT,
            12 => MAXENT + 1,
            13 => inp.u32(),
            _ => inp.below(32) as u32,
        };
        let magic = if inp.one_in(32) {
            inp.u64()
        } else {
            RING_DATA_MAGIC
        };
        let pad = if inp.one_in(32) { inp.u32() } else { 0 };
        let mut b = Vec::new();
        b.extend_from_slice(&magic.to_le_bytes());
        b.extend_from_slice(&nent.to_le_bytes());
        b.extend_from_slice(&pad.to_le_bytes());
        b.resize(48, 0);
        for _ in 0..nent.min(32) {
            let ring = self.pick_dst(inp);
            let req = self.pick_len(inp, self.lookup(ring, d));
            b.extend_from_slice(&addr_bytes(ring));
            b.extend_from_slice(&inp.u16().to_le_bytes());
            b.extend_from_slice(&req.to_le_bytes());
            b.extend_from_slice(&inp.u32().to_le_bytes());
        }
        self.gw(d, 0, &b);
        let a1 = if null { 0 } else { Self::ptr(inp, va(0)) };
        self.call(d, op::NOTIFY, [a1, 0, 0], 0, 0, hook);
    }

    /// The receiver takes messages (checked against the model) or drains.
    fn op_recv(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = inp.below(4);
        let mode = inp.u8();
        let Some(i) = self.slot_ring(d, s) else {
            return;
        };
        let count = if mode >= 224 {
            None
        } else {
            Some(1 + mode % 8)
        };
        self.recv(i, count);
    }

    /// Ring `i`'s receiver takes up to `count` messages, checking each
    /// against the model, or (`None`) drains the ring by moving rx_ptr.
    fn recv(&mut self, i: usize, count: Option<u8>) {
        let r = &self.rings[i];
        let d = r.dom;
        self.last = std::format!("recv dom{d} port {:#x}", r.port);
        let hdr = r.hdr();
        if !r.trusted {
            // A confused receiver: take tx_ptr as its new rx_ptr.
            let tx = self.mem_u32(d, hdr + 24);
            self.gw(d, hdr + 20, &tx.to_le_bytes());
            return;
        }
        let mut rx = self.ring_rx(r);
        let Some(count) = count else {
            let tx = r.tx;
            self.rings[i].msgs.clear();
            self.gw_legit(d, hdr + 20, &tx.to_le_bytes());
            return;
        };
        let (len, tx) = (r.len, r.tx);
        let read = |this: &Self, o: u32, n: usize| -> Vec<u8> {
            let r = &this.rings[i];
            let mem = &this.shadow[d as usize];
            let first = n.min((len - o) as usize);
            let mut v = mem[r.data(o)..][..first].to_vec();
            v.extend_from_slice(&mem[r.data(0)..][..n - first]);
            v
        };
        for _ in 0..count {
            if rx == tx {
                assert!(
                    self.rings[i].msgs.is_empty(),
                    "{}: ring empty (rx {rx} = tx) but {} message(s) were sent to it",
                    self.last,
                    self.rings[i].msgs.len()
                );
                break;
            }
            let Some(m) = self.rings[i].msgs.pop_front() else {
                panic!(
                    "{}: ring holds data (rx {rx}, tx {tx}) that no send put there",
                    self.last
                );
            };
            let h = read(self, rx, 16);
            let got_len = le32(&h, 0);
            assert_eq!(
                (got_len, addr_at(&h, 4), le16(&h, 10), le32(&h, 12)),
                (16 + m.payload.len() as u32, m.source, 0, m.protocol),
                "{}: message header at {rx}",
                self.last
            );
            let payload = read(self, (rx + 16) % len, m.payload.len());
            assert!(payload == m.payload, "{}: payload at {rx}", self.last);
            rx = ((rx as u64 + 16 + abi::roundup(m.payload.len() as u64)) % len as u64) as u32;
        }
        self.gw_legit(d, hdr + 20, &rx.to_le_bytes());
    }

    /// Traffic through one well-behaved ring: rounds of sends, each
    /// followed by the receiver taking everything, so that messages wrap
    /// around the ring's end and straddle its pages.
    fn op_pump(&mut self, inp: &mut Input) {
        let trusted: Vec<usize> = (0..self.rings.len())
            .filter(|&i| self.rings[i].trusted)
            .collect();
        if trusted.is_empty() {
            return;
        }
        let i = trusted[inp.below(trusted.len())];
        let r = &self.rings[i];
        let dst = Addr {
            port: r.port,
            domain: r.dom,
        };
        let d = if (r.partner as usize) < NDOM {
            r.partner
        } else {
            Self::dom(inp)
        };
        let len = inp.u16() as u32 % (r.len / 2);
        let (rounds, per) = (1 + inp.below(8), 1 + inp.below(8));
        let proto = Self::protocol(inp);
        let seed = inp.u8();
        self.gw(d, 0, &addr_bytes(Addr { port: 7, domain: d }));
        self.gw(d, 16, &addr_bytes(dst));
        self.fill(d, 64, len as usize, seed);
        for _ in 0..rounds {
            for _ in 0..per {
                let rv = self.call(d, op::SEND, [va(0), va(16), va(64)], len, proto, None);
                if rv < 0 {
                    break;
                }
            }
            // The ring may have gone (nothing here unregisters it, but a
            // failed check would have panicked already): take everything.
            if self.rings.get(i).is_some_and(|r| r.trusted) {
                self.recv(i, Some(u8::MAX));
            }
        }
    }

    /// The receiver writes something else into its rx_ptr.
    fn op_set_rx(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = inp.below(4);
        let Some(i) = self.slot_ring(d, s) else {
            return;
        };
        let r = &self.rings[i];
        let (len, tx, hdr) = (r.len, self.mem_u32(d, r.hdr() + 24), r.hdr());
        let v = match inp.u8() % 9 {
            0 => 0,
            1 => len,
            2 => len - 16,
            3 => tx.wrapping_add(16),
            4 => tx.wrapping_add(8),
            5 => u32::MAX,
            6 => 16 * (inp.u16() as u32 % (len / 16 + 2)),
            7 => tx.wrapping_sub(16),
            _ => inp.u32(),
        };
        self.gw(d, hdr + 20, &v.to_le_bytes());
    }

    fn rule(inp: &mut Input) -> [u8; 16] {
        let vaddr = |inp: &mut Input| Addr {
            domain: match inp.u8() % 8 {
                0..=3 => Self::dom(inp),
                4 | 6 => DOMID_ANY,
                5 => DOMID_WILDCARD,
                _ => inp.u16(),
            },
            port: match inp.u8() % 8 {
                0..=3 => PORT_ANY,
                4 => 1,
                5 => 80,
                6 => PORT_NONE,
                _ => inp.u32(),
            },
        };
        let (src, dst) = (vaddr(inp), vaddr(inp));
        let accept = match inp.u8() % 8 {
            0..=2 => 0,
            3..=6 => 1,
            _ => inp.u32(),
        };
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&addr_bytes(src));
        b[6..12].copy_from_slice(&addr_bytes(dst));
        b[12..].copy_from_slice(&accept.to_le_bytes());
        b
    }

    fn vip_caller(inp: &mut Input) -> DomId {
        if !inp.one_in(8) {
            0
        } else {
            Self::dom(inp)
        }
    }

    fn op_vip_add(&mut self, inp: &mut Input) {
        let d = Self::vip_caller(inp);
        let hook = Self::hook(inp, d);
        let rule = Self::rule(inp);
        let pos = match inp.u8() % 8 {
            0..=3 => 0,
            4 => u32::MAX,
            5 => self.vip.len() as u32,
            6 => 1,
            _ => inp.u32(),
        };
        self.gw(d, 0, &rule);
        let a1 = Self::ptr(inp, va(0));
        self.call(d, op::VIPTABLES_ADD, [a1, 0, 0], pos, 0, hook);
    }

    fn op_vip_del_or_list(&mut self, inp: &mut Input) {
        let d = Self::vip_caller(inp);
        let hook = Self::hook(inp, d);
        if inp.one_in(2) {
            let start = match inp.u8() % 8 {
                0..=3 => 0,
                4 => 8,
                5 => self.vip.len() as u32,
                6 => u32::MAX,
                _ => inp.u32(),
            };
            let mut b = [0u8; 132];
            b[128..].copy_from_slice(&start.to_le_bytes());
            self.gw(d, 0, &b);
            let a1 = Self::ptr(inp, va(0));
            self.call(d, op::VIPTABLES_LIST, [a1, 0, 0], 0, 0, hook);
            return;
        }
        let (null, pos) = match inp.u8() % 8 {
            0 => (true, -1),
            1 | 2 => (false, -1),
            3 | 4 => (false, 0),
            5 => (false, self.vip.len() as i32),
            6 => (false, -2),
            _ => (inp.one_in(2), inp.u32() as i32),
        };
        let rule = match self.vip.first() {
            Some(r) if inp.one_in(2) => {
                let mut b = [0u8; 16];
                b[..6].copy_from_slice(&addr_bytes(r.src));
                b[6..12].copy_from_slice(&addr_bytes(r.dst));
                b[12..].copy_from_slice(&(r.accept as u32).to_le_bytes());
                b
            }
            _ => Self::rule(inp),
        };
        self.gw(d, 0, &rule);
        let a1 = if null { 0 } else { Self::ptr(inp, va(0)) };
        self.call(d, op::VIPTABLES_DEL, [a1, 0, 0], pos as u32, 0, hook);
    }

    /// A hypercall with arbitrary command and arguments over arbitrary bytes.
    fn op_raw(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let hook = Self::hook(inp, d);
        let cmd = match inp.u8() % 16 {
            x @ 0..=7 => x as u32 + 1,
            8 => 0,
            9 => 9,
            10 => 43,
            11 => inp.u32(),
            _ => 1 + inp.below(8) as u32,
        };
        let n = inp.u8() as usize;
        let bytes: Vec<u8> = (0..n).map(|_| inp.u8()).collect();
        self.gw(d, 0, &bytes);
        let arg = |inp: &mut Input| match inp.u8() % 4 {
            0 => Self::ptr(inp, va(0)),
            1 => {
                let at = inp.u16() as usize % ARGS_LEN;
                Self::ptr(inp, va(at))
            }
            2 => va(SLOTS[inp.below(4)].ring * PAGE),
            _ => inp.u64(),
        };
        let a = [arg(inp), arg(inp), arg(inp)];
        let num = |inp: &mut Input| match inp.u8() % 8 {
            0 => 0,
            1 => 1,
            2 => 8,
            3 => MAXIOV + inp.below(2) as u32,
            4 => MAXENT + inp.below(2) as u32,
            5 => u32::MAX,
            _ => inp.u32(),
        };
        let (a4, a5) = (num(inp), num(inp));
        self.call(d, cmd, a, a4, a5, hook);
    }
}

/// Decode `data` into operations, run them, check everything after each.
pub fn run(data: &[u8]) {
    // The harness's own large buffers are reused from run to run (fresh ones
    // cost more page faults than the rest of a short run).
    std::thread_local! {
        static SHADOWS: core::cell::RefCell<Vec<Vec<u8>>> =
            const { core::cell::RefCell::new(Vec::new()) };
    }
    let mut f = Fuzz::new(SHADOWS.with(|s| s.take()));
    let mut inp = Input { d: data, i: 0 };
    let mut ops = 0;
    while !inp.done() && ops < MAX_OPS {
        f.step(&mut inp);
        ops += 1;
    }
    let shadow = f.finish();
    SHADOWS.with(|s| *s.borrow_mut() = shadow);
}

#[cfg(test)]
mod tests {
    use super::run;
    use std::path::Path;
    use std::vec::Vec;

    fn inputs(seed: u64, n: usize, max_len: usize) -> Vec<Vec<u8>> {
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..n)
            .map(|_| {
                let len = 16 + (next() as usize % max_len);
                (0..len).map(|_| next() as u8).collect()
            })
            .collect()
    }

    /// The fuzz target on deterministic pseudo-random inputs (so it cannot
    /// rot between fuzzing runs).
    #[test]
    fn fuzz_target_on_random_inputs() {
        for data in inputs(0x5eed_f00d_0004_0004, 300, 600) {
            run(&data);
        }
    }

    fn regressions(dir: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_file() {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    /// Inputs that once failed (fixed since): `fuzz/regressions/`.
    #[test]
    fn fuzz_regressions() {
        // V4V_FUZZ_INPUT=<file> runs that input too (e.g. a crash artifact).
        let extra = std::env::var_os("V4V_FUZZ_INPUT").map(|p| {
            let p = std::path::PathBuf::from(p);
            let data = std::fs::read(&p).unwrap();
            (p, data)
        });
        for (p, data) in extra.into_iter().chain(regressions("fuzz/regressions")) {
            std::eprintln!("regression {}", p.display());
            run(&data);
        }
    }

    /// Found by the fuzz model (fixed): an unreadable payload buffer was
    /// only noticed while copying, after the destination and space checks,
    /// so a NULL buffer got -ENOTCONN (no such ring) or -EAGAIN (ring full,
    /// and a wait was queued for a message that could never be sent)
    /// instead of -EFAULT, which ABI section 6 orders first.
    #[test]
    fn bad_payload_pointer_is_efault_before_destination_and_space() {
        use crate::abi::{errno, op, Addr, DOMID_ANY, PROTO_DGRAM};
        use crate::sim::client::Host;
        let h = Host::new(&[1, 2], 64);
        let b = h.guest(2, 1);
        let ring = b.ring(&h, 80, DOMID_ANY, 64);
        assert_eq!(ring.register(&h), 0);
        let a = h.guest(1, 1);
        let src = a.put(&h, &a.addr(1));
        let nowhere = a.put(
            &h,
            &Addr {
                port: 81,
                domain: 2,
            },
        );
        // No such ring, NULL buffer.
        let missing = h.call(1, op::SEND, src, nowhere, 0, 8, PROTO_DGRAM);
        // Fill the ring (64 bytes: one 16-byte message leaves it full).
        assert_eq!(a.send(&h, 1, ring.addr(), &[7; 16], PROTO_DGRAM), 16);
        let src = a.put(&h, &a.addr(1));
        let dst = a.put(&h, &ring.addr());
        let full = h.call(1, op::SEND, src, dst, 0, 8, PROTO_DGRAM);
        assert_eq!(
            (missing, full),
            (-errno::EFAULT, -errno::EFAULT),
            "NULL buffer to a missing ring, to a full ring"
        );
    }

    /// FINDINGS NOT FIXED YET: inputs in `fuzz/regressions/open/` fail until
    /// the engine is fixed (see fuzz/regressions/README.md). Ignored so that
    /// the host tests stay green; run with `-- --ignored`.
    #[test]
    #[ignore = "open fuzz findings for the engine owner: fuzz/regressions/open/"]
    fn open_findings() {
        let open = regressions("fuzz/regressions/open");
        let mut failed = Vec::new();
        for (p, data) in open {
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failed.push(p);
            }
        }
        assert!(failed.is_empty(), "failing: {failed:?}");
    }
}
