//! Little-endian fields of ABI structures in guest memory bytes.
//!
//! The model reads guest memory as the engine should (through its shadow
//! copy, field by field at ABI offsets) instead of through the ABI crate's
//! structures, so that a layout mistake shared by the engine and the ABI
//! crate still shows up as a disagreement.
use crate::abi::Addr;

pub(super) fn e(x: i64) -> i64 {
    -x
}

pub(super) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(super) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub(super) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub(super) fn addr_at(b: &[u8], at: usize) -> Addr {
    Addr {
        port: le32(b, at),
        domain: le16(b, at + 4),
    }
}

pub(super) fn addr_bytes(a: Addr) -> [u8; 6] {
    let mut b = [0; 6];
    b[..4].copy_from_slice(&{ a.port }.to_le_bytes());
    b[4..].copy_from_slice(&{ a.domain }.to_le_bytes());
    b
}
