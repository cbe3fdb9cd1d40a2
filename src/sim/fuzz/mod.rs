//! Fuzz target: sequences of hostile operations from several simulated
//! domains, checked after every step.
//!
//! [`run`] decodes its input bytes into operations (register rings of odd
//! and boundary lengths, unregister, send, sendv with arbitrary iovs,
//! notify with arbitrary entries, raw hypercalls with arbitrary arguments,
//! guests scribbling over their ring headers, `rx_ptr`, pfn lists and
//! argument memory, domain destruction, viptables changes from dom0 and
//! from others) and runs them against the engine over a simulated
//! hypervisor. Every pointer argument is sometimes replaced by a bad one
//! (null, unmapped, straddling the end of memory, hypervisor space, a guard
//! page), and a guest may also scribble *during* a hypercall (a racing vCPU:
//! the write happens at the k-th guest access the engine makes).
//!
//! After every hypercall it checks:
//! - the engine did not panic, and the return value is `>= 0` (positive only
//!   for send/sendv) or one of the ABI's errnos;
//! - the return value is one the ABI allows for the arguments as they were in
//!   guest memory (a reference model of rings, waits and viptables predicts
//!   the set of acceptable results; it is strict where the ABI is and loose
//!   where it leaves the order of checks open);
//! - guest memory changed only where the engine may write: bytes the guest
//!   asked it to write back (`copy_to_guest`), and frames pinned for rings;
//!   inside a ring the receiver has not corrupted, only that ring's
//!   `tx_ptr` and the slot of the message being delivered (so guard pages,
//!   pfn lists, unregistered rings and unread messages are never touched);
//! - messages read back from rings whose receiver behaved are exactly the
//!   messages sent, whole, in order, with the sender's real domain;
//! - pins per domain match the rings registered, a register pins exactly the
//!   listed frames, and destroying a domain leaves none of its frames pinned;
//! - a successful send raises VIRQ_V4V in the destination, and notify,
//!   unregister and teardown raise it in the waiters they release.
//!
//! At the end every domain is destroyed and no frame may remain pinned.
//! Set `V4V_FUZZ_TRACE=1` to print every step (to reproduce a finding).
//!
//! The modules, by concern: [`decode`] turns bytes into choices, [`ops`]
//! into guest actions and hypercalls, [`harness`] runs each hypercall
//! through [`predict`] (what the ABI allows, from the [`model`]) and
//! [`checks`] (memory, pins, invariants), over the instrumented hypervisor
//! of [`env`]; [`layout`] is the memory map every domain shares.
mod bytes;
mod checks;
mod decode;
mod env;
mod harness;
mod layout;
mod model;
mod ops;
mod predict;
#[cfg(test)]
mod tests;

pub use env::{FuzzEnv, FuzzFrame};

use decode::Input;
use harness::{Fuzz, Host};
use layout::MAX_OPS;

/// Decode `data` into operations, run them, check everything after each.
pub fn run(data: &[u8]) {
    // The simulated host is kept from run to run, reset to its initial
    // layout (creating one cost more than most runs). A run that panicked
    // took it along: the next run makes a new one.
    std::thread_local! {
        static HOST: core::cell::RefCell<Option<Host>> =
            const { core::cell::RefCell::new(None) };
    }
    let host = HOST.with(|h| h.take()).unwrap_or_else(Host::new);
    let mut f = Fuzz::new(host);
    // Preemption: never, or at every first, second or third check, chosen
    // by the input's length so that the decoding of inputs stays as it
    // was. With it, notify continues in continuations and teardown in
    // steps; the model's predictions must hold all the same.
    f.env.sim.set_preempt_every((data.len() % 4) as u64);
    let mut inp = Input { d: data, i: 0 };
    let mut ops = 0;
    while !inp.done() && ops < MAX_OPS {
        f.step(&mut inp);
        ops += 1;
    }
    let host = f.finish();
    HOST.with(|h| *h.borrow_mut() = Some(host));
}
