//! Ring arithmetic on validated values.
//!
//! [`RingLen`] and [`RingOffset`] can only be built through constructors that
//! check them, so every offset the engine writes at is 16-byte aligned and
//! inside the ring. A receiver's `rx_ptr` comes from guest memory that the
//! guest may rewrite at any moment: it is read once per operation and goes
//! through [`RingLen::offset`]; a value that fails is "corrupt" and the ring
//! then reads as having no space, so nothing is ever written because of it.
use crate::abi::{self, MAX_RING_SIZE, MIN_RING_SIZE, SLOT};

/// Size of the header Xen writes in front of every message.
pub const MSG_HEADER: u32 = abi::MESSAGE_HEADER_SIZE as u32;

/// The length of a ring's data area: a multiple of 16 in
/// [`MIN_RING_SIZE`, `MAX_RING_SIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLen(u32);

/// An offset inside a ring's data area: 16-byte aligned and below its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RingOffset(u32);

impl RingOffset {
    pub const ZERO: RingOffset = RingOffset(0);

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl RingLen {
    /// Validate a guest-supplied ring length.
    pub const fn new(len: u32) -> Option<RingLen> {
        if len.is_multiple_of(SLOT) && len >= MIN_RING_SIZE && len <= MAX_RING_SIZE {
            Some(RingLen(len))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    /// Validate a guest-supplied offset (`rx_ptr`, `tx_ptr`) for this ring.
    pub const fn offset(self, raw: u32) -> Option<RingOffset> {
        if raw.is_multiple_of(SLOT) && raw < self.0 {
            Some(RingOffset(raw))
        } else {
            None
        }
    }

    /// `off + n` modulo the ring length.
    pub const fn advance(self, off: RingOffset, n: u32) -> RingOffset {
        // off < len <= 16 MiB and n is at most len, so this cannot overflow;
        // both terms are multiples of 16, so the result stays aligned.
        RingOffset(((off.0 as u64 + n as u64) % self.0 as u64) as u32)
    }

    /// Where a ring whose stored `tx_ptr` was invalid restarts writing:
    /// `ROUNDUP(rx_ptr)` when that lies inside the ring, else 0.
    pub const fn restart_offset(self, rx_ptr: u32) -> RingOffset {
        let r = abi::roundup(rx_ptr as u64);
        if r < self.0 as u64 {
            RingOffset(r as u32)
        } else {
            RingOffset(0)
        }
    }

    /// Bytes a message of payload length `payload` takes in the ring.
    pub const fn slot_bytes(payload: u32) -> u64 {
        MSG_HEADER as u64 + abi::roundup(payload as u64)
    }

    /// Largest payload this ring can ever take (`len - 32`): one slot of the
    /// ring always stays free so that `rx == tx` means empty.
    pub const fn max_message_size(self) -> u32 {
        self.0 - 2 * SLOT
    }

    /// Free bytes between the writer at `tx` and the reader at `rx`.
    pub const fn free_bytes(self, rx: RingOffset, tx: RingOffset) -> u32 {
        if rx.0 == tx.0 {
            self.0
        } else {
            ((rx.0 as u64 + self.0 as u64 - tx.0 as u64) % self.0 as u64) as u32
        }
    }

    /// Payload space available now, given the reader's position (`None` when
    /// the guest's `rx_ptr` is corrupt: no space).
    pub const fn payload_space(self, rx: Option<RingOffset>, tx: RingOffset) -> u32 {
        match rx {
            Some(rx) => self.free_bytes(rx, tx).saturating_sub(2 * SLOT),
            None => 0,
        }
    }

    /// Whether a message with payload `payload` fits now.
    pub const fn fits(self, rx: Option<RingOffset>, tx: RingOffset, payload: u32) -> bool {
        match rx {
            Some(rx) => Self::slot_bytes(payload) + (SLOT as u64) <= self.free_bytes(rx, tx) as u64,
            None => false,
        }
    }

    /// Whether a message with payload `payload` could ever fit this ring.
    pub const fn can_ever_fit(self, payload: u32) -> bool {
        payload <= self.max_message_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert!(RingLen::new(0).is_none());
        assert!(RingLen::new(32).is_none());
        assert!(RingLen::new(47).is_none());
        assert!(RingLen::new(48).is_some());
        assert!(RingLen::new(56).is_none());
        assert!(RingLen::new(MAX_RING_SIZE).is_some());
        assert!(RingLen::new(MAX_RING_SIZE + 16).is_none());
        assert!(RingLen::new(!15).is_none());
    }

    #[test]
    fn offsets() {
        let l = RingLen::new(64).unwrap();
        assert_eq!(l.offset(0), Some(RingOffset(0)));
        assert_eq!(l.offset(48), Some(RingOffset(48)));
        assert!(l.offset(64).is_none());
        assert!(l.offset(8).is_none());
        assert!(l.offset(u32::MAX).is_none());
        assert_eq!(l.advance(RingOffset(48), 32), RingOffset(16));
        assert_eq!(l.restart_offset(17), RingOffset(32));
        assert_eq!(l.restart_offset(63), RingOffset(0));
        assert_eq!(l.restart_offset(u32::MAX), RingOffset(0));
    }

    #[test]
    fn space_agrees_with_fits_at_every_offset() {
        // For every reader/writer position pair of a small ring, the payload
        // space notify reports is exactly the largest payload send accepts.
        let l = RingLen::new(128).unwrap();
        for rx in (0..128).step_by(16) {
            for tx in (0..128).step_by(16) {
                let (rx, tx) = (l.offset(rx), l.offset(tx).unwrap());
                let space = l.payload_space(rx, tx);
                // With only one slot free (16 bytes) the ABI's formula gives
                // 0 and not even an empty message fits: notify therefore
                // decides SUFFICIENT with `fits`, as send does.
                let one_slot = rx.map(|rx| l.free_bytes(rx, tx)) == Some(16);
                assert_eq!(l.fits(rx, tx, space), !one_slot, "{rx:?} {tx:?} {space}");
                assert!(!l.fits(rx, tx, space + 1), "{rx:?} {tx:?} {space}");
            }
        }
        // empty ring: len - 32, which is max_message_size
        let z = Some(RingOffset::ZERO);
        assert_eq!(l.payload_space(z, RingOffset::ZERO), l.max_message_size());
        // one slot short of full: nothing fits, not even an empty message
        let tx = RingOffset(112);
        assert_eq!(l.payload_space(z, tx), 0);
        assert!(!l.fits(z, RingOffset(112), 0));
        assert!(l.fits(z, RingOffset(96), 0));
        assert!(!l.fits(None, RingOffset::ZERO, 0));
    }
}
