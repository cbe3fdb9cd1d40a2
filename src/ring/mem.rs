//! A registered ring's memory: the guest frames Xen pinned, mapped once.
//!
//! At register the frames are pinned and mapped, in order, at one
//! contiguous hypervisor address ([`Env::map_frames`]); the mapping lasts
//! until unregister, so no send maps anything, and a message is copied in
//! at most two pieces (the second after the ring's wrap point). The memory
//! is shared with the receiving guest, which may write any byte of it at any
//! moment, so this module never forms a Rust reference to it: every access
//! is a raw copy or a volatile load/store. It is the only module that
//! dereferences the mapping, and [`RingMem::map`] is the only place its
//! invariant is established: the mapping covers `60 + len` bytes, so every
//! position below that is inside it.
use super::geometry::{RingLen, RingOffset};
use crate::abi::{
    MessageHeader, MESSAGE_HEADER_SIZE, PAGE_SIZE, RING_DATA_OFFSET, RING_RX_PTR_OFFSET,
    RING_TX_PTR_OFFSET,
};
use crate::env::{Env, Fault, PinError};
use crate::guest::GuestRange;
use alloc::vec::Vec;
use core::ptr::NonNull;
use zerocopy::IntoBytes;

/// The pinned frames of one ring, their mapping, and the ring's length.
pub struct RingMem<F> {
    frames: Vec<F>,
    base: NonNull<u8>,
    len: RingLen,
}

// SAFETY: `base` is a hypervisor mapping valid on every CPU until
// `release`; it is only used for raw copies and volatile accesses, which
// the ring's lock (or the ring's immutability, for reads of `rx_ptr`)
// orders between CPUs. The frames themselves are `Send + Sync`.
unsafe impl<F: Send> Send for RingMem<F> {}
// SAFETY: as above; `&RingMem` only reads `base` and copies through it.
unsafe impl<F: Sync> Sync for RingMem<F> {}

/// Number of frames needed to hold the ring header and `len` bytes of data.
pub const fn frames_needed(len: RingLen) -> usize {
    (RING_DATA_OFFSET + len.get() as usize).div_ceil(PAGE_SIZE)
}

impl<F> RingMem<F> {
    /// Map pinned frames for a ring of `len` bytes. On failure the frames
    /// are handed back (to be unpinned) with the error.
    pub fn map<E: Env<Frame = F>>(
        env: &E,
        frames: Vec<F>,
        len: RingLen,
    ) -> Result<RingMem<F>, (Vec<F>, PinError)> {
        if frames.len() < frames_needed(len) {
            return Err((frames, PinError::Invalid));
        }
        match env.map_frames(&frames) {
            Ok(base) => Ok(RingMem { frames, base, len }),
            Err(e) => Err((frames, e)),
        }
    }

    /// Unmap; the frames come back to be unpinned.
    pub fn release<E: Env<Frame = F>>(self, env: &E) -> Vec<F> {
        env.unmap_frames(self.base, self.frames.len());
        self.frames
    }

    pub fn len(&self) -> RingLen {
        self.len
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Pointer to byte `pos` of the ring (0 = start of the header).
    fn at(&self, pos: usize) -> *mut u8 {
        debug_assert!(pos < RING_DATA_OFFSET + self.len.get() as usize);
        // SAFETY: callers keep `pos < 60 + len`, inside the mapping (`map`).
        unsafe { self.base.as_ptr().add(pos) }
    }

    /// Read the receiver's `rx_ptr` (once; the guest may change it anytime).
    pub fn read_rx_ptr(&self) -> u32 {
        // SAFETY: offset 20 is mapped and 4-byte aligned (the mapping is
        // page aligned); a volatile load of plain data is always a valid
        // u32, and the value is validated by the caller.
        unsafe { core::ptr::read_volatile(self.at(RING_RX_PTR_OFFSET).cast::<u32>()) }
    }

    /// Publish a new `tx_ptr` for the receiver.
    pub fn write_tx_ptr(&self, tx: RingOffset) {
        // SAFETY: as in `read_rx_ptr`, offset 24 is mapped and aligned.
        unsafe { core::ptr::write_volatile(self.at(RING_TX_PTR_OFFSET).cast::<u32>(), tx.get()) }
    }

    /// Visit the (at most two) pieces of `n` bytes of data area starting
    /// `skip` bytes after `off`, split where the ring wraps: `f(dst, done,
    /// len)` gets a destination valid for `len` bytes and how many bytes
    /// came before it. `skip + n` must not exceed the ring length.
    fn pieces(
        &self,
        off: RingOffset,
        skip: usize,
        n: usize,
        mut f: impl FnMut(*mut u8, usize, usize) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        let len = self.len.get() as usize;
        debug_assert!(skip + n <= len);
        let start = (off.get() as usize + skip) % len;
        let first = n.min(len - start);
        if first > 0 {
            f(self.at(RING_DATA_OFFSET + start), 0, first)?;
        }
        if n > first {
            f(self.at(RING_DATA_OFFSET), first, (n - first).min(len))?;
        }
        Ok(())
    }

    /// Write a message header at `off`, as volatile 32-bit stores: the
    /// receiver may write the same memory at the same time (a header is 16
    /// bytes at a 16-byte slot of the data area, which starts 4-aligned, so
    /// it never wraps and every word is aligned).
    pub fn write_header(&self, off: RingOffset, header: &MessageHeader) {
        const WORDS: usize = MESSAGE_HEADER_SIZE / 4;
        let mut words = [0u32; WORDS];
        words.as_mut_bytes().copy_from_slice(header.as_bytes());
        let base = RING_DATA_OFFSET + off.get() as usize;
        debug_assert!(off.get() as usize + MESSAGE_HEADER_SIZE <= self.len.get() as usize);
        for (i, w) in words.iter().enumerate() {
            // SAFETY: `off` is a valid slot offset, so the 16 bytes lie in
            // the data area, inside the mapping; `base` is 4-aligned (60 +
            // a multiple of 16 from a page-aligned start).
            unsafe { core::ptr::write_volatile(self.at(base + 4 * i).cast::<u32>(), *w) };
        }
    }

    /// Copy the caller's guest range `src` into the data area, `skip` bytes
    /// after `off` (wrapping). On a fault some bytes may have been written,
    /// which the receiver cannot see while `tx_ptr` stays.
    pub fn write_from_guest<E: Env<Frame = F>>(
        &self,
        env: &E,
        off: RingOffset,
        skip: usize,
        src: GuestRange,
    ) -> Result<(), Fault> {
        self.pieces(off, skip, src.len() as usize, |dst, done, len| {
            let from = src.sub(done as u64, len as u64)?;
            // SAFETY: `dst` is valid for writes of `len` bytes of the
            // mapping (see `pieces`), the length of `from`; the copy is raw,
            // as the Env requires.
            unsafe { env.copy_from_guest(dst, from) }
        })
    }
}
