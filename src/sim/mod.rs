//! Simulated hypervisor for host tests (being written).
