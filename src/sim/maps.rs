//! Ring mappings for long-lived simulations: guarded, and cached for reuse.
//!
//! [`Sim::map_pages`] maps a ring the cheap way for tests (frames that lie in
//! order are used where they are, in the domain's own mapping) and unmaps it
//! for good. A fuzz target registers and unregisters rings thousands of times
//! a second on one simulated host, and wants to know exactly which guest
//! pages the engine can write. [`RingMaps`] gives it both:
//!
//! - **Guarded.** Every ring gets a mapping of its own (frames aliased from
//!   the domains' memfds, consecutive frames in one `mmap`), with an
//!   inaccessible page before and after, so the engine can write guest memory
//!   only through the frames of its live rings: a write past a ring's end, or
//!   through a ring mapping after it was given back, faults.
//! - **Cached.** A mapping given back is made inaccessible (one `mprotect`)
//!   and kept with its frame list; mapping the same list again makes it
//!   accessible again (one `mprotect`) instead of building it anew (one
//!   `mmap` per run of frames plus the reservation, and page faults on first
//!   touch). The cache is bounded; the oldest unused mappings go first.
use super::Sim;
use crate::abi::PAGE_SIZE;
use crate::env::{DomId, PinError};
use core::ptr::NonNull;
use std::vec::Vec;

/// Most mappings kept (live or not).
const MAX_ENTRIES: usize = 128;
/// Most VMAs (runs of consecutive frames, plus the two guards) kept in all
/// of them: a ring of 4097 frames that alternate between two pages is 4099
/// VMAs, and Linux allows a process 65530 by default.
const MAX_VMAS: usize = 1 << 14;

struct Entry {
    /// The frames in ring order, each `dom << 32 | pfn` (compared as one
    /// slice of integers).
    key: Vec<u64>,
    /// Start of the reservation: a guard page, the frames, a guard page.
    base: *mut u8,
    /// Runs of consecutive frames (one VMA each).
    runs: usize,
    live: bool,
    /// When it was last handed out (for eviction).
    used: u64,
}

impl Entry {
    fn pages(&self) -> usize {
        self.key.len()
    }

    fn vmas(&self) -> usize {
        self.runs + 2
    }

    /// The address the engine gets: the first frame, past the guard page.
    fn va(&self) -> *mut u8 {
        // SAFETY: within the reservation (guard page, frames, guard page).
        unsafe { self.base.add(PAGE_SIZE) }
    }
}

/// Guarded ring mappings of one [`Sim`], reused by frame list.
pub struct RingMaps {
    entries: Vec<Entry>,
    clock: u64,
}

// SAFETY: the raw pointers are mappings owned by this cache; the memory they
// map is the simulation's shared, racy guest memory (see `Sim`).
unsafe impl Send for RingMaps {}

/// The `(domain, pfn)` of a key element.
fn frame(k: u64) -> (DomId, usize) {
    ((k >> 32) as DomId, k as u32 as usize)
}

/// `mprotect` of a range this cache owns, which cannot fail but for a bug.
///
/// # Safety
/// `[addr, addr + len)` must be mappings of this cache that nobody is
/// accessing through (or that the caller makes accessible).
unsafe fn protect(addr: *mut u8, len: usize, prot: libc::c_int) {
    // SAFETY: forwarded.
    let rc = unsafe { libc::mprotect(addr.cast(), len, prot) };
    assert_eq!(
        rc,
        0,
        "sim: mprotect failed: {}",
        std::io::Error::last_os_error()
    );
}

impl RingMaps {
    pub const fn new() -> RingMaps {
        RingMaps {
            entries: Vec::new(),
            clock: 0,
        }
    }

    /// Map `frames` contiguously in order (as Xen's vmap does for a ring),
    /// between two inaccessible guard pages; reuses an unused mapping of the
    /// same frames if there is one.
    pub fn map(&mut self, sim: &Sim, frames: &[(DomId, usize)]) -> Result<NonNull<u8>, PinError> {
        if frames.is_empty() {
            return Err(PinError::Invalid);
        }
        let key: Vec<u64> = frames
            .iter()
            .map(|&(d, p)| (d as u64) << 32 | p as u64)
            .collect();
        self.clock += 1;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        if let Some(e) = self.entries.iter_mut().find(|e| !e.live && e.key == key) {
            // SAFETY: the entry's frames, unused since `unmap`.
            unsafe { protect(e.va(), e.pages() * PAGE_SIZE, rw) };
            e.live = true;
            e.used = self.clock;
            return NonNull::new(e.va()).ok_or(PinError::NoMem);
        }
        let fds = frames
            .iter()
            .map(|&(d, _)| sim.dom(d).map(|d| d.fd).ok_or(PinError::Invalid))
            .collect::<Result<Vec<_>, _>>()?;
        let n = frames.len();
        let runs = 1 + frames
            .windows(2)
            .filter(|w| w[1] != (w[0].0, w[0].1 + 1))
            .count();
        self.evict(runs + 2);
        // SAFETY: reserve fresh address space (guard, frames, guard), then
        // replace the frames' part of it run by run (MAP_FIXED inside our own
        // reservation) with the domains' memfd pages: the same memory,
        // aliased in ring order. The guards stay PROT_NONE.
        let base = unsafe {
            let base = super::map(
                core::ptr::null_mut(),
                (n + 2) * PAGE_SIZE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            let mut i = 0;
            while i < n {
                let (d, p) = frames[i];
                let run = frames[i..]
                    .iter()
                    .enumerate()
                    .take_while(|&(k, &(dk, pk))| dk == d && pk == p + k)
                    .count();
                super::map(
                    base.add((i + 1) * PAGE_SIZE),
                    run * PAGE_SIZE,
                    rw,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fds[i],
                    p * PAGE_SIZE,
                );
                i += run;
            }
            base
        };
        self.entries.push(Entry {
            key,
            base,
            runs,
            live: true,
            used: self.clock,
        });
        NonNull::new(self.entries.last().unwrap().va()).ok_or(PinError::NoMem)
    }

    /// Give back a mapping `map` returned (`count` frames at `va`): it
    /// becomes inaccessible. Returns its frames.
    ///
    /// Panics if `va` is not a live mapping of `count` frames.
    pub fn unmap(
        &mut self,
        va: NonNull<u8>,
        count: usize,
    ) -> impl Iterator<Item = (DomId, usize)> + '_ {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.live && e.va() == va.as_ptr())
            .expect("unmap_frames of a range map_frames did not return (or unmapped twice)");
        assert_eq!(e.pages(), count, "unmap_frames: wrong count");
        // SAFETY: the engine gave the mapping back and no longer uses it; a
        // use from now on faults, which is the point.
        unsafe { protect(e.va(), count * PAGE_SIZE, libc::PROT_NONE) };
        e.live = false;
        e.key.iter().map(|&k| frame(k))
    }

    /// Mappings handed out and not given back.
    pub fn live(&self) -> usize {
        self.entries.iter().filter(|e| e.live).count()
    }

    /// Make room for a new mapping of `vmas` VMAs: drop the least recently
    /// used unused mappings while the cache is over its bounds.
    fn evict(&mut self, vmas: usize) {
        loop {
            let used: usize = self.entries.iter().map(Entry::vmas).sum();
            if self.entries.len() < MAX_ENTRIES && used + vmas <= MAX_VMAS {
                return;
            }
            let Some(i) = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.live)
                .min_by_key(|(_, e)| e.used)
                .map(|(i, _)| i)
            else {
                return; // every mapping is in use: grow beyond the bound
            };
            let e = self.entries.swap_remove(i);
            // SAFETY: an unused mapping of this cache (the whole reservation).
            unsafe { libc::munmap(e.base.cast(), (e.pages() + 2) * PAGE_SIZE) };
        }
    }
}

impl Default for RingMaps {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RingMaps {
    fn drop(&mut self) {
        for e in self.entries.drain(..) {
            // SAFETY: the cache's own reservations; whoever held a live
            // mapping (an engine) is gone with the host.
            unsafe { libc::munmap(e.base.cast(), (e.pages() + 2) * PAGE_SIZE) };
        }
    }
}
