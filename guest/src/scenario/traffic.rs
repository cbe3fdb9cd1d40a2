//! Verified message streams: what a sender puts in message `seq` of
//! stream `id` is a pure function of `(id, seq)`, so the receiver can
//! check every message for loss, duplication, reordering and corruption
//! without any shared state.
//!
//! Message `seq` has [`size_of_msg`] bytes. Messages of 16 bytes or more
//! start with a header `{u32 seq, u32 len, u64 checksum}` (the checksum
//! covers the bytes after the header); all bytes after the header (all of
//! a shorter message) come from a generator seeded with `(id, seq)`. The
//! stream ends with one message of protocol [`PROTO_END`] carrying
//! `{u32 count, u64 bytes}`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use v4v_abi::{errno, roundup, Addr, Iov, PROTO_DGRAM};

use super::{wait_virq, Node};
use crate::tests::rc_name;
use crate::v4v::{self, Ring};
use crate::xen::time;

/// Protocol of a stream's end message.
pub const PROTO_END: u32 = 0x454e_4421;
const HEADER: usize = 16;

/// A 64-bit mixing function (a pure, well-spread hash of `x`).
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Payload size of message `seq`: from 1 byte to 64 KiB, with both ends
/// hit early (seq 0 is 1 byte, seq 1 is 64 KiB) and a spread between.
pub fn size_of_msg(id: u32, seq: u32, max: usize) -> usize {
    let h = mix(((id as u64) << 32) | seq as u64) as usize;
    let n = match seq {
        0 => 1,
        1 => 65536,
        _ => match seq % 4 {
            0 => 1 + h % 64,
            1 => 1 + h % 1024,
            2 => 1 + h % 16384,
            _ => 1 + h % 65536,
        },
    };
    n.min(max)
}

/// Fills `out` with the generator's bytes for `(id, seq)`.
pub fn fill(id: u32, seq: u32, out: &mut [u8]) {
    let mut s = mix(((id as u64) << 32) ^ seq as u64 ^ 0x5eed) | 1;
    let mut chunks = out.chunks_exact_mut(8);
    for c in &mut chunks {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        c.copy_from_slice(&s.to_le_bytes());
    }
    s ^= s << 13;
    let tail = chunks.into_remainder();
    let n = tail.len();
    tail.copy_from_slice(&s.to_le_bytes()[..n]);
}

/// A 64-bit checksum (word-wise multiply-rotate, bytes of the tail
/// folded in one by one).
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ data.len() as u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Builds message `seq` of stream `id` into `buf` (resized); returns it.
pub fn build(id: u32, seq: u32, max: usize, buf: &mut Vec<u8>) -> usize {
    let n = size_of_msg(id, seq, max);
    buf.resize(n, 0);
    if n < HEADER {
        fill(id, seq, buf);
    } else {
        let (h, body) = buf.split_at_mut(HEADER);
        fill(id, seq, body);
        h[0..4].copy_from_slice(&seq.to_le_bytes());
        h[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        h[8..16].copy_from_slice(&checksum(body).to_le_bytes());
    }
    n
}

/// Checks that `got` is message `seq` of stream `id`.
pub fn verify(
    id: u32,
    seq: u32,
    max: usize,
    got: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    let n = size_of_msg(id, seq, max);
    if got.len() < HEADER || n < HEADER {
        build(id, seq, max, scratch);
        if got != scratch.as_slice() {
            return Err(format!(
                "message {seq}: {} bytes differ from the {n} expected (lost, reordered or corrupt)",
                got.len()
            ));
        }
        return Ok(());
    }
    let hseq = u32::from_le_bytes(got[0..4].try_into().unwrap_or_default());
    let hlen = u32::from_le_bytes(got[4..8].try_into().unwrap_or_default());
    let hsum = u64::from_le_bytes(got[8..16].try_into().unwrap_or_default());
    if hseq != seq {
        return Err(format!(
            "expected message {seq}, got {hseq} ({})",
            if hseq < seq {
                "duplicate or reordered"
            } else {
                "loss"
            }
        ));
    }
    if hlen as usize != got.len() || got.len() != n {
        return Err(format!(
            "message {seq}: {} bytes, header says {hlen}, expected {n}",
            got.len()
        ));
    }
    let sum = checksum(&got[HEADER..]);
    if sum != hsum {
        return Err(format!(
            "message {seq}: checksum {sum:#x} != {hsum:#x} (corrupt)"
        ));
    }
    // The checksum proves the body is what the sender summed; the first
    // bytes prove it is what the sender was meant to send.
    let mut first = [0u8; 8];
    let k = (n - HEADER).min(8);
    fill(id, seq, &mut first[..k]);
    if got[HEADER..HEADER + k] != first[..k] {
        return Err(format!("message {seq}: body is not stream {id}'s"));
    }
    Ok(())
}

/// What a sender did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    pub count: u32,
    pub bytes: u64,
    pub eagain: u32,
}

/// How long a stream goes on.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// At least this many payload bytes.
    Bytes(u64),
    /// Exactly this many messages.
    Messages(u32),
}

/// Sends stream `id` from `src` to `dst` until `until` (messages capped
/// at `max` bytes), then the end message. Every third message goes as a
/// three-piece `sendv`. Full ring: wait for VIRQ_V4V (with a short
/// timeout, and retry).
pub fn send_stream(
    virq: u32,
    src: &Addr,
    dst: &Addr,
    id: u32,
    until: Until,
    max: usize,
    ms: u64,
) -> Result<Sent, String> {
    let deadline = time::deadline_ms(ms);
    let mut buf = Vec::new();
    let mut s = Sent::default();
    while match until {
        Until::Bytes(b) => s.bytes < b,
        Until::Messages(m) => s.count < m,
    } {
        let n = build(id, s.count, max, &mut buf);
        send_one(
            virq,
            src,
            dst,
            &buf,
            s.count % 3 == 2,
            deadline,
            &mut s.eagain,
        )
        .map_err(|e| format!("message {}: {e}", s.count))?;
        s.count += 1;
        s.bytes += n as u64;
    }
    let mut end = [0u8; 12];
    end[0..4].copy_from_slice(&s.count.to_le_bytes());
    end[4..12].copy_from_slice(&s.bytes.to_le_bytes());
    send_with_retry(virq, deadline, &mut s.eagain, || {
        v4v::send(src, dst, &end, PROTO_END)
    })
    .map_err(|e| format!("end message: {e}"))?;
    Ok(s)
}

/// Sends one payload (as one buffer or three iovs), waiting out `-EAGAIN`.
pub fn send_one(
    virq: u32,
    src: &Addr,
    dst: &Addr,
    buf: &[u8],
    split: bool,
    deadline: u64,
    eagain: &mut u32,
) -> Result<(), String> {
    let rc = send_with_retry(virq, deadline, eagain, || {
        if split {
            let (a, rest) = buf.split_at(buf.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            let iovs: [Iov; 3] = [v4v::iov(a), v4v::iov(b), v4v::iov(c)];
            v4v::sendv(src, dst, &iovs, PROTO_DGRAM)
        } else {
            v4v::send(src, dst, buf, PROTO_DGRAM)
        }
    })?;
    if rc != buf.len() as i64 {
        return Err(format!("sent {rc} of {} bytes", buf.len()));
    }
    Ok(())
}

pub fn send_with_retry(
    virq: u32,
    deadline: u64,
    eagain: &mut u32,
    mut f: impl FnMut() -> i64,
) -> Result<i64, String> {
    loop {
        let rc = f();
        if rc != -errno::EAGAIN {
            return if rc < 0 { Err(rc_name(rc)) } else { Ok(rc) };
        }
        *eagain += 1;
        if time::passed(deadline) {
            return Err("ring stayed full".into());
        }
        wait_virq(virq, time::deadline_ms(20).min(deadline));
    }
}

/// What a receiver saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Received {
    pub count: u32,
    pub bytes: u64,
    /// How many times the read position went round the ring.
    pub wraps: u32,
}

/// Receives stream `id` from domain `from` on `ring` up to its end
/// message, verifying each message.
pub fn recv_stream(
    node: &Node,
    ring: &mut Ring,
    from: u16,
    id: u32,
    max: usize,
    ms: u64,
) -> Result<Received, String> {
    let deadline = time::deadline_ms(ms);
    let mut r = Received::default();
    let mut scratch = Vec::new();
    let mut payload = Vec::new();
    let len = ring.len();
    loop {
        let mut drained = false;
        loop {
            let before = ring.rx_ptr();
            let Some(h) = ring.recv_into(&mut payload)? else {
                break;
            };
            drained = true;
            let used = (16 + roundup(payload.len() as u64)) as u32;
            if before + used >= len {
                r.wraps += 1;
            }
            let source = h.source;
            if source.domain != from {
                return Err(format!(
                    "message from dom{} on a ring only dom{from} uses",
                    { source.domain }
                ));
            }
            if h.protocol == PROTO_END {
                let count = u32::from_le_bytes(payload[0..4].try_into().unwrap_or_default());
                let bytes = u64::from_le_bytes(payload[4..12].try_into().unwrap_or_default());
                if count != r.count || bytes != r.bytes {
                    return Err(format!(
                        "sender sent {count} messages / {bytes} bytes, received {} / {}",
                        r.count, r.bytes
                    ));
                }
                v4v::notify_all();
                return Ok(r);
            }
            verify(id, r.count, max, &payload, &mut scratch)?;
            r.count += 1;
            r.bytes += payload.len() as u64;
        }
        if drained {
            // Wake a sender queued for the space just freed.
            v4v::notify_all();
        } else {
            if time::passed(deadline) {
                return Err(format!(
                    "stream stalled after {} messages / {} bytes",
                    r.count, r.bytes
                ));
            }
            wait_virq(node.virq, time::deadline_ms(50).min(deadline));
        }
    }
}
