//! The receiving side: owns the data and ping rings of both transports,
//! and does what the driver's tags ask.
//!
//! While it waits for the next tag it sleeps on both transports' VIRQs,
//! so that a message of either wakes it alike (a sender pays for waking
//! a blocked receiver; it must pay the same under V4V and Argo).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::channel::{kind, Argo, Channel, V4v, DATA, DATA_LEN, PING};
use super::{wait_message, PATIENCE_MS};
use crate::scenario::{self, Node};
use crate::xen::{event, sched, time};

/// How long the receiver waits for the driver's next tag.
const IDLE_MS: u64 = 120_000;

pub fn run(mut node: Node, peer: u16, v4v_virq: u32, argo_virq: u32) -> Result<(), String> {
    node.hear(peer, "hello")?;
    let mut v = V4v::new(node.me, peer, v4v_virq, true)?;
    let mut a = Argo::new(node.me, peer, argo_virq, true)?;
    node.tell(peer, "ready")?;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let tag = next_tag(&mut node, peer, &[v4v_virq, argo_virq])?;
        let words: Vec<&str> = tag.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("bad tag '{tag}'"))
        };
        let ch: &mut dyn Channel = match words.get(1) {
            Some(&"argo") => &mut a,
            _ => &mut v,
        };
        match words.first() {
            Some(&"stream") => {
                let (msgs, t_last, notifies, sleeps) = stream(ch, num(2)? as usize, &mut buf)?;
                node.tell(
                    peer,
                    &format!("streamed {msgs} {t_last} {notifies} {sleeps}"),
                )?;
            }
            Some(&"drain") => {
                let size = num(2)? as usize;
                for _ in 0..num(3)? {
                    let k = wait_message(ch, DATA, &mut buf)?;
                    if k != kind::DATA || buf.len() != size {
                        return Err(format!("{} drain: kind {k:#x}, {} B", ch.name(), buf.len()));
                    }
                }
                ch.notify();
                node.tell(peer, "drained")?;
            }
            Some(&"ping") => {
                let size = num(2)? as usize;
                for _ in 0..num(3)? {
                    let k = wait_message(ch, PING, &mut buf)?;
                    if k != kind::PING || buf.len() != size {
                        return Err(format!("{} ping: kind {k:#x}, {} B", ch.name(), buf.len()));
                    }
                    let rc = ch.send(PING, &buf, kind::PING);
                    if rc != size as i64 {
                        return Err(format!("{} pong of {size} B: {rc}", ch.name()));
                    }
                }
            }
            Some(&"done") => return Ok(()),
            _ => return Err(format!("unknown tag '{tag}'")),
        }
    }
}

/// The next tag from `peer`, sleeping on every port in `ports`.
fn next_tag(node: &mut Node, peer: u16, ports: &[u32]) -> Result<String, String> {
    let deadline = time::deadline_ms(IDLE_MS);
    loop {
        if let Some(tag) = node.heard(peer, "") {
            return Ok(tag);
        }
        if time::passed(deadline) {
            return Err(format!("no word from dom{peer} for {} s", IDLE_MS / 1000));
        }
        let mut pending = false;
        for &p in ports {
            pending |= event::test_and_clear(p);
        }
        if !pending {
            sched::poll(ports, time::deadline_ms(50).min(deadline));
        }
    }
}

/// Drains the data ring until END: checks every sequence number, tells
/// Xen about freed space every quarter ring and whenever the ring runs
/// dry. Returns the count, when the last message arrived, how many
/// notifies it made and how many times it found the ring empty and slept.
fn stream(
    ch: &mut dyn Channel,
    size: usize,
    buf: &mut Vec<u8>,
) -> Result<(u64, u64, u64, u64), String> {
    let name = ch.name();
    let (mut msgs, mut t_last, mut freed) = (0u64, 0u64, 0usize);
    let (mut notifies, mut sleeps) = (0u64, 0u64);
    let mut deadline = time::deadline_ms(PATIENCE_MS);
    loop {
        let mut got = false;
        while let Some(k) = ch.recv(DATA, buf)? {
            got = true;
            let seq = buf
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
            match k {
                kind::DATA => {
                    if buf.len() != size || seq != Some(msgs) {
                        return Err(format!(
                            "{name} stream of {size} B: message {msgs} has {} B, seq {seq:?}",
                            buf.len()
                        ));
                    }
                    msgs += 1;
                    t_last = time::now_ns();
                    freed += 16 + size.next_multiple_of(16);
                    if freed >= DATA_LEN as usize / 4 {
                        ch.notify();
                        notifies += 1;
                        freed = 0;
                    }
                }
                kind::END => {
                    ch.notify();
                    if seq != Some(msgs) {
                        return Err(format!("{name} stream: END says {seq:?}, got {msgs}"));
                    }
                    return Ok((msgs, t_last, notifies, sleeps));
                }
                other => return Err(format!("{name} stream: message kind {other:#x}")),
            }
        }
        if got {
            ch.notify();
            notifies += 1;
            freed = 0;
            deadline = time::deadline_ms(PATIENCE_MS);
        } else {
            sleeps += 1;
            if !scenario::wait_virq(ch.virq(), deadline) {
                return Err(format!("{name} stream: nothing for {PATIENCE_MS} ms"));
            }
        }
    }
}
