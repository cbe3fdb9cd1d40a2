//! A fake hypervisor for the tests: it keeps a viptables rule list and a
//! few rings and answers add/del/list/send/notify with the ABI's semantics
//! (V4V-ABI.md section 5 and 6), reading and writing the tool's buffers
//! through the addresses it is given, as Xen would.
//!
//! Test-only code; the `unsafe` here dereferences addresses that the runner
//! derived from live references in this same process.
use v4v_abi::{
    errno as e, op, Addr, RingDataEnt, RingDataFlags, RingDataHeader, ViptablesList, ViptablesRule,
    DOMID_ANY, DOMID_WILDCARD, MAX_MSG_SIZE, PORT_ANY, RING_DATA_ENT_OFFSET, RING_DATA_MAGIC,
    VIPTABLES_LIST_SIZE,
};

use crate::Hypervisor;

/// A ring dom0 might send to.
#[derive(Clone, Copy, Debug)]
pub struct FakeRing {
    pub addr: Addr,
    /// `len - 32`
    pub max_message_size: u32,
    /// Payload bytes that fit now.
    pub space: u32,
    pub empty: bool,
}

/// One message the fake accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub src: Addr,
    pub dst: Addr,
    pub payload: Vec<u8>,
    pub protocol: u32,
}

#[derive(Default)]
pub struct Fake {
    pub rules: Vec<ViptablesRule>,
    pub rings: Vec<FakeRing>,
    pub sent: Vec<Sent>,
    /// Every call: (cmd, [a1..a5]).
    pub calls: Vec<(u32, [u64; 5])>,
    /// Behave as a domU: viptables ops are -EPERM.
    pub unprivileged: bool,
    /// Behave as a Xen without V4V: every op is -ENOSYS.
    pub no_v4v: bool,
    /// Answer every op with this instead (to drive each errno).
    pub force: Option<i64>,
    /// A broken list op that always reports a full page.
    pub endless_list: bool,
    /// The `nb_rules` (start index) of every list call.
    pub list_starts: Vec<u32>,
    /// Number of plain notifies (NULL ring data).
    pub plain_notifies: usize,
}

fn read<T: Copy>(addr: u64) -> T {
    assert_ne!(
        addr, 0,
        "fake hypervisor: NULL where a structure was expected"
    );
    // SAFETY: test-only; `addr` came from `addr_of` on a live `&mut T` (or a
    // buffer of at least size_of::<T>() bytes) in the runner, which keeps it
    // alive across the call. Unaligned read: the structures are packed.
    unsafe { core::ptr::read_unaligned(addr as usize as *const T) }
}

fn write<T: Copy>(addr: u64, v: T) {
    // SAFETY: as in `read`; the runner passed a mutable reference.
    unsafe { core::ptr::write_unaligned(addr as usize as *mut T, v) }
}

fn dom_matches(pattern: u16, d: u16) -> bool {
    pattern == DOMID_ANY || pattern == DOMID_WILDCARD || pattern == d
}

fn addr_matches(pattern: Addr, a: Addr) -> bool {
    let (pd, pp, d, p) = (pattern.domain, pattern.port, a.domain, a.port);
    dom_matches(pd, d) && (pp == PORT_ANY || pp == p)
}

impl Fake {
    pub fn with_rules(n: usize) -> Fake {
        let rules = (0..n)
            .map(|i| ViptablesRule {
                src: Addr {
                    port: i as u32,
                    domain: 1,
                },
                dst: Addr {
                    port: PORT_ANY,
                    domain: 2,
                },
                accept: (i % 2) as u32,
            })
            .collect();
        Fake {
            rules,
            ..Default::default()
        }
    }

    pub fn list_calls(&self) -> usize {
        self.calls
            .iter()
            .filter(|(c, _)| *c == op::VIPTABLES_LIST)
            .count()
    }

    fn find_ring(&self, a: Addr) -> Option<FakeRing> {
        self.rings.iter().copied().find(|r| r.addr == a)
    }

    /// viptables verdict for a message from dom0.
    fn allows(&self, src_port: u32, dst: Addr) -> bool {
        let src = Addr {
            port: src_port,
            domain: 0,
        };
        self.rules
            .iter()
            .find(|r| addr_matches(r.src, src) && addr_matches(r.dst, dst))
            .is_none_or(|r| r.accept == 1)
    }

    fn dispatch(&mut self, cmd: u32, a: [u64; 5]) -> i64 {
        match cmd {
            op::VIPTABLES_ADD => {
                if self.unprivileged {
                    return -e::EPERM;
                }
                let r: ViptablesRule = read(a[0]);
                if r.accept > 1 {
                    return -e::EINVAL;
                }
                if self.rules.len() >= 4096 {
                    return -e::ENOSPC;
                }
                let at = (a[3] as u32 as usize).min(self.rules.len());
                self.rules.insert(at, r);
                0
            }
            op::VIPTABLES_DEL => {
                if self.unprivileged {
                    return -e::EPERM;
                }
                match a[3] as u32 as i32 {
                    p if p >= 0 => {
                        if (p as usize) < self.rules.len() {
                            self.rules.remove(p as usize);
                            0
                        } else {
                            -e::ENOENT
                        }
                    }
                    -1 if a[0] == 0 => {
                        self.rules.clear();
                        0
                    }
                    -1 => {
                        let r: ViptablesRule = read(a[0]);
                        match self.rules.iter().position(|x| *x == r) {
                            Some(i) => {
                                self.rules.remove(i);
                                0
                            }
                            None => -e::ENOENT,
                        }
                    }
                    _ => -e::EINVAL,
                }
            }
            op::VIPTABLES_LIST => {
                if self.unprivileged {
                    return -e::EPERM;
                }
                let mut l: ViptablesList = read(a[0]);
                self.list_starts.push(l.nb_rules);
                if self.endless_list {
                    l.nb_rules = 9;
                    write(a[0], l);
                    return 0;
                }
                let start = l.nb_rules as usize;
                let src = self.rules.get(start..).unwrap_or(&[]);
                let n = src.len().min(VIPTABLES_LIST_SIZE);
                l.rules = [ViptablesRule::default(); VIPTABLES_LIST_SIZE];
                l.rules[..n].copy_from_slice(&src[..n]);
                l.nb_rules = n as u32;
                write(a[0], l);
                0
            }
            op::SEND => {
                let src: Addr = read(a[0]);
                let dst: Addr = read(a[1]);
                let len = a[3] as u32;
                let sd = src.domain;
                if sd != 0 && sd != DOMID_ANY {
                    return -e::EPERM;
                }
                if len > MAX_MSG_SIZE {
                    return -e::EINVAL;
                }
                let payload = if len == 0 {
                    Vec::new()
                } else {
                    // SAFETY: test-only; `a[2]` is the address of the
                    // runner's payload buffer of `len` bytes, alive across
                    // the call.
                    unsafe { core::slice::from_raw_parts(a[2] as usize as *const u8, len as usize) }
                        .to_vec()
                };
                let Some(ring) = self.find_ring(dst) else {
                    return -e::ENOTCONN;
                };
                if !self.allows(src.port, dst) {
                    return -e::EPERM;
                }
                if len > ring.max_message_size {
                    return -e::ENOBUFS;
                }
                if len > ring.space {
                    return -e::EAGAIN;
                }
                self.sent.push(Sent {
                    src,
                    dst,
                    payload,
                    protocol: a[4] as u32,
                });
                i64::from(len)
            }
            op::NOTIFY => {
                if a[0] == 0 {
                    self.plain_notifies += 1;
                    return 0;
                }
                let h: RingDataHeader = read(a[0]);
                let nent = h.nent;
                if h.magic != RING_DATA_MAGIC || nent != 1 {
                    return -e::EINVAL;
                }
                let ent_addr = a[0] + RING_DATA_ENT_OFFSET as u64;
                let mut ent: RingDataEnt = read(ent_addr);
                let ring = self.find_ring(ent.ring).filter(|r| self.allows(0, r.addr));
                let mut flags = RingDataFlags::empty();
                ent.max_message_size = 0;
                if let Some(r) = ring {
                    flags |= RingDataFlags::EXISTS;
                    if r.empty {
                        flags |= RingDataFlags::EMPTY;
                    }
                    if r.space >= ent.space_required {
                        flags |= RingDataFlags::SUFFICIENT;
                    } else {
                        flags |= RingDataFlags::PENDING;
                    }
                    ent.max_message_size = r.max_message_size;
                }
                ent.flags = flags.bits();
                write(ent_addr, ent);
                0
            }
            _ => -e::ENOSYS,
        }
    }
}

impl Hypervisor for Fake {
    fn op(&mut self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
        let a = [a1, a2, a3, a4, a5];
        self.calls.push((cmd, a));
        if self.no_v4v {
            return -e::ENOSYS;
        }
        if let Some(r) = self.force {
            return r;
        }
        self.dispatch(cmd, a)
    }
}
