//! The control channel between scenario domains: every domain registers a
//! ring on [`port::CTRL`] that accepts any sender, and phases are paced by
//! short text tags sent to it ("ready", "flow-go", "vip-done 12"). Xen
//! stamps each message with the sender's real domain id, so a tag's origin
//! cannot be forged by another domU.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use v4v_abi::{errno, Addr, DOMID_ANY};

use super::{poll_until, port, Cast};
use crate::v4v::{self, Ring};
use crate::xen::{sched, time};

/// Protocol number of control messages (any value works; this one makes
/// them easy to tell apart from test traffic in a ring dump).
pub const PROTO_CTRL: u32 = 0x6374_726c;
const CTRL_LEN: u32 = 64 * 1024;
/// How long a domain waits for a peer's tag before giving up.
pub const DEFAULT_WAIT_MS: u64 = 180_000;

/// One scenario domain: its id, its VIRQ_V4V port, its control ring and
/// the tags that arrived before anyone asked for them.
pub struct Node {
    pub me: u16,
    pub virq: u32,
    pub cast: Cast,
    ctrl: Ring,
    backlog: Vec<(u16, String)>,
}

impl Node {
    /// Registers the control ring (which also tells us our domain id).
    pub fn new(_role: &str, cast: Cast, virq: u32) -> Result<Node, String> {
        let mut ctrl = Ring::new(port::CTRL, DOMID_ANY, CTRL_LEN);
        let rc = ctrl.register();
        super::check_rc(rc, 0, "registering the control ring")?;
        Ok(Node {
            me: ctrl.addr().domain,
            virq,
            cast,
            ctrl,
            backlog: Vec::new(),
        })
    }

    /// Our address at `port`.
    pub fn addr(&self, port: u32) -> Addr {
        Addr {
            port,
            domain: self.me,
        }
    }

    /// Sends `tag` to `dom`'s control ring, retrying while the ring does
    /// not exist yet or is full (up to [`DEFAULT_WAIT_MS`]).
    pub fn tell(&mut self, dom: u16, tag: &str) -> Result<(), String> {
        self.tell_within(dom, tag, DEFAULT_WAIT_MS)
    }

    /// [`Node::tell`], retrying for up to `ms`.
    pub fn tell_within(&mut self, dom: u16, tag: &str, ms: u64) -> Result<(), String> {
        let src = self.addr(port::CTRL);
        let dst = Addr {
            port: port::CTRL,
            domain: dom,
        };
        let deadline = time::deadline_ms(ms);
        loop {
            let rc = v4v::send(&src, &dst, tag.as_bytes(), PROTO_CTRL);
            if rc == tag.len() as i64 {
                return Ok(());
            }
            if rc != -errno::ENOTCONN && rc != -errno::EAGAIN {
                return Err(format!(
                    "telling dom{dom} '{tag}': {}",
                    crate::tests::rc_name(rc)
                ));
            }
            if time::passed(deadline) {
                return Err(format!("dom{dom} never took '{tag}'"));
            }
            // Meanwhile keep our own control ring drained.
            self.drain();
            sched::poll(&[self.virq], time::deadline_ms(20));
        }
    }

    /// Moves every message of the control ring into the backlog.
    fn drain(&mut self) {
        let mut got = false;
        while let Ok(Some(m)) = self.ctrl.recv() {
            got = true;
            let tag = String::from_utf8_lossy(&m.payload).into_owned();
            self.backlog.push((m.header.source.domain, tag));
        }
        if got {
            v4v::notify_all();
        }
    }

    /// Whether `dom` has sent a tag starting with `prefix`; takes it and
    /// returns the rest of the tag.
    pub fn heard(&mut self, dom: u16, prefix: &str) -> Option<String> {
        self.drain();
        let i = self
            .backlog
            .iter()
            .position(|(d, t)| *d == dom && t.starts_with(prefix))?;
        let (_, tag) = self.backlog.remove(i);
        Some(tag[prefix.len()..].trim().into())
    }

    /// Waits up to `ms` for a tag from `dom` starting with `prefix`.
    pub fn hear_within(&mut self, dom: u16, prefix: &str, ms: u64) -> Result<String, String> {
        poll_until(self.virq, ms, || Ok(self.heard(dom, prefix)))?
            .ok_or_else(|| format!("no '{prefix}' from dom{dom} within {} s", ms / 1000))
    }

    /// [`Node::hear_within`] with the default patience.
    pub fn hear(&mut self, dom: u16, prefix: &str) -> Result<String, String> {
        self.hear_within(dom, prefix, DEFAULT_WAIT_MS)
    }
}
