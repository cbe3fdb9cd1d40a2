//! Tests only a PVH guest can make; their names start with `pvh_` and the
//! runner leaves them out of a PV boot's plan.

use super::{tests, Ctx, Test, TestResult, ENOSYS};
use crate::v4v;
use crate::xen::{hypercall, nr};
use crate::{ensure_eq, ensure_rc};

pub static TESTS: &[Test] = tests![pvh_compat_mode_caller_enosys];

/// A 32-bit caller (compatibility mode, so Xen's HVM dispatcher uses its
/// 32-bit table) gets -ENOSYS from V4V: the engine serves 64-bit guests
/// only (ABI). The same call from 64-bit mode succeeds, and a hypercall
/// the 32-bit table has answers alike from both modes, so the -ENOSYS is
/// V4V's absence there, not a broken trampoline.
fn pvh_compat_mode_caller_enosys(_ctx: &mut Ctx) -> TestResult {
    // SAFETY: XENVER_version takes no buffer.
    let v64 = unsafe { hypercall::hypercall2(nr::XEN_VERSION, 0, 0) };
    let v32 = crate::pvh::hypercall32(nr::XEN_VERSION, 0).ok_or("no 32-bit call possible")?;
    ensure_eq!(v32, v64, "XENVER_version from 32-bit mode");
    // SAFETY: notify with no ring data reads nothing.
    let rc = unsafe { v4v::raw_op(v4v_abi::op::NOTIFY, 0, 0, 0, 0, 0) };
    ensure_rc!(rc, 0, "notify(NULL) from 64-bit mode");
    let rc = crate::pvh::hypercall32(v4v_abi::HYPERVISOR_V4V_OP, v4v_abi::op::NOTIFY)
        .ok_or("no 32-bit call possible")?;
    ensure_rc!(rc, ENOSYS, "notify(NULL) from 32-bit mode");
    Ok(())
}
