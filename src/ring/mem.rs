//! A registered ring's memory: the guest frames Xen pinned and mapped.
//!
//! The frames stay mapped for the ring's lifetime (mapped once at register,
//! not per send). They are shared with the receiving guest, which may write
//! any byte of them at any moment, so this module never forms a Rust
//! reference to them: every access is a raw copy or a volatile load/store
//! through a pointer obtained from [`Env::frame_va`]. It is the only module
//! that dereferences such pointers, and [`RingMem::new`] is the only place
//! its invariant is established: the frames cover `60 + len` bytes, so every
//! position below that lies inside a mapped frame.
use super::geometry::{RingLen, RingOffset};
use crate::abi::{PAGE_SIZE, RING_DATA_OFFSET, RING_RX_PTR_OFFSET, RING_TX_PTR_OFFSET};
use crate::env::{Env, Fault};
use alloc::vec::Vec;

/// The pinned frames of one ring and the length of its data area.
pub struct RingMem<F> {
    frames: Vec<F>,
    len: RingLen,
}

/// Number of frames needed to hold the ring header and `len` bytes of data.
pub const fn frames_needed(len: RingLen) -> usize {
    (RING_DATA_OFFSET + len.get() as usize).div_ceil(PAGE_SIZE)
}

impl<F> RingMem<F> {
    /// Take ownership of pinned frames; `None` (frames handed back) unless
    /// they cover the header and the whole data area.
    pub fn new(frames: Vec<F>, len: RingLen) -> Result<RingMem<F>, Vec<F>> {
        if frames.len() >= frames_needed(len) {
            Ok(RingMem { frames, len })
        } else {
            Err(frames)
        }
    }

    pub fn len(&self) -> RingLen {
        self.len
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Give the frames back (to be unpinned).
    pub fn into_frames(self) -> Vec<F> {
        self.frames
    }

    /// Pointer to byte `pos` of the ring (0 = start of the header), and how
    /// many bytes from there stay in the same frame.
    fn at<E: Env<Frame = F>>(&self, env: &E, pos: usize) -> (*mut u8, usize) {
        let (page, within) = (pos / PAGE_SIZE, pos % PAGE_SIZE);
        // `pos < 60 + len <= frames.len() * PAGE_SIZE` (constructor), so
        // `page` indexes a pinned frame; callers keep pos in that range.
        let base = env.frame_va(&self.frames[page]);
        // SAFETY: `within < PAGE_SIZE` and the mapping is PAGE_SIZE bytes.
        (unsafe { base.add(within) }, PAGE_SIZE - within)
    }

    /// Read the receiver's `rx_ptr` (once; the guest may change it anytime).
    pub fn read_rx_ptr<E: Env<Frame = F>>(&self, env: &E) -> u32 {
        let (p, _) = self.at(env, RING_RX_PTR_OFFSET);
        // SAFETY: offset 20 of frame 0 is mapped and 4-byte aligned (frames
        // are page aligned); a volatile load of plain data cannot be torn
        // into an invalid u32, and the value is validated by the caller.
        unsafe { core::ptr::read_volatile(p.cast::<u32>()) }
    }

    /// Publish a new `tx_ptr` for the receiver.
    pub fn write_tx_ptr<E: Env<Frame = F>>(&self, env: &E, tx: RingOffset) {
        let (p, _) = self.at(env, RING_TX_PTR_OFFSET);
        // SAFETY: as in `read_rx_ptr`, offset 24 of frame 0 is mapped and aligned.
        unsafe { core::ptr::write_volatile(p.cast::<u32>(), tx.get()) }
    }

    /// Visit the pieces of `n` bytes of data area starting `skip` bytes after
    /// `off`, wrapping
    /// at the ring's end and split at frame boundaries: `f(dst, done, len)`
    /// gets a mapped destination pointer valid for `len` bytes and how many
    /// bytes came before it. `n` must not exceed the ring length.
    fn pieces<E: Env<Frame = F>>(
        &self,
        env: &E,
        off: RingOffset,
        skip: usize,
        n: usize,
        mut f: impl FnMut(*mut u8, usize, usize) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        let len = self.len.get() as usize;
        debug_assert!(skip + n <= len);
        let mut o = (off.get() as usize + skip) % len;
        let mut done = 0;
        while done < n {
            let (p, in_frame) = self.at(env, RING_DATA_OFFSET + o);
            let chunk = (n - done).min(len - o).min(in_frame);
            f(p, done, chunk)?;
            done += chunk;
            o += chunk;
            if o == len {
                o = 0;
            }
        }
        Ok(())
    }

    /// Copy `src` into the data area at `off` (wrapping).
    pub fn write<E: Env<Frame = F>>(&self, env: &E, off: RingOffset, src: &[u8]) {
        let r = self.pieces(env, off, 0, src.len(), |dst, done, n| {
            // SAFETY: `dst` is valid for `n` bytes of a mapped frame (see
            // `pieces`); `src[done..done + n]` is in bounds; hypervisor
            // memory and a guest frame never overlap.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr().add(done), dst, n) };
            Ok(())
        });
        debug_assert!(r.is_ok());
    }

    /// Copy `n` bytes from the caller's guest address `src` into the data
    /// area, `skip` bytes after `off` (wrapping). On a fault some bytes may
    /// have been written, which the receiver cannot see while `tx_ptr` stays.
    pub fn write_from_guest<E: Env<Frame = F>>(
        &self,
        env: &E,
        off: RingOffset,
        skip: usize,
        src: u64,
        n: usize,
    ) -> Result<(), Fault> {
        self.pieces(env, off, skip, n, |dst, done, len| {
            let from = src.checked_add(done as u64).ok_or(Fault)?;
            // SAFETY: `dst` is valid for writes of `len` bytes of a mapped
            // frame (see `pieces`); the copy is raw, as the Env requires.
            unsafe { env.copy_from_guest(dst, from, len) }
        })
    }

    /// Copy `dst.len()` bytes out of the data area at `off` (wrapping).
    pub fn read<E: Env<Frame = F>>(&self, env: &E, off: RingOffset, dst: &mut [u8]) {
        let n = dst.len();
        let out = dst.as_mut_ptr();
        let r = self.pieces(env, off, 0, n, |src, done, len| {
            // SAFETY: `src` is valid for reads of `len` bytes of a mapped
            // frame; `out[done..done + len]` is in bounds of `dst`.
            unsafe { core::ptr::copy_nonoverlapping(src, out.add(done), len) };
            Ok(())
        });
        debug_assert!(r.is_ok());
    }
}
