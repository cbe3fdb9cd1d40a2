//! A small Argo client, for `make bench` only: upstream Xen's own
//! hypervisor-mediated channel, built into the same hypervisor as V4V so
//! the two can be measured in one boot.
//!
//! Numbers and layouts are Argo's public ABI (Xen's
//! `include/public/argo.h`): hypercall 39 with five arguments
//! `(cmd, arg1, arg2, arg3, arg4)`, VIRQ_ARGO 11, a 64-byte ring header
//! (`rx_ptr`, `tx_ptr`, 56 reserved bytes) in front of the ring data, and a
//! 16-byte message header (`len` including the header, source address,
//! `message_type`). Messages start on 16-byte slots and wrap at the end
//! of the ring like V4V's. Xen only runs it when booted with `argo=1`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use v4v_abi::PAGE_SIZE;

use crate::v4v::Pages;
use crate::xen::hypercall;

pub const HYPERVISOR_ARGO_OP: u32 = 39;
pub const VIRQ_ARGO: u32 = 11;

mod op {
    pub const REGISTER_RING: u64 = 1;
    pub const UNREGISTER_RING: u64 = 2;
    pub const SENDV: u64 = 3;
    pub const NOTIFY: u64 = 4;
}

/// Bytes of `xen_argo_ring_t` before the ring data.
pub const RING_HEADER_SIZE: usize = 64;
/// Bytes of `xen_argo_ring_message_header`.
pub const MESSAGE_HEADER_SIZE: usize = 16;
const SLOT: u64 = 16;

/// `xen_argo_addr_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Addr {
    pub aport: u32,
    pub domain_id: u16,
    pub pad: u16,
}

/// `xen_argo_send_addr_t`.
#[repr(C)]
struct SendAddr {
    src: Addr,
    dst: Addr,
}

/// `xen_argo_iov_t`.
#[repr(C)]
struct Iov {
    hnd: u64,
    len: u32,
    pad: u32,
}

/// `xen_argo_register_ring_t`.
#[repr(C)]
struct RegisterRing {
    aport: u32,
    partner_id: u16,
    pad: u16,
    len: u32,
}

/// `xen_argo_unregister_ring_t`.
#[repr(C)]
struct UnregisterRing {
    aport: u32,
    partner_id: u16,
    pad: u16,
}

/// `argo_op` with raw arguments.
///
/// # Safety
/// Pointers Xen writes through must point to memory the caller lets Xen
/// change (or be invalid on purpose).
///
/// Xen 4.17 and 4.20 declare `argo_op`'s handler as returning `int`, so only the
/// low 32 bits of rax are the result (an error reaches a 64-bit guest as
/// e.g. 0xfffffff5); they are sign-extended here.
pub unsafe fn raw_op(cmd: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    // SAFETY: forwarded to the caller's contract.
    let rax = unsafe { hypercall::hypercall6(HYPERVISOR_ARGO_OP, cmd, a1, a2, a3, a4, 0) };
    rax as i32 as i64
}

/// `sendv` of one message made of `buf` from our `src_port` to `dst`.
pub fn send(src_port: u32, me: u16, dst: Addr, buf: &[u8], message_type: u32) -> i64 {
    let addr = SendAddr {
        src: Addr {
            aport: src_port,
            domain_id: me,
            pad: 0,
        },
        dst,
    };
    let iov = Iov {
        hnd: buf.as_ptr() as u64,
        len: buf.len() as u32,
        pad: 0,
    };
    // SAFETY: the address pair, the iov and the buffer are live and only
    // read by Xen.
    unsafe {
        raw_op(
            op::SENDV,
            &addr as *const SendAddr as u64,
            &iov as *const Iov as u64,
            1,
            message_type as u64,
        )
    }
}

/// `notify` without ring data: Xen wakes the senders waiting for space in
/// our rings.
pub fn notify() -> i64 {
    // SAFETY: no pointer is passed.
    unsafe { raw_op(op::NOTIFY, 0, 0, 0, 0) }
}

/// A call Argo rejects before doing any work (an unknown command): the
/// cost of reaching Argo's dispatcher.
pub fn null_op() -> i64 {
    // SAFETY: no pointer is passed; the command does not exist.
    unsafe { raw_op(0xffff, 0, 0, 0, 0) }
}

/// An Argo ring on pages of the guest's heap, only ever accessed through
/// raw pointers while Xen may write into it.
pub struct Ring {
    pages: Pages,
    len: u32,
    aport: u32,
    partner: u16,
    registered: bool,
}

impl Ring {
    /// A ring of `len` bytes (a multiple of 16) on port `aport` taking
    /// messages from `partner`.
    pub fn new(aport: u32, partner: u16, len: u32) -> Ring {
        let npages = (RING_HEADER_SIZE + len as usize).div_ceil(PAGE_SIZE);
        Ring {
            pages: Pages::alloc(npages),
            len,
            aport,
            partner,
            registered: false,
        }
    }

    pub fn register(&mut self) -> i64 {
        let reg = RegisterRing {
            aport: self.aport,
            partner_id: self.partner,
            pad: 0,
            len: self.len,
        };
        let gfns: Vec<u64> = self.pages.mfns();
        // SAFETY: the pages are ours and stay allocated until unregister
        // (on drop at the latest); the frame list is only read.
        let rc = unsafe {
            raw_op(
                op::REGISTER_RING,
                &reg as *const RegisterRing as u64,
                gfns.as_ptr() as u64,
                gfns.len() as u64,
                0,
            )
        };
        if rc == 0 {
            self.registered = true;
        }
        rc
    }

    pub fn unregister(&mut self) -> i64 {
        let unreg = UnregisterRing {
            aport: self.aport,
            partner_id: self.partner,
            pad: 0,
        };
        // SAFETY: the argument is live and only read.
        let rc = unsafe {
            raw_op(
                op::UNREGISTER_RING,
                &unreg as *const UnregisterRing as u64,
                0,
                0,
                0,
            )
        };
        if rc == 0 {
            self.registered = false;
        }
        rc
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: rx_ptr (0) and tx_ptr (4) are aligned u32s in the first
        // page, shared with Xen.
        unsafe { AtomicU32::from_ptr(self.pages.as_ptr().add(off).cast::<u32>()) }
    }

    fn read_data(&self, off: u32, out: &mut [u8]) {
        self.pages
            .read_wrapped(RING_HEADER_SIZE, self.len, off, out);
    }

    /// Takes the next message, its payload copied into `payload`; returns
    /// its source and type. `Ok(None)` when the ring is empty.
    pub fn recv_into(&mut self, payload: &mut Vec<u8>) -> Result<Option<(Addr, u32)>, String> {
        let rx = self.word(0).load(Ordering::Acquire);
        let tx = self.word(4).load(Ordering::Acquire);
        if rx == tx {
            return Ok(None);
        }
        if tx >= self.len || !tx.is_multiple_of(16) || rx >= self.len || !rx.is_multiple_of(16) {
            return Err(format!(
                "argo ring pointers rx {rx} tx {tx} (len {})",
                self.len
            ));
        }
        let mut raw = [0u8; MESSAGE_HEADER_SIZE];
        self.read_data(rx, &mut raw);
        let word = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let mlen = word(0);
        let source = Addr {
            aport: word(4),
            domain_id: u16::from_le_bytes([raw[8], raw[9]]),
            pad: 0,
        };
        let message_type = word(12);
        if (mlen as usize) < MESSAGE_HEADER_SIZE || mlen > self.len - 16 {
            return Err(format!("argo message at {rx}: bad len {mlen}"));
        }
        let plen = mlen as usize - MESSAGE_HEADER_SIZE;
        payload.resize(plen, 0);
        if plen > 0 {
            self.read_data((rx + 16) % self.len, payload);
        }
        let next = (rx as u64 + mlen as u64).next_multiple_of(SLOT) % self.len as u64;
        self.word(0).store(next as u32, Ordering::Release);
        Ok(Some((source, message_type)))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // As for V4V rings: leak the pages rather than reuse pages Xen
        // still writes.
        if self.registered && self.unregister() != 0 {
            let pages = core::mem::replace(&mut self.pages, Pages::alloc(1));
            core::mem::forget(pages);
        }
    }
}
