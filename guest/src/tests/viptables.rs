//! viptables: the host-wide ordered rule list. Only dom0 may change or
//! read it; any other domain gets -EPERM. Every test leaves the list empty.

use alloc::vec::Vec;

use v4v_abi::{
    Addr, ViptablesRule, DOMID_ANY, DOMID_WILDCARD, PORT_ANY, PROTO_DGRAM, VIPTABLES_LIST_SIZE,
};

use super::send::expect_message;
use super::{tests, Ctx, Test, TestResult, EFAULT, ENOENT, EPERM, UNMAPPED};
use crate::v4v::{self, RingData};
use crate::{ensure, ensure_eq, ensure_rc};

pub static TESTS: &[Test] = tests![
    viptables_list_empty,
    viptables_add_list_del,
    viptables_list_window,
    viptables_reject_send,
    viptables_first_match_decides,
    viptables_bad_pointers_efault,
];

fn rule(src: Addr, dst: Addr, accept: bool) -> ViptablesRule {
    ViptablesRule {
        src,
        dst,
        accept: accept as u32,
    }
}

fn a(domain: u16, port: u32) -> Addr {
    Addr { port, domain }
}

/// All rules, read in windows of 8.
fn list_all() -> Result<Vec<ViptablesRule>, alloc::string::String> {
    let mut out = Vec::new();
    loop {
        let (rc, list) = v4v::viptables_list(out.len() as u32);
        ensure_rc!(rc, 0, "viptables_list from {}", out.len());
        let n = list.nb_rules as usize;
        ensure!(n <= VIPTABLES_LIST_SIZE, "nb_rules {n} > 8");
        out.extend_from_slice(&list.rules[..n]);
        if n < VIPTABLES_LIST_SIZE {
            return Ok(out);
        }
    }
}

/// Removes every rule; the list may already be empty.
fn clear() {
    let _ = v4v::viptables_del(None, -1);
}

/// For a domU every viptables operation is refused.
fn unprivileged(ctx: &Ctx) -> Option<TestResult> {
    if ctx.dom0 {
        return None;
    }
    let r = rule(a(DOMID_ANY, PORT_ANY), a(DOMID_ANY, PORT_ANY), false);
    Some((|| {
        ensure_rc!(
            v4v::viptables_add(&r, 0),
            EPERM,
            "viptables_add from a domU"
        );
        ensure_rc!(
            v4v::viptables_del(None, -1),
            EPERM,
            "viptables_del from a domU"
        );
        ensure_rc!(
            v4v::viptables_list(0).0,
            EPERM,
            "viptables_list from a domU"
        );
        Ok(())
    })())
}

fn viptables_list_empty(ctx: &mut Ctx) -> TestResult {
    if let Some(r) = unprivileged(ctx) {
        return r;
    }
    let (rc, list) = v4v::viptables_list(0);
    ensure_rc!(rc, 0, "viptables_list");
    let n = list.nb_rules;
    ensure_eq!(n, 0, "nb_rules of the empty list");
    ensure_rc!(
        v4v::viptables_del(None, 0),
        ENOENT,
        "del position 0 of the empty list"
    );
    Ok(())
}

fn viptables_add_list_del(ctx: &mut Ctx) -> TestResult {
    if let Some(r) = unprivileged(ctx) {
        return r;
    }
    let result = (|| {
        let ra = rule(a(1, 10), a(2, 20), true);
        let rb = rule(a(3, 30), a(4, 40), false);
        let rc_ = rule(a(DOMID_WILDCARD, PORT_ANY), a(5, 50), true);
        ensure_rc!(v4v::viptables_add(&ra, 0), 0, "add A at 0");
        ensure_rc!(v4v::viptables_add(&rc_, 100), 0, "add C at 100 (appends)");
        ensure_rc!(v4v::viptables_add(&rb, 1), 0, "add B at 1");
        ensure_eq!(list_all()?, [ra, rb, rc_].to_vec(), "rules after adds");
        let (rc, list) = v4v::viptables_list(1);
        ensure_rc!(rc, 0, "list from 1");
        let n = list.nb_rules;
        ensure_eq!(n, 2, "nb_rules from 1");
        ensure_eq!(list.rules[..2].to_vec(), [rb, rc_].to_vec(), "rules from 1");
        ensure_rc!(v4v::viptables_del(Some(&rb), -1), 0, "del B by value");
        ensure_eq!(list_all()?, [ra, rc_].to_vec(), "rules after del B");
        ensure_rc!(v4v::viptables_del(None, 0), 0, "del position 0");
        ensure_eq!(list_all()?, [rc_].to_vec(), "rules after del 0");
        ensure_rc!(v4v::viptables_del(None, 5), ENOENT, "del position 5");
        ensure_rc!(
            v4v::viptables_del(Some(&ra), -1),
            ENOENT,
            "del A (gone) by value"
        );
        ensure_rc!(v4v::viptables_add(&ra, 0), 0, "add A again");
        ensure_rc!(v4v::viptables_del(None, -1), 0, "del all");
        ensure_eq!(list_all()?.len(), 0, "rules after del all");
        Ok(())
    })();
    clear();
    result
}

fn viptables_list_window(ctx: &mut Ctx) -> TestResult {
    if let Some(r) = unprivileged(ctx) {
        return r;
    }
    let result = (|| {
        let rules: Vec<ViptablesRule> = (0..10u32)
            .map(|i| rule(a(1, 100 + i), a(2, 200 + i), i % 2 == 0))
            .collect();
        for (i, r) in rules.iter().enumerate() {
            ensure_rc!(v4v::viptables_add(r, i as u32), 0, "add rule {i}");
        }
        let (rc, first) = v4v::viptables_list(0);
        ensure_rc!(rc, 0, "list from 0");
        let n = first.nb_rules;
        ensure_eq!(n, 8, "nb_rules from 0");
        ensure_eq!(first.rules.to_vec(), rules[..8].to_vec(), "rules 0..8");
        let (rc, second) = v4v::viptables_list(8);
        ensure_rc!(rc, 0, "list from 8");
        let n = second.nb_rules;
        ensure_eq!(n, 2, "nb_rules from 8");
        ensure_eq!(
            second.rules[..2].to_vec(),
            rules[8..].to_vec(),
            "rules 8..10"
        );
        let (rc, past) = v4v::viptables_list(10);
        ensure_rc!(rc, 0, "list from 10");
        let n = past.nb_rules;
        ensure_eq!(n, 0, "nb_rules from 10");
        Ok(())
    })();
    clear();
    result
}

fn viptables_reject_send(ctx: &mut Ctx) -> TestResult {
    if let Some(r) = unprivileged(ctx) {
        return r;
    }
    let mut ring = ctx.ring(1024)?;
    let me = ctx.domid()?;
    let dst = ring.addr();
    let blocked = ctx.fresh_addr()?;
    let free = ctx.fresh_addr()?;
    let result = (|| {
        ensure_rc!(
            v4v::viptables_add(&rule(blocked, dst, false), 0),
            0,
            "add reject rule"
        );
        ensure_rc!(
            v4v::send(&blocked, &dst, b"no", PROTO_DGRAM),
            EPERM,
            "send from blocked port"
        );
        let iovs = [v4v::iov(b"no")];
        ensure_rc!(
            v4v::sendv(&blocked, &dst, &iovs, PROTO_DGRAM),
            EPERM,
            "sendv from blocked port"
        );
        ensure_rc!(
            v4v::send(&free, &dst, b"yes", PROTO_DGRAM),
            3,
            "send from another port"
        );
        expect_message(&mut ring, &free, me, PROTO_DGRAM, b"yes")?;
        // Wildcards: any port of our domain (written as the 0x7ff4 wildcard).
        let all = rule(a(DOMID_WILDCARD, PORT_ANY), a(me, dst.port), false);
        ensure_rc!(v4v::viptables_add(&all, 0), 0, "add wildcard reject rule");
        ensure_rc!(
            v4v::send(&free, &dst, b"no", PROTO_DGRAM),
            EPERM,
            "send under wildcard reject"
        );
        // A ring we may not send to reads as not existing.
        let mut rd = RingData::new(&[v4v_abi::RingDataEnt {
            ring: dst,
            space_required: 1,
            ..Default::default()
        }]);
        ensure_rc!(rd.notify(), 0, "notify");
        let f = v4v_abi::RingDataFlags::from_bits_retain(rd.ent(0).flags);
        ensure!(
            !f.contains(v4v_abi::RingDataFlags::EXISTS),
            "rejected ring reads as existing ({f:?})"
        );
        ensure_rc!(v4v::viptables_del(None, -1), 0, "del all");
        ensure_rc!(
            v4v::send(&blocked, &dst, b"again", PROTO_DGRAM),
            5,
            "send after del all"
        );
        expect_message(&mut ring, &blocked, me, PROTO_DGRAM, b"again")?;
        Ok(())
    })();
    clear();
    result
}

fn viptables_first_match_decides(ctx: &mut Ctx) -> TestResult {
    if let Some(r) = unprivileged(ctx) {
        return r;
    }
    let mut ring = ctx.ring(1024)?;
    let me = ctx.domid()?;
    let dst = ring.addr();
    let allowed = ctx.fresh_addr()?;
    let other = ctx.fresh_addr()?;
    let result = (|| {
        let accept = rule(allowed, dst, true);
        let reject_all = rule(a(DOMID_ANY, PORT_ANY), a(DOMID_ANY, PORT_ANY), false);
        ensure_rc!(v4v::viptables_add(&accept, 0), 0, "add accept");
        ensure_rc!(
            v4v::viptables_add(&reject_all, 1),
            0,
            "add reject-all after it"
        );
        ensure_rc!(
            v4v::send(&allowed, &dst, b"in", PROTO_DGRAM),
            2,
            "send matching accept"
        );
        expect_message(&mut ring, &allowed, me, PROTO_DGRAM, b"in")?;
        ensure_rc!(
            v4v::send(&other, &dst, b"out", PROTO_DGRAM),
            EPERM,
            "send matching reject-all"
        );
        // Swap the order: reject-all first wins.
        ensure_rc!(v4v::viptables_del(Some(&accept), -1), 0, "del accept");
        ensure_rc!(
            v4v::viptables_add(&accept, 1),
            0,
            "add accept after reject-all"
        );
        ensure_rc!(
            v4v::send(&allowed, &dst, b"in", PROTO_DGRAM),
            EPERM,
            "send under reject-all first"
        );
        Ok(())
    })();
    clear();
    result
}

fn viptables_bad_pointers_efault(ctx: &mut Ctx) -> TestResult {
    if let Some(r) = unprivileged(ctx) {
        return r;
    }
    let result = (|| {
        // SAFETY: invalid pointers on purpose; Xen must only fail.
        let add = unsafe { v4v::raw_op(v4v_abi::op::VIPTABLES_ADD, UNMAPPED, 0, 0, 0, 0) };
        ensure_rc!(add, EFAULT, "add with an unmapped rule");
        // SAFETY: as above.
        let del = unsafe { v4v::raw_op(v4v_abi::op::VIPTABLES_DEL, UNMAPPED, 0, 0, u32::MAX, 0) };
        ensure_rc!(del, EFAULT, "del by an unmapped rule");
        // SAFETY: as above.
        let list = unsafe { v4v::raw_op(v4v_abi::op::VIPTABLES_LIST, UNMAPPED, 0, 0, 0, 0) };
        ensure_rc!(list, EFAULT, "list into unmapped memory");
        ensure_eq!(list_all()?.len(), 0, "rules after the failed calls");
        Ok(())
    })();
    clear();
    result
}
