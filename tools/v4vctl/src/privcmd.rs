//! The V4V hypercall from Linux userspace: `IOCTL_PRIVCMD_HYPERCALL` on the
//! privcmd device. The only `unsafe` of the tool is here.
//!
//! How Linux answers (drivers/xen/privcmd.c): `privcmd_ioctl_hypercall`
//! copies the request in, calls `privcmd_call(op, arg[0..5])` and returns its
//! `long` result as the ioctl's return. The syscall layer turns a return in
//! -4095..-1 into `-1` with `errno` = the positive value, so a Xen error
//! `-EPERM` arrives as `ioctl() == -1, errno == EPERM` (Xen and Linux share
//! the x86 errno numbers). A success arrives as the value itself, truncated
//! to `int` by the C prototype. Both shapes are handled: `-1` with `errno`
//! set, and any other negative value taken as `-errno` directly.
//!
//! privcmd moves `arg[0..5]` into rdi, rsi, rdx, r10 and r8 and leaves r9
//! alone, so the V4V op gets `cmd = arg[0]` and arg1..arg4 = `arg[1..5]`;
//! the V4V arg5 (send's protocol, read by Xen from the guest's r9) cannot be
//! passed and is whatever the kernel had in r9.
//!
//! Buffers are ordinary memory, not mlocked: the runner writes every byte
//! of them just before the call, so their pages are present and writable
//! when Xen copies (Xen does not fault a page in for a PV guest; it answers
//! -EFAULT). The dom0 initramfs has no swap to take them away meanwhile.
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;

use crate::Hypervisor;

/// `struct privcmd_hypercall` of Linux's `include/uapi/xen/privcmd.h`.
#[repr(C)]
struct PrivcmdHypercall {
    op: u64,
    arg: [u64; 5],
}

const IOC_NONE: u64 = 0;
const IOC_NRSHIFT: u64 = 0;
const IOC_TYPESHIFT: u64 = 8;
const IOC_SIZESHIFT: u64 = 16;
const IOC_DIRSHIFT: u64 = 30;

/// Linux's `_IOC(dir, type, nr, size)` on x86 (asm-generic/ioctl.h).
const fn ioc(dir: u64, ty: u8, nr: u8, size: usize) -> u64 {
    (dir << IOC_DIRSHIFT)
        | ((ty as u64) << IOC_TYPESHIFT)
        | ((nr as u64) << IOC_NRSHIFT)
        | ((size as u64) << IOC_SIZESHIFT)
}

/// `IOCTL_PRIVCMD_HYPERCALL = _IOC(_IOC_NONE, 'P', 0, sizeof(struct
/// privcmd_hypercall))` = (0 << 30) | (48 << 16) | ('P' = 0x50 << 8) | 0.
pub const IOCTL_PRIVCMD_HYPERCALL: u64 =
    ioc(IOC_NONE, b'P', 0, core::mem::size_of::<PrivcmdHypercall>());
const _: () = assert!(core::mem::size_of::<PrivcmdHypercall>() == 48);
const _: () = assert!(IOCTL_PRIVCMD_HYPERCALL == 0x0030_5000);

/// Where privcmd lives: the device node (current kernels, devtmpfs), then
/// the xenfs file (xenfs mounted on /proc/xen).
pub const PATHS: [&str; 2] = ["/dev/xen/privcmd", "/proc/xen/privcmd"];

/// The privcmd device, open.
pub struct Privcmd {
    file: File,
}

impl Privcmd {
    /// Open the first privcmd path that opens; the error names both.
    pub fn open() -> Result<Privcmd, String> {
        let mut errors = Vec::new();
        for p in PATHS {
            match OpenOptions::new().read(true).write(true).open(p) {
                Ok(file) => return Ok(Privcmd { file }),
                Err(e) => errors.push(format!("{p}: {e}")),
            }
        }
        Err(format!(
            "cannot open privcmd ({}); run as root in dom0 with the xen-privcmd \
             module loaded (or xenfs mounted on /proc/xen)",
            errors.join("; ")
        ))
    }
}

/// The hypercall's return from the ioctl's: see the module comment.
fn hypercall_result(ret: i64, errno: Option<i32>) -> i64 {
    match (ret, errno) {
        (-1, Some(e)) if e > 0 => -i64::from(e),
        (r, _) => r,
    }
}

impl Hypervisor for Privcmd {
    /// `a5` is not passed: privcmd has five argument slots and the first is
    /// the V4V `cmd`.
    fn op(&mut self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u64, _a5: u64) -> i64 {
        let mut call = PrivcmdHypercall {
            op: v4v_abi::HYPERVISOR_V4V_OP.into(),
            arg: [cmd.into(), a1, a2, a3, a4],
        };
        // SAFETY: the fd is an open privcmd device owned by `self.file`;
        // the request number matches the argument's type (a pointer to a
        // live, initialised `struct privcmd_hypercall` that the kernel only
        // reads). The pointers inside it are addresses of buffers the caller
        // keeps alive and unmoved for the duration of this call (see the
        // `Hypervisor` trait); the hypervisor checks them as guest addresses
        // and answers -EFAULT for a bad one, it cannot corrupt this process
        // beyond writing the buffers it was given. `as _` adapts the request
        // type to the libc flavour (c_ulong for glibc, c_int for musl); the
        // value fits either.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                IOCTL_PRIVCMD_HYPERCALL as _,
                &mut call as *mut PrivcmdHypercall,
            )
        };
        let errno = (ret == -1)
            .then(|| std::io::Error::last_os_error().raw_os_error())
            .flatten();
        hypercall_result(ret.into(), errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number() {
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x305000);
        assert_eq!(ioc(IOC_NONE, b'P', 2, 24), 0x185002);
    }

    #[test]
    fn results() {
        // -1 with errno: the usual shape of a Xen error through libc.
        assert_eq!(hypercall_result(-1, Some(107)), -107);
        assert_eq!(hypercall_result(-1, Some(1)), -1);
        // a negative value straight from the kernel is already -errno
        assert_eq!(hypercall_result(-22, None), -22);
        // success values, bytes sent
        assert_eq!(hypercall_result(0, None), 0);
        assert_eq!(hypercall_result(4096, None), 4096);
        // -1 without an errno: -EPERM as such
        assert_eq!(hypercall_result(-1, None), -1);
    }

    /// The ioctl path itself, on a file that is not privcmd: the kernel's
    /// ENOTTY comes back as -ENOTTY, the way a Xen errno would.
    #[test]
    fn ioctl_error_comes_back_negative() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        let mut p = Privcmd { file };
        assert_eq!(
            p.op(v4v_abi::op::NOTIFY, 0, 0, 0, 0, 0),
            -i64::from(libc::ENOTTY)
        );
    }

    #[test]
    fn open_error_names_both_paths() {
        // On a build host there is no privcmd (and if there is, fine).
        if let Err(e) = Privcmd::open() {
            assert!(
                e.contains("/dev/xen/privcmd") && e.contains("/proc/xen/privcmd"),
                "{e}"
            );
        }
    }
}
