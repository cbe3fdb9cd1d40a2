//! Where things are in each simulated domain's memory: argument pages, a
//! read-only page, four ring slots each with its pfn list and guard pages.
//!
//! One fixed layout for every input keeps the decoder's choices small (a
//! slot number, not an address) and lets the checks know which pages must
//! never change (guards, the read-only page) without asking the model.
use crate::abi::PAGE_SIZE;
use crate::sim::VA_BASE;

/// Domains of the simulated host (dom0 is privileged).
pub(super) const NDOM: usize = 4;
pub(super) const PAGE: usize = PAGE_SIZE;
/// Pages of memory per domain, laid out as below.
pub(super) const MEM_PAGES: usize = 33;
pub(super) const MEM: usize = MEM_PAGES * PAGE;
/// Pages 0..4: hypercall arguments.
pub(super) const ARGS_LEN: usize = 4 * PAGE;
/// A read-only page (pinning it must fail).
pub(super) const RO_PAGE: usize = 4;
/// Where the harness's own viptables listings go (dom0 arguments).
pub(super) const VIPL_OFF: usize = ARGS_LEN - 256;
/// Most operations decoded from one input.
pub(super) const MAX_OPS: usize = 192;
/// Ring slot: a pfn list, a guard page, `cap` ring pages, a guard page.
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) list: usize,
    pub(super) list_pages: usize,
    pub(super) ring: usize,
    pub(super) cap: usize,
}

pub(super) const SLOTS: [Slot; 4] = [
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
pub(super) const GUARDS: [usize; 8] = [6, 8, 10, 13, 15, 19, 29, 32];
pub(super) const fn va(off: usize) -> u64 {
    VA_BASE + off as u64
}
