//! One face for both transports under test: the workloads in
//! [`super::tx`] and [`super::rx`] are written once against [`Channel`],
//! so V4V and Argo run exactly the same code around their hypercalls.
//!
//! Each transport uses its natural single-buffer send (V4V `send`, Argo
//! `sendv` with one iov), receives by copying the message out of the ring
//! into a buffer, and tells Xen about freed space with its own `notify`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use v4v_abi::Addr;

use crate::argo;
use crate::tests::rc_name;
use crate::v4v;

/// The receiver's data ring (streaming and one-way sends).
pub const DATA: u32 = 100;
/// Each side's ping-pong ring.
pub const PING: u32 = 101;
/// Source port of every benchmark message.
pub const SRC: u32 = 7100;
/// Length of the data ring, as the issue asks.
pub const DATA_LEN: u32 = 1024 * 1024;
/// Length of the ping-pong rings: room for one 64 KiB message and its reply.
pub const PING_LEN: u32 = 256 * 1024;

/// Message kinds (V4V protocol / Argo message_type).
pub mod kind {
    pub const DATA: u32 = 0x6461_7461;
    pub const END: u32 = 0x656e_6421;
    pub const PING: u32 = 0x7069_6e67;
}

pub trait Channel {
    /// "v4v" or "argo", as the results name it.
    fn name(&self) -> &'static str;
    /// The event port of the transport's VIRQ.
    fn virq(&self) -> u32;
    /// One message of `buf` to the peer's ring at `port`; the hypercall's
    /// result (the length on success).
    fn send(&mut self, port: u32, buf: &[u8], kind: u32) -> i64;
    /// The next message of our ring at `port`, copied into `buf`: its kind.
    fn recv(&mut self, port: u32, buf: &mut Vec<u8>) -> Result<Option<u32>, String>;
    /// Tells Xen we freed ring space (wakes a sender waiting for it).
    fn notify(&mut self) -> i64;
    /// A call the transport rejects at once (an unknown command).
    fn null_op(&self) -> i64;
}

fn checked(rc: i64, what: &str) -> Result<(), String> {
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("{what}: {}", rc_name(rc)))
    }
}

/// V4V: [`crate::v4v`].
pub struct V4v {
    me: u16,
    peer: u16,
    virq: u32,
    data: Option<v4v::Ring>,
    ping: v4v::Ring,
}

impl V4v {
    /// Registers the ping ring, and the data ring if `with_data` (the
    /// receiver), both taking messages from `peer` only.
    pub fn new(me: u16, peer: u16, virq: u32, with_data: bool) -> Result<V4v, String> {
        let mut ping = v4v::Ring::new(PING, peer, PING_LEN);
        checked(ping.register(), "registering the V4V ping ring")?;
        let data = if with_data {
            let mut r = v4v::Ring::new(DATA, peer, DATA_LEN);
            checked(r.register(), "registering the V4V data ring")?;
            Some(r)
        } else {
            None
        };
        Ok(V4v {
            me,
            peer,
            virq,
            data,
            ping,
        })
    }
}

impl Channel for V4v {
    fn name(&self) -> &'static str {
        "v4v"
    }

    fn virq(&self) -> u32 {
        self.virq
    }

    fn send(&mut self, port: u32, buf: &[u8], kind: u32) -> i64 {
        let src = Addr {
            port: SRC,
            domain: self.me,
        };
        let dst = Addr {
            port,
            domain: self.peer,
        };
        v4v::send(&src, &dst, buf, kind)
    }

    fn recv(&mut self, port: u32, buf: &mut Vec<u8>) -> Result<Option<u32>, String> {
        let ring = match port {
            DATA => self.data.as_mut().ok_or("no V4V data ring here")?,
            _ => &mut self.ping,
        };
        Ok(ring.recv_into(buf)?.map(|h| h.protocol))
    }

    fn notify(&mut self) -> i64 {
        v4v::notify_all()
    }

    fn null_op(&self) -> i64 {
        // SAFETY: no pointer is passed; the command does not exist.
        unsafe { v4v::raw_op(0xffff, 0, 0, 0, 0, 0) }
    }
}

/// Argo: [`crate::argo`].
pub struct Argo {
    me: u16,
    peer: u16,
    virq: u32,
    data: Option<argo::Ring>,
    ping: argo::Ring,
}

impl Argo {
    /// As [`V4v::new`], with Argo rings.
    pub fn new(me: u16, peer: u16, virq: u32, with_data: bool) -> Result<Argo, String> {
        let mut ping = argo::Ring::new(PING, peer, PING_LEN);
        checked(ping.register(), "registering the Argo ping ring")?;
        let data = if with_data {
            let mut r = argo::Ring::new(DATA, peer, DATA_LEN);
            checked(r.register(), "registering the Argo data ring")?;
            Some(r)
        } else {
            None
        };
        Ok(Argo {
            me,
            peer,
            virq,
            data,
            ping,
        })
    }
}

impl Channel for Argo {
    fn name(&self) -> &'static str {
        "argo"
    }

    fn virq(&self) -> u32 {
        self.virq
    }

    fn send(&mut self, port: u32, buf: &[u8], kind: u32) -> i64 {
        let dst = argo::Addr {
            aport: port,
            domain_id: self.peer,
            pad: 0,
        };
        argo::send(SRC, self.me, dst, buf, kind)
    }

    fn recv(&mut self, port: u32, buf: &mut Vec<u8>) -> Result<Option<u32>, String> {
        let ring = match port {
            DATA => self.data.as_mut().ok_or("no Argo data ring here")?,
            _ => &mut self.ping,
        };
        Ok(ring.recv_into(buf)?.map(|(_, t)| t))
    }

    fn notify(&mut self) -> i64 {
        argo::notify()
    }

    fn null_op(&self) -> i64 {
        argo::null_op()
    }
}
