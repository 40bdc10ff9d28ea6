//! The naive reference SPD: every rule is checked with the model's own matching code and the
//! highest priority wins. The compiled index must always agree with it (property test, fuzz
//! target `spd_lookup`, and the benchmark's baseline).

use super::index::TunnelNames;
use super::key::PacketKey;
use super::model::{Family, PolicySet};
use super::priority::Priority;

/// A policy checked rule by rule.
#[derive(Clone, Debug)]
pub struct NaiveSpd<'a> {
    set: &'a PolicySet,
    names: &'a TunnelNames,
    prios: Vec<u32>,
}

impl<'a> NaiveSpd<'a> {
    /// Over `set`, with tunnel numbers from `names` (as the compiled SPD was given).
    pub fn new(set: &'a PolicySet, names: &'a TunnelNames) -> Self {
        let prios = set
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Priority::for_rule(i, &r.action).value())
            .collect();
        Self { set, names, prios }
    }

    /// Every rule of the packet's SPD that matches, as (rule index, priority value), in file
    /// order.
    pub fn matches(&self, key: &PacketKey) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        self.each_match(key, |i, p| out.push((i, p)));
        out
    }

    fn each_match(&self, key: &PacketKey, mut f: impl FnMut(usize, u32)) {
        if !key.families_agree() {
            return;
        }
        let tunnel_name = match key.tunnel {
            None => None,
            Some(t) => match self.names.name(t) {
                Some(n) => Some(n),
                None => return,
            },
        };
        let fam = Family::of(key.src);
        let o = key.oriented();
        for (i, r) in self.set.rules.iter().enumerate() {
            if r.tunnel.as_deref() != tunnel_name {
                continue;
            }
            if !r.dir.covers(key.dir) {
                continue;
            }
            if r.selector.family().is_some_and(|f| f != fam) {
                continue;
            }
            if r.selector.matches(&o) {
                f(i, self.prios.get(i).copied().unwrap_or(0));
            }
        }
    }

    /// The deciding rule: the highest-priority match, as (rule index, priority value).
    pub fn lookup(&self, key: &PacketKey) -> Option<(usize, u32)> {
        let mut best: Option<(usize, u32)> = None;
        self.each_match(key, |i, p| {
            if best.is_none_or(|(_, bp)| p > bp) {
                best = Some((i, p));
            }
        });
        best
    }
}
