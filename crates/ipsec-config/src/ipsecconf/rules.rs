//! [`PolicyFile::to_rules`]: the AST onto the SPD model of `ipsec_core::spd`.

use ipsec_core::spd;
use ipsec_core::Prefix;

use super::{
    Action, Address, AlgChoice, AlgSpec, Dir, Endpoints, Entry, IcmpRange, Negotiate, ParseError,
    PolicyFile, Properties, SaSharing,
};

impl PolicyFile {
    /// The SPD rules of the policy, in file order (the SPD computes each rule's priority from
    /// its position and action: `0x000fffff - index`, plus the bypass, ESP and AH boosts).
    ///
    /// * One entry becomes one rule per address pair: a host name with several addresses
    ///   expands into a rule for every (local, remote) pair of the same family, in resolver
    ///   order (local outer, remote inner), as Solaris does; literals give exactly one rule.
    /// * The direction is [`Entry::direction`]: `apply` is `dir out`, `permit` is `dir in`.
    /// * Old-style `saddr`/`daddr`/`sport`/`dport` become local/remote by the direction
    ///   (outbound: source = local; inbound: source = remote), as
    ///   [`spd::OldStyle::selector`] defines.
    /// * `ipsec`, `apply` and `permit` alternatives become the [`spd::Protection`]s of one
    ///   [`spd::Action::Ipsec`], in order; `any` is an [`spd::AlgSpec`] without an
    ///   algorithm; `none` is as if the property were absent; `encr_auth_algs` without
    ///   `encr_algs` is ESP with NULL encryption ([`spd::EspSpec::from_props`]); an absent
    ///   `sa` is shared. `bypass`/`pass` and `drop` become [`spd::Action::Bypass`] and
    ///   [`spd::Action::Drop`].
    ///
    /// Errors name the entry's opening `{`: an entry whose `or` alternatives mix `ipsec`
    /// with `bypass` or `drop` (Solaris accepts it; the SPD model has no such action), an
    /// entry without any same-family address pair, a rule the SPD model refuses
    /// ([`spd::Rule::validate`]; the parser's checks make this impossible for parsed files),
    /// and more rules than the SPD can order ([`spd::MAX_RULES`]).
    pub fn to_rules(&self) -> Result<Vec<spd::Rule>, ParseError> {
        let mut rules = Vec::new();
        for e in &self.entries {
            let err = |expected: String| ParseError {
                file: self.file.clone(),
                line: e.line,
                column: e.column,
                token: "{".to_string(),
                expected,
            };
            let dir = match e.direction() {
                Dir::In => spd::PolicyDir::In,
                Dir::Out => spd::PolicyDir::Out,
                Dir::Both => spd::PolicyDir::Both,
            };
            let action = action(e).map_err(&err)?;
            let pairs = address_pairs(e);
            if pairs.is_empty() {
                return Err(err(
                    "an entry with an IPv4 or IPv6 address pair (its local and remote \
                     addresses are of different families)"
                        .to_string(),
                ));
            }
            for (a, b) in pairs {
                let p = &e.pattern;
                let ulp = p.ulp;
                let icmp_type = p.icmp_type.map(icmp);
                let icmp_code = p.icmp_code.map(icmp);
                let selector = match &p.endpoints {
                    Endpoints::SrcDst { sport, dport, .. } => spd::OldStyle {
                        saddr: a,
                        daddr: b,
                        sport: sport.map(spd::PortRange::single),
                        dport: dport.map(spd::PortRange::single),
                        ulp,
                        icmp_type,
                        icmp_code,
                    }
                    .selector(dir),
                    Endpoints::LocalRemote { lport, rport, .. } => spd::Selector {
                        laddr: a,
                        raddr: b,
                        lport: lport.map(spd::PortRange::single),
                        rport: rport.map(spd::PortRange::single),
                        ulp,
                        icmp_type,
                        icmp_code,
                    },
                    Endpoints::Any => spd::Selector {
                        ulp,
                        icmp_type,
                        icmp_code,
                        ..spd::Selector::any()
                    },
                };
                let mut rule = spd::Rule::new(selector, dir, action.clone())
                    .at_line(u32::try_from(e.line).unwrap_or(u32::MAX));
                if let Some(t) = &p.tunnel {
                    let n = p.negotiate.map(|n| match n {
                        Negotiate::Tunnel => spd::Negotiate::Tunnel,
                        Negotiate::Transport => spd::Negotiate::Transport,
                    });
                    rule = rule.in_tunnel(t, n);
                }
                rule.validate()
                    .map_err(|m| err(format!("an entry the SPD accepts ({m})")))?;
                if rules.len() >= spd::MAX_RULES {
                    return Err(err(format!(
                        "at most {} SPD rules in a policy",
                        spd::MAX_RULES
                    )));
                }
                rules.push(rule);
            }
        }
        Ok(rules)
    }
}

fn icmp(r: IcmpRange) -> spd::IcmpRange {
    spd::IcmpRange::new(r.first, r.last)
}

fn alg<A: Copy>(s: Option<AlgSpec<A>>) -> Option<spd::AlgSpec<A>> {
    let s = s?;
    let alg = match s.alg {
        AlgChoice::None => return None,
        AlgChoice::Any => None,
        AlgChoice::Alg(a) => Some(a),
    };
    Some(spd::AlgSpec {
        alg,
        key_bits: spd::KeyLen::range(s.key_bits.min, s.key_bits.max),
    })
}

fn protection(p: &Properties) -> spd::Protection {
    spd::Protection::from_props(
        alg(p.auth_algs),
        alg(p.encr_algs),
        alg(p.encr_auth_algs),
        match p.sa {
            Some(SaSharing::Unique) => spd::SaSharing::Unique,
            _ => spd::SaSharing::Shared,
        },
    )
}

fn action(e: &Entry) -> Result<spd::Action, String> {
    let alts = &e.alternatives;
    if alts.iter().all(|(a, _)| *a == Action::Bypass) {
        return Ok(spd::Action::Bypass);
    }
    if alts.iter().all(|(a, _)| *a == Action::Drop) {
        return Ok(spd::Action::Drop);
    }
    if alts.iter().all(|(a, _)| a.applies_ipsec()) {
        return Ok(spd::Action::Ipsec(
            alts.iter().map(|(_, p)| protection(p)).collect(),
        ));
    }
    let kinds: Vec<&str> = alts.iter().map(|(a, _)| a.name()).collect();
    Err(format!(
        "an entry whose `or` alternatives are all IPsec actions, all bypass or all drop \
         (the SPD cannot mix them: {})",
        kinds.join(" or ")
    ))
}

/// The (first, second) address selectors of every rule an entry expands into: (source,
/// destination) in old style, (local, remote) in new style.
fn address_pairs(e: &Entry) -> Vec<(Option<Prefix>, Option<Prefix>)> {
    let (a, b) = match &e.pattern.endpoints {
        Endpoints::Any => (None, None),
        Endpoints::SrcDst { src, dst, .. } => (src.as_ref(), dst.as_ref()),
        Endpoints::LocalRemote { local, remote, .. } => (local.as_ref(), remote.as_ref()),
    };
    let side = |x: Option<&Address>| -> Vec<Option<Prefix>> {
        match x {
            None => vec![None],
            Some(a) => a.prefixes().into_iter().map(Some).collect(),
        }
    };
    let mut out = Vec::new();
    for x in side(a) {
        for y in side(b) {
            let same = match (x, y) {
                (Some(p), Some(q)) => p.addr.is_ipv4() == q.addr.is_ipv4(),
                _ => true,
            };
            if same {
                out.push((x, y));
            }
        }
    }
    out
}
