//! Host tests of the engine against the simulated hypervisor.
mod concurrency;
mod hostile;
mod model;
mod ops;
mod preempt;
mod xsm;
