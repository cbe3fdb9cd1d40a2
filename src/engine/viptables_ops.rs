//! viptables_add, viptables_del and viptables_list: for the domains XSM lets
//! change them (the dummy module: the control domain, dom0), asked before
//! anything is read.
use super::Engine;
use crate::abi::{ViptablesList, ViptablesRule, VIPTABLES_LIST_SIZE};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::guest::GuestAddr;
use crate::viptables::Rule;

impl<E: Env> Engine<E> {
    pub(super) fn viptables_add(&self, env: &E, rule_p: GuestAddr, position: u32) -> Result<()> {
        if !env.xsm_viptables() {
            return Err(Error::Perm);
        }
        let rule = Rule::from_abi(&rule_p.read::<E, ViptablesRule>(env)?)?;
        self.change_viptables(|t| t.add(rule, position))
    }

    pub(super) fn viptables_del(&self, env: &E, rule_p: GuestAddr, position: i32) -> Result<()> {
        if !env.xsm_viptables() {
            return Err(Error::Perm);
        }
        match position {
            p if p >= 0 => self.change_viptables(|t| t.del_at(p as usize)),
            -1 if rule_p.is_null() => {
                self.change_viptables(|t| t.flush());
                Ok(())
            }
            -1 => {
                let rule = Rule::from_abi(&rule_p.read::<E, ViptablesRule>(env)?)?;
                self.change_viptables(|t| t.del_rule(&rule))
            }
            _ => Err(Error::Inval),
        }
    }

    pub(super) fn viptables_list(&self, env: &E, list_p: GuestAddr) -> Result<()> {
        if !env.xsm_viptables() {
            return Err(Error::Perm);
        }
        let mut list: ViptablesList = list_p.read(env)?;
        let start = list.nb_rules as usize;
        let mut rules = [ViptablesRule::default(); VIPTABLES_LIST_SIZE];
        let n = self.viptables.read().list(start, &mut rules);
        list.rules = rules;
        list.nb_rules = n as u32;
        list_p.write(env, &list)?;
        Ok(())
    }
}
