//! V4V: hypervisor-mediated messaging between Xen domains.
//!
//! This crate is linked into the Xen hypervisor as a static library (target
//! `x86_64-unknown-none`) and reached from guests through hypercall 43. It
//! talks to Xen only through the [`env::Env`] trait, so the same engine runs
//! inside Xen (`xen` module, over the C shim in `xen-patches/`) and in host
//! tests against a simulated hypervisor (`sim` module).
#![no_std]
// On the host the crate links std: tests and the simulation use it, and a
// host staticlib needs std's panic handler. Inside Xen it is `core` + `alloc`.
#[cfg(not(target_os = "none"))]
extern crate std;

extern crate alloc;

pub use v4v_abi as abi;

pub mod copy;
pub mod engine;
pub mod env;
pub mod error;
pub mod guest;
pub mod lock;
pub mod ring;
pub mod shared;
pub mod viptables;

#[cfg(target_os = "none")]
mod xen;

// The simulated hypervisor: for tests, the fuzz target and the benchmarks
// (the `sim` feature, which the dev-dependencies turn on), not the rest.
#[cfg(all(not(target_os = "none"), any(test, feature = "sim")))]
pub mod sim;
