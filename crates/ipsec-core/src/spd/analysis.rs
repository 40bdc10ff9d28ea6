//! Load-time analysis (beyond Solaris): rules that can never match because a higher-priority
//! rule covers all their traffic (shadowed), rules that share traffic with a higher-priority
//! rule of a different action (overlap), rules whose selectors cannot match any packet, and
//! ICMP rules with different IPsec actions (ipsecconf(8): "any action applying IPsec must be
//! the same for all icmp rules").
//!
//! Pairs are only compared when their remote prefixes nest (a nesting forest over remote
//! prefixes, as in the index), within one SPD, address family and direction. Shadowing is
//! detected when one rule covers another; coverage by a union of several rules is not.
//! The work is bounded by [`AnalysisLimits::max_pairs`]; past it the analysis stops and says so.

use core::fmt;
use std::collections::HashMap;
use std::net::IpAddr;

use super::key::Dir;
use super::model::{ulp, Action, Family, Mode, PolicySet, Selector};
use super::priority::Priority;

/// Bounds of the analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnalysisLimits {
    /// Rule pairs compared at most.
    pub max_pairs: u64,
    /// Overlapping rules listed per rule (the rest are counted).
    pub max_listed: usize,
}

impl Default for AnalysisLimits {
    fn default() -> Self {
        Self {
            max_pairs: 20_000_000,
            max_listed: 8,
        }
    }
}

/// A load-time warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The rule never decides anything: for every direction and family it applies to, a
    /// higher-priority rule matches all its packets.
    Shadowed {
        /// The shadowed rule.
        rule: usize,
        /// Rules that cover it (at most `max_listed` of them).
        by: Vec<usize>,
    },
    /// Some of the rule's packets are decided by higher-priority rules with a different action.
    Overlap {
        /// The lower-priority rule.
        rule: usize,
        /// Higher-priority rules with a different action sharing some of its traffic.
        with: Vec<usize>,
        /// Further such rules not listed (at least this many).
        more: usize,
    },
    /// The selectors can never match a packet.
    Unmatchable {
        /// The rule.
        rule: usize,
        /// Why.
        why: &'static str,
    },
    /// An ICMP rule applies IPsec differently from the first ICMP rule that applies IPsec.
    IcmpActionsDiffer {
        /// The rule.
        rule: usize,
        /// The first ICMP rule applying IPsec.
        first: usize,
    },
    /// The pair budget ran out; shadow and overlap warnings are incomplete.
    Incomplete {
        /// Pairs compared.
        pairs: u64,
    },
}

impl Warning {
    /// The rule the warning is about.
    pub fn rule(&self) -> Option<usize> {
        match self {
            Warning::Shadowed { rule, .. }
            | Warning::Overlap { rule, .. }
            | Warning::Unmatchable { rule, .. }
            | Warning::IcmpActionsDiffer { rule, .. } => Some(*rule),
            Warning::Incomplete { .. } => None,
        }
    }
}

fn list(v: &[usize]) -> String {
    v.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Shadowed { rule, by } => write!(
                f,
                "rule {rule} can never match: every packet it matches is decided first by rule(s) {} (higher priority)",
                list(by)
            ),
            Warning::Overlap { rule, with, more } => {
                write!(
                    f,
                    "rule {rule} overlaps higher-priority rule(s) {} with a different action; they decide the shared traffic",
                    list(with)
                )?;
                if *more > 0 {
                    write!(f, " (and at least {more} more)")?;
                }
                Ok(())
            }
            Warning::Unmatchable { rule, why } => write!(f, "rule {rule} can never match: {why}"),
            Warning::IcmpActionsDiffer { rule, first } => write!(
                f,
                "rule {rule}: IPsec action differs from ICMP rule {first}; all ICMP rules applying IPsec must be the same"
            ),
            Warning::Incomplete { pairs } => write!(
                f,
                "shadow/overlap analysis stopped after {pairs} rule pairs; warnings may be incomplete"
            ),
        }
    }
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn mask(width: u8, len: u8) -> u128 {
    let len = len.min(width);
    if len == 0 {
        return 0;
    }
    let full = if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let host = u32::from(width - len);
    full & !(if host == 0 { 0 } else { (1u128 << host) - 1 })
}

/// A selector in comparable form for one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Sel {
    ln: u128,
    lm: u128,
    rn: u128,
    rm: u128,
    lport: Option<(u16, u16)>,
    rport: Option<(u16, u16)>,
    proto: Option<u8>,
    itype: Option<(u8, u8)>,
    icode: Option<(u8, u8)>,
}

impl Sel {
    fn new(s: &Selector, fam: Family) -> Self {
        let w = fam.bits();
        let p = |x: Option<super::model::Prefix>| match x {
            Some(p) => {
                let m = mask(w, p.len);
                (bits(p.addr) & m, m)
            }
            None => (0, 0),
        };
        let (ln, lm) = p(s.laddr);
        let (rn, rm) = p(s.raddr);
        Self {
            ln,
            lm,
            rn,
            rm,
            lport: s.lport.map(|r| (r.lo, r.hi)),
            rport: s.rport.map(|r| (r.lo, r.hi)),
            proto: s.ulp,
            itype: s.icmp_type.map(|r| (r.lo, r.hi)),
            icode: s.icmp_code.map(|r| (r.lo, r.hi)),
        }
    }
}

fn range_covers<T: PartialOrd + Copy>(a: Option<(T, T)>, b: Option<(T, T)>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.0 <= b.0 && b.1 <= a.1,
    }
}

fn range_meets<T: PartialOrd + Copy>(a: Option<(T, T)>, b: Option<(T, T)>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.0 <= b.1 && b.0 <= a.1,
        _ => true,
    }
}

/// `a ⊇ b` (sound: when true, every packet `b` matches, `a` matches).
fn covers(a: &Sel, b: &Sel) -> bool {
    (a.lm & b.lm) == a.lm
        && (b.ln & a.lm) == a.ln
        && (a.rm & b.rm) == a.rm
        && (b.rn & a.rm) == a.rn
        && (a.proto.is_none() || a.proto == b.proto)
        && range_covers(a.lport, b.lport)
        && range_covers(a.rport, b.rport)
        && range_covers(a.itype, b.itype)
        && range_covers(a.icode, b.icode)
}

/// Some packet matches both.
fn meets(a: &Sel, b: &Sel) -> bool {
    let lm = a.lm & b.lm;
    let rm = a.rm & b.rm;
    if (a.ln & lm) != (b.ln & lm) || (a.rn & rm) != (b.rn & rm) {
        return false;
    }
    let proto = match (a.proto, b.proto) {
        (Some(x), Some(y)) if x != y => return false,
        (x, y) => x.or(y),
    };
    let ports = a.lport.is_some() || a.rport.is_some() || b.lport.is_some() || b.rport.is_some();
    let icmp = a.itype.is_some() || b.itype.is_some();
    if ports && (icmp || proto.is_some_and(|p| !ulp::has_ports(p))) {
        return false;
    }
    range_meets(a.lport, b.lport)
        && range_meets(a.rport, b.rport)
        && range_meets(a.itype, b.itype)
        && range_meets(a.icode, b.icode)
}

#[derive(Default)]
struct RuleState {
    tables: u32,
    shadowed_in: u32,
    /// 1 + the number of the last table the rule was found shadowed in.
    last_shadow: usize,
    /// Covering rules (at most `max_listed`).
    shadowers: Vec<usize>,
    /// Overlapping higher-priority rules with another action (at most `max_listed`).
    overlaps: Vec<usize>,
    /// 1 + the table the overlap count is for.
    overlap_table: usize,
    overlap_here: usize,
    /// The most overlapping rules found in one table (a lower bound of the distinct total).
    overlap_max: usize,
}

fn note_shadow(state: &mut [RuleState], lo: usize, hi: usize, tid: usize, max_listed: usize) {
    if let Some(s) = state.get_mut(lo) {
        if s.last_shadow != tid + 1 {
            s.last_shadow = tid + 1;
            s.shadowed_in += 1;
        }
        if s.shadowers.len() < max_listed.max(1) && !s.shadowers.contains(&hi) {
            s.shadowers.push(hi);
        }
    }
}

fn note_overlap(state: &mut [RuleState], lo: usize, hi: usize, tid: usize, max_listed: usize) {
    if let Some(s) = state.get_mut(lo) {
        if s.overlap_table != tid + 1 {
            s.overlap_table = tid + 1;
            s.overlap_here = 0;
        }
        s.overlap_here += 1;
        s.overlap_max = s.overlap_max.max(s.overlap_here);
        if s.overlaps.len() < max_listed && !s.overlaps.contains(&hi) {
            s.overlaps.push(hi);
        }
    }
}

struct Member {
    rule: usize,
    prio: u32,
    sel: Sel,
}

/// Analyzes `set`.
pub fn analyze(set: &PolicySet, limits: AnalysisLimits) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut unmatchable = vec![false; set.rules.len()];
    for (i, r) in set.rules.iter().enumerate() {
        if let Some(why) = r.selector.unmatchable() {
            unmatchable[i] = true;
            out.push(Warning::Unmatchable { rule: i, why });
        }
    }
    let mut first_icmp: Option<usize> = None;
    for (i, r) in set.rules.iter().enumerate() {
        if matches!(r.selector.ulp, Some(ulp::ICMP | ulp::ICMPV6))
            && matches!(r.action, Action::Ipsec(_))
        {
            match first_icmp {
                None => first_icmp = Some(i),
                Some(f) => {
                    if set.rules.get(f).map(|x| &x.action) != Some(&r.action) {
                        out.push(Warning::IcmpActionsDiffer { rule: i, first: f });
                    }
                }
            }
        }
    }

    // Group the matchable rules into tables: (SPD, family, direction).
    let mut tables: HashMap<(Option<&str>, Family, bool), Vec<Member>> = HashMap::new();
    let actions: Vec<(&Action, Mode)> = set.rules.iter().map(|r| (&r.action, r.mode())).collect();
    for (i, r) in set.rules.iter().enumerate() {
        if unmatchable.get(i).copied().unwrap_or(true) {
            continue;
        }
        let prio = Priority::for_rule(i, &r.action).value();
        let fams: &[Family] = match r.selector.family() {
            Some(Family::V4) => &[Family::V4],
            Some(Family::V6) => &[Family::V6],
            None => &[Family::V4, Family::V6],
        };
        for &fam in fams {
            for d in [Dir::Out, Dir::In] {
                if r.dir.covers(d) {
                    tables
                        .entry((r.tunnel.as_deref(), fam, d == Dir::Out))
                        .or_default()
                        .push(Member {
                            rule: i,
                            prio,
                            sel: Sel::new(&r.selector, fam),
                        });
                }
            }
        }
    }
    let mut state: Vec<RuleState> = (0..set.rules.len()).map(|_| RuleState::default()).collect();
    let mut pairs: u64 = 0;
    let mut incomplete = false;
    for members in tables.values() {
        for m in members {
            if let Some(s) = state.get_mut(m.rule) {
                s.tables += 1;
            }
        }
    }
    let mut keys: Vec<_> = tables.keys().copied().collect();
    keys.sort();
    'tables: for (tid, k) in keys.into_iter().enumerate() {
        let Some(members) = tables.get(&k) else {
            continue;
        };
        // Nesting forest over remote prefixes; rules without one share the root node.
        let mut node_of: HashMap<(u128, u128), usize> = HashMap::new();
        let mut order: Vec<(u128, u128)> = Vec::new();
        for m in members {
            node_of.entry((m.sel.rn, m.sel.rm)).or_insert_with(|| {
                order.push((m.sel.rn, m.sel.rm));
                0
            });
        }
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        for (ni, key) in order.iter().enumerate() {
            node_of.insert(*key, ni);
        }
        let mut nodes: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
        for (mi, m) in members.iter().enumerate() {
            if let Some(v) = node_of
                .get(&(m.sel.rn, m.sel.rm))
                .and_then(|&n| nodes.get_mut(n))
            {
                v.push(mi);
            }
        }
        // Within a node, a rule with the same selectors as a higher-priority one is covered by
        // it; only the highest of each distinct selector takes part in the pairs.
        for v in &mut nodes {
            v.sort_by_key(|&mi| core::cmp::Reverse(members.get(mi).map_or(0, |m| m.prio)));
            let mut seen: HashMap<Sel, usize> = HashMap::new();
            v.retain(|&mi| {
                let Some(m) = members.get(mi) else {
                    return false;
                };
                match seen.get(&m.sel) {
                    Some(&rep) => {
                        if let Some(r) = members.get(rep) {
                            note_shadow(&mut state, m.rule, r.rule, tid, limits.max_listed);
                        }
                        false
                    }
                    None => {
                        seen.insert(m.sel, mi);
                        true
                    }
                }
            });
        }
        let top = if k.1 == Family::V4 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        let mut parent: Vec<Option<usize>> = Vec::with_capacity(order.len());
        let mut stack: Vec<usize> = Vec::new();
        for (ni, (net, _)) in order.iter().enumerate() {
            while let Some(&t) = stack.last() {
                let (tn, tm) = order[t];
                if (tn | (!tm & top)) < *net {
                    stack.pop();
                } else {
                    break;
                }
            }
            parent.push(stack.last().copied());
            stack.push(ni);
        }
        for (ni, here) in nodes.iter().enumerate() {
            for (pos, &bi) in here.iter().enumerate() {
                let Some(b) = members.get(bi) else { continue };
                // Earlier members of the same node, then every ancestor node's members.
                let mut cand: &[usize] = here.get(..pos).unwrap_or(&[]);
                let mut up = parent.get(ni).copied().flatten();
                loop {
                    for &ai in cand {
                        pairs += 1;
                        if pairs > limits.max_pairs {
                            incomplete = true;
                            break 'tables;
                        }
                        let Some(a) = members.get(ai) else { continue };
                        let (hi, lo) = if a.prio > b.prio { (a, b) } else { (b, a) };
                        if covers(&hi.sel, &lo.sel) {
                            note_shadow(&mut state, lo.rule, hi.rule, tid, limits.max_listed);
                        } else if actions.get(hi.rule) != actions.get(lo.rule)
                            && meets(&hi.sel, &lo.sel)
                        {
                            note_overlap(&mut state, lo.rule, hi.rule, tid, limits.max_listed);
                        }
                    }
                    let Some(pi) = up else { break };
                    cand = nodes.get(pi).map_or(&[], Vec::as_slice);
                    up = parent.get(pi).copied().flatten();
                }
            }
        }
    }
    for (i, s) in state.iter_mut().enumerate() {
        if s.tables > 0 && s.shadowed_in >= s.tables {
            s.shadowers.sort_unstable();
            out.push(Warning::Shadowed {
                rule: i,
                by: s.shadowers.clone(),
            });
        } else if !s.overlaps.is_empty() {
            s.overlaps.sort_unstable();
            out.push(Warning::Overlap {
                rule: i,
                with: s.overlaps.clone(),
                more: s.overlap_max.saturating_sub(s.overlaps.len()),
            });
        }
    }
    if incomplete {
        out.push(Warning::Incomplete { pairs: pairs - 1 });
    }
    out.sort_by_key(|w| {
        (
            w.rule().unwrap_or(usize::MAX),
            matches!(w, Warning::Incomplete { .. }),
        )
    });
    out
}
