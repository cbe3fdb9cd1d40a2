//! `make bench`: V4V against Argo, in one boot of one hypervisor.
//!
//! Two domUs, started by dom0 (`dom0/bench`): `bench role=rx peer=TX` owns
//! the rings under test and drains them; `bench role=tx peer=RX` drives
//! every workload and prints the figures. Both register the same rings
//! with both transports at start, and every workload alternates between
//! them (which goes first flips each repetition), so a slow patch of the
//! host weighs on both alike.
//!
//! The two pace each other with short tags over a V4V control ring
//! ([`crate::scenario::Node`]), only between measurements.
//!
//! Figures go out as `V4VB METRIC TRANSPORT SIZE REP VALUE` lines, which
//! `tests/bench.py` turns into the table, the CSV and the plot; progress as
//! `V4VD progress ...`. Xen system time (global, the same clock in both
//! domains) times everything.

mod channel;
mod rx;
mod tx;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use v4v_abi::VIRQ_V4V;

use crate::cmdline::CmdLine;
use crate::println;
use crate::scenario::{self, Cast, Node};
use crate::xen::{event, time};

pub use channel::Channel;

/// Payload sizes of every per-size workload.
pub const SIZES: [usize; 7] = [16, 64, 256, 1024, 4096, 16384, 65536];

/// Knobs from the command line (`reps= ms= pings= sends=`).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Repetitions of every figure (the report takes the median).
    pub reps: u32,
    /// Length of one streaming run, per size and transport.
    pub stream_ms: u64,
    /// Round trips per ping-pong run.
    pub pings: u32,
    /// Sends timed per one-way run.
    pub sends: u32,
}

impl Params {
    fn parse(cmd: &CmdLine) -> Params {
        let num = |k: &str, d: u64, max: u64| -> u64 {
            cmd.get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(d, |v| v.clamp(1, max))
        };
        Params {
            reps: num("reps", 5, 100) as u32,
            stream_ms: num("ms", 200, 10_000),
            pings: num("pings", 200, 100_000) as u32,
            sends: num("sends", 256, 100_000) as u32,
        }
    }
}

/// How long one side waits for the other (or for a message) before it
/// calls the run failed.
pub const PATIENCE_MS: u64 = 30_000;

/// Waits for the next message on our ring at `port` of `ch`, sleeping on
/// the transport's VIRQ; its kind.
pub fn wait_message(ch: &mut dyn Channel, port: u32, buf: &mut Vec<u8>) -> Result<u32, String> {
    let deadline = time::deadline_ms(PATIENCE_MS);
    loop {
        if let Some(k) = ch.recv(port, buf)? {
            return Ok(k);
        }
        if !scenario::wait_virq(ch.virq(), deadline) {
            return Err(format!(
                "{}: no message on port {port} within {PATIENCE_MS} ms",
                ch.name()
            ));
        }
    }
}

/// Prints one figure.
pub fn figure(metric: &str, transport: &str, size: usize, rep: u32, value: u64) {
    println!("V4VB {metric} {transport} {size} {rep} {value}");
}

/// The mode entry (`bench role=tx|rx peer=ID`).
pub fn run(cmd: &CmdLine) {
    let role = cmd.get("role").unwrap_or("");
    let params = Params::parse(cmd);
    let name = format!("bench-{role}");
    let r = setup(cmd, role).and_then(|(node, v4v_virq, argo_virq, peer)| match role {
        "tx" => tx::run(node, peer, v4v_virq, argo_virq, params),
        "rx" => rx::run(node, peer, v4v_virq, argo_virq),
        other => Err(format!("unknown role '{other}'")),
    });
    scenario::report(&name, r);
}

fn setup(cmd: &CmdLine, role: &str) -> Result<(Node, u32, u32, u16), String> {
    let peer: u16 = cmd
        .get("peer")
        .and_then(|v| v.parse().ok())
        .ok_or("no 'peer=' domain id on the command line")?;
    let v4v_virq = event::bind_virq(VIRQ_V4V, 0).map_err(|rc| format!("binding VIRQ_V4V: {rc}"))?;
    let argo_virq = event::bind_virq(crate::argo::VIRQ_ARGO, 0)
        .map_err(|rc| format!("binding VIRQ_ARGO: {rc}"))?;
    // The control channel only needs the peer's id.
    let cast = Cast {
        a: peer,
        b: peer,
        ..Cast::default()
    };
    let node = Node::new(role, cast, v4v_virq)?;
    println!(
        "bench: role {role} in domain {}, peer {peer}, VIRQ ports v4v {v4v_virq} argo {argo_virq}",
        node.me
    );
    Ok((node, v4v_virq, argo_virq, peer))
}

/// The `pct` percentile of `v` (sorted in place; nearest rank); 0 for
/// none.
pub fn percentile(v: &mut [u64], pct: usize) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = (v.len() * pct).div_ceil(100).saturating_sub(1);
    v[i.min(v.len() - 1)]
}
