//! viptables: the host-wide, ordered list of accept/reject rules that every
//! message (and every notify lookup) is checked against.
//!
//! Only privileged domains change it; senders on every CPU read it. It has a
//! lock of its own (a reader-writer lock, so senders do not serialise on it)
//! that is never held while another V4V lock is taken (see the lock order in
//! `engine`).
use crate::abi::{Addr, ViptablesRule, DOMID_ANY, DOMID_WILDCARD, PORT_ANY};
use crate::env::DomId;
use crate::error::{Error, Result};
use alloc::vec::Vec;

/// Most rules the table holds; a privileged domain adding more gets -ENOSPC.
pub const MAX_RULES: usize = 4096;

/// One validated rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub src: Addr,
    pub dst: Addr,
    pub accept: bool,
}

impl Rule {
    /// Validate a rule read from guest memory (`accept` must be 0 or 1).
    pub fn from_abi(r: &ViptablesRule) -> Result<Rule> {
        let accept = r.accept;
        let accept = match accept {
            0 => false,
            1 => true,
            _ => return Err(Error::Inval),
        };
        Ok(Rule {
            src: r.src,
            dst: r.dst,
            accept,
        })
    }

    pub fn to_abi(self) -> ViptablesRule {
        ViptablesRule {
            src: self.src,
            dst: self.dst,
            accept: self.accept as u32,
        }
    }

    fn matches(&self, src: Addr, dst: Addr) -> bool {
        addr_matches(self.src, src) && addr_matches(self.dst, dst)
    }
}

fn domain_matches(pattern: DomId, dom: DomId) -> bool {
    pattern == dom || pattern == DOMID_ANY || pattern == DOMID_WILDCARD
}

fn addr_matches(pattern: Addr, a: Addr) -> bool {
    domain_matches(pattern.domain, a.domain) && (pattern.port == a.port || pattern.port == PORT_ANY)
}

/// The rule list.
#[derive(Default)]
pub struct Viptables {
    rules: Vec<Rule>,
}

impl Viptables {
    pub const fn new() -> Self {
        Viptables { rules: Vec::new() }
    }

    /// Whether a message from `src` (the sender's real domain) to `dst` may
    /// pass: the first matching rule decides; no match accepts.
    pub fn allows(&self, src: Addr, dst: Addr) -> bool {
        self.rules
            .iter()
            .find(|r| r.matches(src, dst))
            .is_none_or(|r| r.accept)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Insert at `position`; past the end appends.
    pub fn add(&mut self, rule: Rule, position: u32) -> Result<()> {
        if self.rules.len() >= MAX_RULES {
            return Err(Error::NoSpc);
        }
        self.rules.try_reserve(1)?;
        let at = (position as usize).min(self.rules.len());
        self.rules.insert(at, rule);
        Ok(())
    }

    /// Remove the rule at `position`.
    pub fn del_at(&mut self, position: usize) -> Result<()> {
        if position >= self.rules.len() {
            return Err(Error::NoEnt);
        }
        self.rules.remove(position);
        Ok(())
    }

    /// Remove the first rule equal to `rule`.
    pub fn del_rule(&mut self, rule: &Rule) -> Result<()> {
        let i = self
            .rules
            .iter()
            .position(|r| r == rule)
            .ok_or(Error::NoEnt)?;
        self.rules.remove(i);
        Ok(())
    }

    /// Remove every rule.
    pub fn flush(&mut self) {
        self.rules.clear();
    }

    /// Up to `out.len()` rules starting at index `start`; returns how many.
    pub fn list(&self, start: usize, out: &mut [ViptablesRule]) -> usize {
        let src = self.rules.get(start..).unwrap_or(&[]);
        let n = src.len().min(out.len());
        for (o, r) in out.iter_mut().zip(&src[..n]) {
            *o = r.to_abi();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(domain: DomId, port: u32) -> Addr {
        Addr { port, domain }
    }

    fn rule(src: Addr, dst: Addr, accept: bool) -> Rule {
        Rule { src, dst, accept }
    }

    #[test]
    fn empty_accepts() {
        assert!(Viptables::new().allows(a(1, 1), a(2, 2)));
    }

    #[test]
    fn first_match_decides_and_wildcards_match() {
        let mut t = Viptables::new();
        t.add(rule(a(1, PORT_ANY), a(DOMID_ANY, 80), false), 0)
            .unwrap();
        t.add(
            rule(a(DOMID_WILDCARD, PORT_ANY), a(DOMID_ANY, PORT_ANY), true),
            99,
        )
        .unwrap();
        assert!(!t.allows(a(1, 5), a(2, 80)));
        assert!(!t.allows(a(1, 6), a(3, 80)));
        assert!(t.allows(a(1, 5), a(2, 81)));
        assert!(t.allows(a(4, 5), a(2, 80)));
        // an accept rule in front overrides the reject
        t.add(rule(a(1, 5), a(2, 80), true), 0).unwrap();
        assert!(t.allows(a(1, 5), a(2, 80)));
        assert!(!t.allows(a(1, 6), a(2, 80)));
    }

    #[test]
    fn add_del_list() {
        let mut t = Viptables::new();
        let r: Vec<Rule> = (0..10)
            .map(|i| rule(a(i, i as u32), a(0, 0), i % 2 == 0))
            .collect();
        for x in &r {
            t.add(*x, u32::MAX).unwrap();
        }
        let mut out = [ViptablesRule::default(); 8];
        assert_eq!(t.list(0, &mut out), 8);
        assert_eq!(out[3], r[3].to_abi());
        assert_eq!(t.list(8, &mut out), 2);
        assert_eq!(out[1], r[9].to_abi());
        assert_eq!(t.list(10, &mut out), 0);
        assert_eq!(t.list(usize::MAX, &mut out), 0);
        assert_eq!(t.del_at(10), Err(Error::NoEnt));
        t.del_at(0).unwrap();
        assert_eq!(t.del_rule(&r[0]), Err(Error::NoEnt));
        t.del_rule(&r[5]).unwrap();
        assert_eq!(t.len(), 8);
        t.flush();
        assert!(t.is_empty());
    }

    #[test]
    fn accept_field_validated() {
        let mut r = rule(a(1, 1), a(2, 2), true).to_abi();
        assert!(Rule::from_abi(&r).unwrap().accept);
        r.accept = 2;
        assert_eq!(Rule::from_abi(&r), Err(Error::Inval));
    }

    #[test]
    fn table_is_bounded() {
        let mut t = Viptables::new();
        for _ in 0..MAX_RULES {
            t.add(rule(a(1, 1), a(2, 2), true), 0).unwrap();
        }
        assert_eq!(t.add(rule(a(1, 1), a(2, 2), true), 0), Err(Error::NoSpc));
    }
}
