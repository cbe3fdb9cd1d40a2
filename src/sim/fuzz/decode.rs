//! Input decoding: turning fuzzer bytes into choices (domains, ports,
//! pointers good and bad, lengths at the boundaries, guest scribbles).
//!
//! Every choice is biased toward the values that matter (the intended
//! pointer, a registered ring, a length that just fits or just does not), so
//! that random bytes reach deep states; a missing byte reads as 0, so every
//! input, however short, decodes.
use super::bytes::addr_bytes;
use super::env::Scribble;
use super::harness::Fuzz;
use super::layout::{va, ARGS_LEN, GUARDS, MEM, NDOM, PAGE, RO_PAGE, SLOTS};
use super::model::{payload_space, Look};
use crate::abi::{
    Addr, DOMID_ANY, DOMID_WILDCARD, MAX_MSG_SIZE, PORT_ANY, PORT_NONE, PROTO_DGRAM, PROTO_STREAM,
};
use crate::env::DomId;
use crate::sim::VA_BASE;
use std::vec::Vec;

/// The fuzzer's bytes, read front to back.
pub(super) struct Input<'a> {
    pub(super) d: &'a [u8],
    pub(super) i: usize,
}

impl Input<'_> {
    pub(super) fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub(super) fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub(super) fn u64(&mut self) -> u64 {
        self.u32() as u64 | (self.u32() as u64) << 32
    }
    /// True with probability 1/n.
    pub(super) fn one_in(&mut self, n: u8) -> bool {
        self.u8().is_multiple_of(n)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }
    pub(super) fn done(&self) -> bool {
        self.i >= self.d.len()
    }
}

impl Fuzz {
    // -- decoding operations --

    pub(super) fn dom(inp: &mut Input) -> DomId {
        inp.below(NDOM) as DomId
    }

    pub(super) fn other_dom(inp: &mut Input) -> DomId {
        match inp.u8() % 8 {
            0..=3 => inp.below(NDOM) as DomId,
            4 => 7,
            5 => DOMID_ANY,
            6 => DOMID_WILDCARD,
            _ => inp.u16(),
        }
    }

    pub(super) fn port(inp: &mut Input) -> u32 {
        match inp.u8() {
            0..=219 => [1, 2, 80][inp.below(3)],
            220..=239 => [PORT_NONE, PORT_ANY][inp.below(2)],
            _ => inp.u32(),
        }
    }

    /// A pointer argument: usually the intended one, sometimes a bad one.
    pub(super) fn ptr(inp: &mut Input, natural: u64) -> u64 {
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
    pub(super) fn scribble(inp: &mut Input, dom: DomId) -> Scribble {
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
    pub(super) fn hook(inp: &mut Input, d: DomId) -> Option<(u32, Scribble)> {
        if inp.u8() < 244 {
            return None;
        }
        let n = inp.below(8) as u32;
        let dom = if inp.one_in(4) { Self::dom(inp) } else { d };
        Some((n, Self::scribble(inp, dom)))
    }

    pub(super) fn pick_dst(&self, inp: &mut Input) -> Addr {
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

    pub(super) fn pick_src(inp: &mut Input, d: DomId) -> Addr {
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

    pub(super) fn pick_len(&self, inp: &mut Input, ring: Look) -> u32 {
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

    pub(super) fn protocol(inp: &mut Input) -> u32 {
        match inp.u8() % 4 {
            0 | 1 => PROTO_DGRAM,
            2 => PROTO_STREAM,
            _ => inp.u32(),
        }
    }

    /// Fill `n` bytes of `d`'s argument area at `off` with a pattern.
    pub(super) fn rule(inp: &mut Input) -> [u8; 16] {
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

    pub(super) fn vip_caller(inp: &mut Input) -> DomId {
        if !inp.one_in(8) {
            0
        } else {
            Self::dom(inp)
        }
    }
}
