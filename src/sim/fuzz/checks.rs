//! Checks made after every hypercall besides its result: guest memory
//! changed only where the engine may write, and the invariants between the
//! model and the simulation (`tx_ptr` of trusted rings, pins per domain).
//!
//! Separate from the predictions because they hold whatever the operation
//! was: they are what catches a stray write or a leaked pin.
use super::env::OpLog;
use super::harness::Fuzz;
use super::layout::{MEM_PAGES, NDOM, PAGE};
use crate::env::DomId;
use std::vec;
use std::vec::Vec;

impl Fuzz {
    /// Page `p` of domain `d` as it is now.
    pub(super) fn page(&self, d: usize, p: usize) -> &[u8] {
        debug_assert!(self.view.len() > d * MEM_PAGES + p);
        let at = self.env.sim.page_ptr(d as DomId, p);
        // SAFETY: a pinned page of the simulation, PAGE bytes, alive as long
        // as `self.env`; the engine is not running (this thread is here), so
        // nothing writes it while the slice lives.
        unsafe { core::slice::from_raw_parts(at, PAGE) }
    }

    /// Guest memory may only have changed where the engine may write.
    ///
    /// Only the pages the engine could reach during the operation are
    /// compared: those of its `copy_to_guest` ranges, of guest writes made
    /// during the call, of frames pinned and of ring mappings (live, made or
    /// given back). Every other page is out of its reach (rings are mapped
    /// between guard pages and made inaccessible when given back, see
    /// [`crate::sim::maps`]), and [`Fuzz::check_all_memory`] compares all of
    /// memory at the end of the input all the same.
    pub(super) fn check_memory(&mut self, log: &OpLog) {
        let mut reach = log.mapped;
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
                reach[d] |= 1 << (off / PAGE);
                off += n;
            }
            self.dirty(d as DomId, o, l);
        }
        for (d, m) in reach.iter_mut().enumerate() {
            *m |= log.pinned_mask[d] | self.env.pinned_mask(d) | self.env.mapped_mask(d);
        }
        for (d, mut m) in reach.into_iter().enumerate() {
            while m != 0 {
                let p = m.trailing_zeros() as usize;
                m &= m - 1;
                self.check_page(d, p, log);
            }
        }
    }

    /// Page `p` of `d` may only have changed where the engine may write
    /// (see [`Fuzz::page_rule`]); the shadow takes what it holds now.
    fn check_page(&mut self, d: usize, p: usize, log: &OpLog) {
        let range = p * PAGE..(p + 1) * PAGE;
        if self.page(d, p) == &self.shadow[d][range.clone()] {
            return;
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
        self.dirty[d] |= 1 << p;
    }

    /// Every page of every domain is as the model has it (at the end of an
    /// input, when nothing is pinned: the engine may have written nothing
    /// that the per-operation checks did not account for).
    pub(super) fn check_all_memory(&self) {
        for d in 0..NDOM {
            for p in 0..MEM_PAGES {
                let (now, was) = (self.page(d, p), &self.shadow[d][p * PAGE..(p + 1) * PAGE]);
                if now != was {
                    let i = (0..PAGE).find(|&i| now[i] != was[i]).unwrap();
                    panic!(
                        "end of input: dom{d} memory at offset {:#x} (page {p}, byte {i:#x}) \
                         is {:#04x}, the model has {:#04x}: a write no operation accounts for",
                        p * PAGE + i,
                        now[i],
                        was[i],
                    );
                }
            }
        }
    }

    /// What the engine may write in page `p` of `d`: nothing (not a ring
    /// frame), anything (a frame of a ring the model does not vouch for),
    /// or, in a trusted ring, its tx_ptr and the current message's slot.
    pub(super) fn page_rule(&self, d: DomId, p: usize, log: &OpLog) -> Option<Option<usize>> {
        if self.env.pin_count(d as usize, p) == 0 && log.pinned_mask[d as usize] & 1 << p == 0 {
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
    pub(super) fn forbidden(
        &self,
        rule: Option<Option<usize>>,
        d: DomId,
        p: usize,
    ) -> Vec<(usize, usize)> {
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

    pub(super) fn check_invariants(&self) {
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
}
