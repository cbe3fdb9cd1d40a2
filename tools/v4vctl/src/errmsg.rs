//! What each errno of the ABI means for the operation that returned it.
//!
//! The same number means different things for different operations (EPERM
//! from send is a viptables reject, from viptables_add a missing privilege),
//! so the explanation takes the operation into account. The sentences follow
//! the ABI's error table (section 6 of V4V-ABI.md).
use v4v_abi::{errno as e, op, MAX_MSG_SIZE};

/// The symbolic name of an errno (the Linux/Xen x86 numbering).
pub fn errno_name(errno: i64) -> Option<&'static str> {
    Some(match errno {
        e::EPERM => "EPERM",
        e::ENOENT => "ENOENT",
        e::EAGAIN => "EAGAIN",
        e::ENOMEM => "ENOMEM",
        e::EFAULT => "EFAULT",
        e::EINVAL => "EINVAL",
        e::ENOSPC => "ENOSPC",
        e::ENOSYS => "ENOSYS",
        e::ENOBUFS => "ENOBUFS",
        e::ENOTCONN => "ENOTCONN",
        _ => return None,
    })
}

fn is_viptables(cmd: u32) -> bool {
    matches!(
        cmd,
        op::VIPTABLES_ADD | op::VIPTABLES_DEL | op::VIPTABLES_LIST
    )
}

/// A sentence saying what `errno` (positive) means when returned by `cmd`.
pub fn explain(cmd: u32, errno: i64) -> String {
    let send = cmd == op::SEND || cmd == op::SENDV;
    match errno {
        e::ENOSYS => "this hypervisor has no V4V (hypercall 43 unknown) or V4V is disabled \
                      with v4v=0 on the Xen command line"
            .into(),
        e::EPERM if is_viptables(cmd) => {
            "only a privileged domain (dom0) may read or change viptables".into()
        }
        e::EPERM if send => "the viptables reject this message (a REJECT rule matches \
                             dom0 and the source port, and the destination)"
            .into(),
        e::EPERM => "operation not permitted for this domain".into(),
        e::ENOTCONN => "no such destination domain or ring, or no ring at that address \
                        accepts messages from dom0 (its partner is another domain)"
            .into(),
        e::ENOENT if cmd == op::VIPTABLES_DEL => "no such rule (no rule at that position, \
                                                 or no rule equal to the one given; \
                                                 see 'v4vctl viptables list')"
            .into(),
        e::ENOENT => "no such ring or rule (nothing registered or listed under that name)".into(),
        e::EAGAIN => "the destination ring is full right now; try again once the \
                      receiver has read messages (Xen queued dom0 and raises VIRQ_V4V \
                      in dom0 when the space is there)"
            .into(),
        e::ENOBUFS => "the message can never fit the destination ring (it is larger \
                       than the ring's max_message_size; see 'v4vctl notify DOM:PORT')"
            .into(),
        e::EINVAL if send => format!(
            "invalid request: the message is longer than {MAX_MSG_SIZE} bytes \
             (V4V_MAX_MSG_SIZE), or an address or length was refused"
        ),
        e::EINVAL if cmd == op::NOTIFY => {
            "invalid notify request (bad magic, entry count or padding)".into()
        }
        e::EINVAL if is_viptables(cmd) => "invalid rule or position (accept must be 0 or 1; \
                                           a delete position must be >= 0, or -1 with a rule)"
            .into(),
        e::EINVAL => "invalid argument (bad magic, length, alignment or count)".into(),
        e::EFAULT => "Xen could not read or write this tool's buffers (a bad or unmapped \
                      address in dom0's memory)"
            .into(),
        e::ENOSPC if cmd == op::VIPTABLES_ADD => {
            "the viptables are full (the hypervisor keeps at most 4096 rules)".into()
        }
        e::ENOSPC => "dom0 reached a per-domain limit of V4V (rings or queued waits \
                      for ring space)"
            .into(),
        e::ENOMEM => "the hypervisor is out of memory".into(),
        _ => "an error the V4V ABI does not list (it may come from the privcmd driver \
              rather than from Xen)"
            .into(),
    }
}

/// One line for a failed hypercall: `ENOTCONN (-107): sentence`.
pub fn describe(cmd: u32, errno: i64) -> String {
    match errno_name(errno) {
        Some(name) => format!("{name} (-{errno}): {}", explain(cmd, errno)),
        None => format!("error -{errno}: {}", explain(cmd, errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPS: [u32; 8] = [
        op::REGISTER_RING,
        op::UNREGISTER_RING,
        op::SEND,
        op::NOTIFY,
        op::SENDV,
        op::VIPTABLES_ADD,
        op::VIPTABLES_DEL,
        op::VIPTABLES_LIST,
    ];

    /// Every errno the ABI lists has a name and, for every operation, a
    /// sentence of its own (not the fallback for unknown numbers).
    #[test]
    fn every_abi_errno_is_explained_for_every_op() {
        let fallback = explain(op::SEND, 9999);
        for errno in e::ALL {
            let name = errno_name(errno).expect("named");
            for cmd in OPS {
                let s = describe(cmd, errno);
                assert!(s.starts_with(&format!("{name} (-{errno}): ")), "{s}");
                assert_ne!(explain(cmd, errno), fallback, "{name} for op {cmd}");
                assert!(explain(cmd, errno).len() > 20);
            }
        }
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<_> = e::ALL.iter().map(|&n| errno_name(n).unwrap()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), e::ALL.len());
    }

    #[test]
    fn op_specific_sentences() {
        assert!(explain(op::VIPTABLES_ADD, e::EPERM).contains("only a privileged domain (dom0)"));
        assert!(explain(op::VIPTABLES_LIST, e::EPERM).contains("only a privileged domain"));
        assert!(explain(op::SEND, e::EPERM).contains("viptables reject"));
        assert!(explain(op::SEND, e::ENOTCONN).starts_with("no such destination domain or ring"));
        assert!(explain(op::VIPTABLES_DEL, e::ENOENT).starts_with("no such rule"));
        assert!(explain(op::SEND, e::ENOSYS).contains("hypercall 43 unknown"));
        assert!(explain(op::VIPTABLES_LIST, e::ENOSYS).contains("v4v=0"));
        assert!(explain(op::SEND, e::EAGAIN).contains("full right now"));
        assert!(explain(op::SEND, e::ENOBUFS).contains("can never fit"));
        assert!(explain(op::SEND, e::EINVAL).contains("16777184"));
        assert!(explain(op::VIPTABLES_ADD, e::ENOSPC).contains("4096 rules"));
        assert!(explain(op::NOTIFY, e::ENOSPC).contains("queued waits"));
    }

    #[test]
    fn unknown_errno() {
        assert_eq!(errno_name(25), None);
        let s = describe(op::SEND, 25);
        assert!(s.starts_with("error -25: ") && s.contains("privcmd"), "{s}");
    }
}
