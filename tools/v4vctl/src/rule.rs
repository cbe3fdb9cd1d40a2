//! Addresses (`DOM:PORT`) and viptables rules: parsing from the command line
//! and printing for `viptables list`.
//!
//! The numbers and wildcards are the ABI's (`v4v_abi`), so what the tool
//! prints is exactly what the hypervisor holds: `*` on input is stored as
//! `V4V_DOMID_ANY` / port `0xffffffff`, and on output both domain wildcards
//! the hypervisor honours (`0x7fff` and `0x7ff4`) print as `*`.
use core::fmt;

use v4v_abi::{Addr, ViptablesRule, DOMID_ANY, DOMID_WILDCARD, PORT_ANY};

/// Largest domain number accepted on the command line: `V4V_DOMID_ANY`
/// itself. Xen's other special ids (0x7ff0..0x7ffe) are allowed so that a
/// rule holding one can still be named by value.
pub const MAX_DOMAIN: u16 = DOMID_ANY;

/// A domain and a port, as in `v4v_addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub domain: u16,
    pub port: u32,
}

impl Endpoint {
    /// `*:*`, the default source and destination of a rule.
    pub const ANY: Endpoint = Endpoint {
        domain: DOMID_ANY,
        port: PORT_ANY,
    };

    pub fn to_abi(self) -> Addr {
        Addr {
            port: self.port,
            domain: self.domain,
        }
    }

    pub fn from_abi(a: Addr) -> Endpoint {
        Endpoint {
            domain: a.domain,
            port: a.port,
        }
    }
}

/// Prints a rule's side: wildcards as `*`, the way `list` shows them.
pub struct RuleSide(pub Endpoint);

impl fmt::Display for RuleSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Endpoint { domain, port } = self.0;
        let s = match (
            domain == DOMID_ANY || domain == DOMID_WILDCARD,
            port == PORT_ANY,
        ) {
            (true, true) => "*:*".to_string(),
            (true, false) => format!("*:{port}"),
            (false, true) => format!("{domain}:*"),
            (false, false) => format!("{domain}:{port}"),
        };
        // `pad` so that table columns can use width specifiers.
        f.pad(&s)
    }
}

/// Prints a concrete address (send and notify targets): numbers only.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}:{}", self.domain, self.port))
    }
}

/// One viptables rule as the tool handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub src: Endpoint,
    pub dst: Endpoint,
    /// The raw `accept` field: 1 accept, 0 reject. Kept raw so that a value
    /// the ABI does not define still prints as what it is.
    pub accept: u32,
}

impl Rule {
    pub fn to_abi(self) -> ViptablesRule {
        ViptablesRule {
            src: self.src.to_abi(),
            dst: self.dst.to_abi(),
            accept: self.accept,
        }
    }

    pub fn from_abi(r: &ViptablesRule) -> Rule {
        let (src, dst, accept) = (r.src, r.dst, r.accept);
        Rule {
            src: Endpoint::from_abi(src),
            dst: Endpoint::from_abi(dst),
            accept,
        }
    }

    /// `ACCEPT`, `REJECT`, or the raw value if it is neither.
    pub fn target(&self) -> String {
        match self.accept {
            1 => "ACCEPT".to_string(),
            0 => "REJECT".to_string(),
            n => format!("accept={n}"),
        }
    }
}

/// Parse an unsigned number: decimal digits, or `0x` followed by hex digits.
/// Nothing else (no sign, no spaces), so that a typo is an error rather
/// than a different number.
pub fn parse_number(s: &str, max: u64) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|&n| n <= max)
}

fn parse_domain(s: &str, wildcard: bool) -> Result<u16, String> {
    if s == "*" {
        return if wildcard {
            Ok(DOMID_ANY)
        } else {
            Err("the domain must be a number here, not '*'".to_string())
        };
    }
    parse_number(s, MAX_DOMAIN.into())
        .map(|n| n as u16)
        .ok_or_else(|| {
            format!(
                "bad domain '{s}': expected a domain id 0..{MAX_DOMAIN}{}",
                if wildcard { " or '*'" } else { "" }
            )
        })
}

fn parse_port(s: &str, wildcard: bool) -> Result<u32, String> {
    if s == "*" {
        return if wildcard {
            Ok(PORT_ANY)
        } else {
            Err("the port must be a number here, not '*'".to_string())
        };
    }
    parse_number(s, u32::MAX.into())
        .map(|n| n as u32)
        .ok_or_else(|| {
            format!(
                "bad port '{s}': expected a number 0..{}{}",
                u32::MAX,
                if wildcard { " or '*'" } else { "" }
            )
        })
}

/// A rule side: `DOM:PORT`, `DOM` (meaning `DOM:*`), with `*` for either.
pub fn parse_rule_side(s: &str) -> Result<Endpoint, String> {
    let (dom, port) = match s.split_once(':') {
        Some((d, p)) => (d, Some(p)),
        None => (s, None),
    };
    if dom.is_empty() {
        return Err(format!("'{s}': expected DOM:PORT, DOM or '*'"));
    }
    let domain = parse_domain(dom, true)?;
    let port = match port {
        None => PORT_ANY,
        Some(p) => parse_port(p, true)?,
    };
    Ok(Endpoint { domain, port })
}

/// A concrete target (send, notify): `DOM:PORT`, both numbers.
pub fn parse_target(s: &str) -> Result<Endpoint, String> {
    let Some((dom, port)) = s.split_once(':') else {
        return Err(format!("'{s}': expected DOM:PORT (for example 1:5000)"));
    };
    Ok(Endpoint {
        domain: parse_domain(dom, false)?,
        port: parse_port(port, false)?,
    })
}

/// `ACCEPT` or `REJECT` (any case) to the ABI's `accept` value.
pub fn parse_target_name(s: &str) -> Result<u32, String> {
    if s.eq_ignore_ascii_case("ACCEPT") {
        Ok(1)
    } else if s.eq_ignore_ascii_case("REJECT") {
        Ok(0)
    } else {
        Err(format!("bad target '{s}': expected ACCEPT or REJECT"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(domain: u16, port: u32) -> Endpoint {
        Endpoint { domain, port }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0", 10), Some(0));
        assert_eq!(parse_number("10", 10), Some(10));
        assert_eq!(parse_number("11", 10), None);
        assert_eq!(parse_number("0x7fff", 0x7fff), Some(0x7fff));
        assert_eq!(parse_number("0XfF", 255), Some(255));
        assert_eq!(
            parse_number("4294967295", u32::MAX.into()),
            Some(0xffff_ffff)
        );
        assert_eq!(parse_number("4294967296", u32::MAX.into()), None);
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "0x",
            "1e3",
            "0b1",
            "１",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_number(bad, u64::MAX), None, "{bad:?}");
        }
    }

    #[test]
    fn rule_sides() {
        assert_eq!(parse_rule_side("*:*"), Ok(Endpoint::ANY));
        assert_eq!(parse_rule_side("*"), Ok(Endpoint::ANY));
        assert_eq!(parse_rule_side("3"), Ok(ep(3, PORT_ANY)));
        assert_eq!(parse_rule_side("3:*"), Ok(ep(3, PORT_ANY)));
        assert_eq!(parse_rule_side("*:80"), Ok(ep(DOMID_ANY, 80)));
        assert_eq!(parse_rule_side("0:5000"), Ok(ep(0, 5000)));
        assert_eq!(parse_rule_side("32767:0x10"), Ok(ep(0x7fff, 16)));
        assert_eq!(parse_rule_side("32756"), Ok(ep(DOMID_WILDCARD, PORT_ANY)));
        let e = parse_rule_side("32768").unwrap_err();
        assert!(
            e.contains("bad domain '32768'") && e.contains("0..32767 or '*'"),
            "{e}"
        );
        let e = parse_rule_side("1:4294967296").unwrap_err();
        assert!(e.contains("bad port '4294967296'"), "{e}");
        assert!(parse_rule_side("")
            .unwrap_err()
            .contains("expected DOM:PORT"));
        assert!(parse_rule_side(":5")
            .unwrap_err()
            .contains("expected DOM:PORT"));
        assert!(parse_rule_side("1:").unwrap_err().contains("bad port ''"));
        assert!(parse_rule_side("1:2:3")
            .unwrap_err()
            .contains("bad port '2:3'"));
        assert!(parse_rule_side("dom1")
            .unwrap_err()
            .contains("bad domain 'dom1'"));
        assert!(parse_rule_side("-1")
            .unwrap_err()
            .contains("bad domain '-1'"));
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target("1:5000"), Ok(ep(1, 5000)));
        assert_eq!(parse_target("0x1:0x10"), Ok(ep(1, 16)));
        assert_eq!(parse_target("0:4294967295"), Ok(ep(0, u32::MAX)));
        assert!(parse_target("1").unwrap_err().contains("expected DOM:PORT"));
        assert!(parse_target("*:5").unwrap_err().contains("not '*'"));
        assert!(parse_target("1:*").unwrap_err().contains("not '*'"));
        let e = parse_target("1:x").unwrap_err();
        assert!(e.contains("bad port 'x'") && !e.contains("or '*'"), "{e}");
        assert!(parse_target("40000:1")
            .unwrap_err()
            .contains("bad domain '40000'"));
    }

    #[test]
    fn target_names() {
        assert_eq!(parse_target_name("ACCEPT"), Ok(1));
        assert_eq!(parse_target_name("accept"), Ok(1));
        assert_eq!(parse_target_name("REJECT"), Ok(0));
        assert_eq!(parse_target_name("Reject"), Ok(0));
        assert!(parse_target_name("DROP")
            .unwrap_err()
            .contains("expected ACCEPT or REJECT"));
        assert!(parse_target_name("").is_err());
    }

    #[test]
    fn printing() {
        assert_eq!(RuleSide(Endpoint::ANY).to_string(), "*:*");
        assert_eq!(RuleSide(ep(DOMID_WILDCARD, PORT_ANY)).to_string(), "*:*");
        assert_eq!(RuleSide(ep(DOMID_WILDCARD, 7)).to_string(), "*:7");
        assert_eq!(RuleSide(ep(DOMID_ANY, 7)).to_string(), "*:7");
        assert_eq!(RuleSide(ep(2, PORT_ANY)).to_string(), "2:*");
        assert_eq!(RuleSide(ep(0, 5000)).to_string(), "0:5000");
        assert_eq!(format!("{:<8}|", RuleSide(ep(1, 2))), "1:2     |");
        assert_eq!(ep(1, u32::MAX).to_string(), "1:4294967295");
        let r = Rule {
            src: Endpoint::ANY,
            dst: ep(1, 2),
            accept: 1,
        };
        assert_eq!(r.target(), "ACCEPT");
        assert_eq!(Rule { accept: 0, ..r }.target(), "REJECT");
        assert_eq!(Rule { accept: 7, ..r }.target(), "accept=7");
        assert_eq!(Rule::from_abi(&r.to_abi()), r);
    }
}
