//! Errors of V4V operations and their guest-visible errno values.
use crate::abi::errno;
use crate::env::{Fault, PinError};
use alloc::collections::TryReserveError;

/// Why an operation failed. Each maps to exactly one errno of the ABI's
/// error table (`Error::errno`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Unknown command.
    NoSys,
    /// A guest pointer could not be read or written.
    Fault,
    /// Bad magic, length, alignment, pad, frame or count.
    Inval,
    /// `src.domain` lies, a non-privileged viptables op, or viptables reject.
    Perm,
    /// No such destination domain or ring.
    NotConn,
    /// The message can never fit the destination ring.
    NoBufs,
    /// The destination ring is full now.
    Again,
    /// No such ring to unregister, or no such viptables rule.
    NoEnt,
    /// A per-domain limit (rings, pinned pages, waits) is reached.
    NoSpc,
    /// The hypervisor is out of memory.
    NoMem,
}

impl Error {
    /// The negative value the hypercall returns.
    pub const fn errno(self) -> i64 {
        -match self {
            Error::NoSys => errno::ENOSYS,
            Error::Fault => errno::EFAULT,
            Error::Inval => errno::EINVAL,
            Error::Perm => errno::EPERM,
            Error::NotConn => errno::ENOTCONN,
            Error::NoBufs => errno::ENOBUFS,
            Error::Again => errno::EAGAIN,
            Error::NoEnt => errno::ENOENT,
            Error::NoSpc => errno::ENOSPC,
            Error::NoMem => errno::ENOMEM,
        }
    }
}

impl From<Fault> for Error {
    fn from(_: Fault) -> Self {
        Error::Fault
    }
}

impl From<TryReserveError> for Error {
    fn from(_: TryReserveError) -> Self {
        Error::NoMem
    }
}

impl From<PinError> for Error {
    fn from(e: PinError) -> Self {
        match e {
            PinError::Invalid => Error::Inval,
            PinError::NoMem => Error::NoMem,
        }
    }
}

pub type Result<T> = core::result::Result<T, Error>;
