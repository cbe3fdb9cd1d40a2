//! Untrusted input from guests: addresses and the values read through them.
//!
//! A guest hands the hypercall raw numbers. This module is the only place
//! that turns a guest virtual address into bytes: [`GuestAddr::read`] copies
//! a whole ABI structure out of guest memory exactly once, into hypervisor
//! memory, where the guest can no longer change it; every later check looks
//! at that private copy. Every access to guest memory, here, in the copy
//! engine and in the `Env`, is on a [`GuestRange`], whose constructor is the
//! one place that checks that an address and a length make a range at all. Values that name something inside a ring (offsets,
//! lengths) are validated by the constructors in [`crate::ring::geometry`],
//! so the rest of the engine can hold only validated ones.
use crate::abi::PAGE_SIZE;
use crate::env::{Env, Fault};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A guest virtual address of the calling vCPU, as the guest passed it.
/// Nothing is known about it: it may be null, unmapped, or point into the
/// hypervisor. `Env` copies fail cleanly for all of those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestAddr(pub u64);

impl GuestAddr {
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }

    /// The address `bytes` further on, or a fault if that wraps around.
    pub fn offset(self, bytes: u64) -> Result<GuestAddr, Fault> {
        GuestRange::new(self.0, bytes).map(|r| GuestAddr(r.end()))
    }

    /// The `len` bytes from here.
    pub fn range(self, len: u64) -> Result<GuestRange, Fault> {
        GuestRange::new(self.0, len)
    }

    /// Read one `T` from guest memory, once.
    pub fn read<E: Env, T: FromBytes + IntoBytes>(self, env: &E) -> Result<T, Fault> {
        let mut v = T::new_zeroed();
        self.read_into(env, core::slice::from_mut(&mut v))?;
        Ok(v)
    }

    /// Fill `out` from guest memory (an array of `T`s at this address), once.
    pub fn read_into<E: Env, T: FromBytes + IntoBytes>(
        self,
        env: &E,
        out: &mut [T],
    ) -> Result<(), Fault> {
        let bytes = out.as_mut_bytes();
        let from = self.range(bytes.len() as u64)?;
        // SAFETY: `bytes` is a private hypervisor buffer valid for writes of
        // its whole length, the range's; any bit pattern is a valid `T`
        // (FromBytes).
        unsafe { env.copy_from_guest(bytes.as_mut_ptr(), from) }
    }

    /// Write one `T` to guest memory.
    pub fn write<E: Env, T: IntoBytes + Immutable>(self, env: &E, v: &T) -> Result<(), Fault> {
        self.write_slice(env, core::slice::from_ref(v))
    }

    /// Write an array of `T`s to guest memory at this address.
    pub fn write_slice<E: Env, T: IntoBytes + Immutable>(
        self,
        env: &E,
        v: &[T],
    ) -> Result<(), Fault> {
        let bytes = v.as_bytes();
        let to = self.range(bytes.len() as u64)?;
        // SAFETY: `bytes` is valid for reads of its whole length, the range's.
        unsafe { env.copy_to_guest(to, bytes.as_ptr()) }
    }
}

/// A range of the calling vCPU's guest virtual addresses, `[start, start +
/// len)`, that does not wrap around the address space. [`GuestRange::new`]
/// is the only place that checks it; every sub-range is made from a range,
/// so nothing else ever adds a guest address and a length. Nothing is known
/// about the memory: it may be unmapped or the hypervisor's, and `Env`
/// copies fail cleanly for that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRange {
    start: u64,
    len: u64,
}

impl GuestRange {
    /// `len` bytes from `start`: a fault if they would wrap.
    pub fn new(start: u64, len: u64) -> Result<GuestRange, Fault> {
        start.checked_add(len).ok_or(Fault)?;
        Ok(GuestRange { start, len })
    }

    pub fn start(self) -> u64 {
        self.start
    }

    pub fn len(self) -> u64 {
        self.len
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The address just past the range (no wrap: checked in `new`).
    pub fn end(self) -> u64 {
        self.start + self.len
    }

    /// The `n` bytes from byte `at` of this range; a fault unless they lie
    /// within it.
    pub fn sub(self, at: u64, n: u64) -> Result<GuestRange, Fault> {
        if at > self.len || n > self.len - at {
            return Err(Fault);
        }
        Ok(GuestRange {
            start: self.start + at,
            len: n,
        })
    }

    /// Its first byte (`None` when empty).
    pub fn first_byte(self) -> Option<GuestRange> {
        self.sub(0, 1).ok()
    }

    /// The part from the first page boundary after its start (`None` when
    /// the range lies within one page).
    pub fn after_first_page(self) -> Option<GuestRange> {
        let skip = next_page(self.start)?.checked_sub(self.start)?;
        match self.sub(skip, self.len.checked_sub(skip)?) {
            Ok(r) if !r.is_empty() => Some(r),
            _ => None,
        }
    }

    /// The first address of each page the range touches: its start, then
    /// every page boundary inside it (how a probe walks it).
    pub fn page_starts(self) -> impl Iterator<Item = u64> {
        let end = self.end();
        let first = (!self.is_empty()).then_some(self.start);
        core::iter::successors(first, move |&at| next_page(at).filter(|&n| n < end))
    }
}

/// The first byte of the guest page after the one `at` is in (`None` past
/// the top of the address space).
fn next_page(at: u64) -> Option<u64> {
    (at | (PAGE_SIZE as u64 - 1)).checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn a_range_never_wraps() {
        assert!(GuestRange::new(u64::MAX, 0).is_ok());
        assert!(GuestRange::new(u64::MAX, 1).is_err());
        assert!(GuestRange::new(u64::MAX - 9, 9).is_ok());
        let r = GuestRange::new(u64::MAX - 9, 9).unwrap();
        assert_eq!(r.end(), u64::MAX);
        assert_eq!(r.sub(9, 0).map(GuestRange::start), Ok(u64::MAX));
        assert!(r.sub(9, 1).is_err());
        assert!(r.sub(10, 0).is_err());
        assert!(r.sub(3, u64::MAX).is_err());
    }

    #[test]
    fn pages_of_a_range() {
        let r = GuestRange::new(0x1ff0, 0x2020).unwrap();
        let pages: Vec<u64> = r.page_starts().collect();
        assert_eq!(pages, [0x1ff0, 0x2000, 0x3000, 0x4000]);
        let rest = r.after_first_page().unwrap();
        assert_eq!((rest.start(), rest.len()), (0x2000, 0x2010));
        assert_eq!(
            GuestRange::new(0x2000, 0x1000).unwrap().after_first_page(),
            None
        );
        assert_eq!(GuestRange::new(5, 0).unwrap().page_starts().count(), 0);
        assert_eq!(GuestRange::new(5, 0).unwrap().first_byte(), None);
        // The last page of the address space.
        let top = GuestRange::new(u64::MAX - 0x1fff, 0x1fff).unwrap();
        assert_eq!(top.page_starts().count(), 2);
    }
}
