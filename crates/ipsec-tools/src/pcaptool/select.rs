//! Outbound SA selection for `ipsecpcap encrypt`.
//!
//! A transport-mode SA matches a packet whose source and destination are the SA's (an SA
//! without a source matches any source); a tunnel-mode SA matches a packet that falls in its
//! inner selectors (address prefixes, protocol, ports; unset means any). The SA's outer
//! protocol and ports (`proto`/`sport`/`dport` in ipseckey), when set, must match as well, and
//! SAs marked `inbound` are never used. Among several matches the most specific wins (a
//! transport SA with both addresses, then the longest inner prefixes), then the first in the
//! SA file.
//!
//! ESP is chosen first; AH is then chosen against the packet as ESP leaves it (in tunnel mode
//! that is the ESP SA's outer addresses), so that both matching gives an AH+ESP bundle with
//! ESP inside.

use ipsec_core::{Direction, Mode, Proto, SaConfig, SaId};

use super::inspect::Flow;

/// One candidate SA, in SA-file order.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Handle in the SADB.
    pub id: SaId,
    /// Its configuration.
    pub cfg: SaConfig,
}

/// The SAs to apply to one packet, innermost first (ESP, then AH).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    ids: [Option<SaId>; 2],
}

impl Bundle {
    /// The SA handles, innermost first, and how many of them there are; `None` when empty.
    pub fn as_array(&self) -> Option<([SaId; 2], usize)> {
        let first = self.ids[0]?;
        Some(match self.ids[1] {
            Some(second) => ([first, second], 2),
            None => ([first, first], 1),
        })
    }
    /// True when no SA matched.
    pub fn is_empty(&self) -> bool {
        self.ids[0].is_none()
    }
}

/// Selection over a fixed set of SAs, with a one-flow cache (captures are mostly runs of one
/// flow).
pub struct Selector {
    sas: Vec<Candidate>,
    last: Option<(Flow, Bundle)>,
}

fn port_ok(want: u16, have: u16) -> bool {
    want == 0 || want == have
}

/// How specifically `c` matches `f`, or `None` if it does not.
fn score(c: &SaConfig, f: &Flow) -> Option<u32> {
    if c.direction == Direction::Inbound || !c.state.usable() {
        return None;
    }
    match c.mode {
        Mode::Transport => {
            if c.dst != f.dst {
                return None;
            }
            let src_exact = match c.src {
                Some(s) if !s.is_unspecified() => {
                    if s != f.src {
                        return None;
                    }
                    true
                }
                _ => false,
            };
            if (c.ulp != 0 && c.ulp != f.proto)
                || !port_ok(c.sport, f.sport)
                || !port_ok(c.dport, f.dport)
            {
                return None;
            }
            Some(1000 + if src_exact { 500 } else { 0 })
        }
        Mode::Tunnel => {
            let sel = &c.inner;
            let mut s = 0u32;
            for (p, a) in [(sel.src, f.src), (sel.dst, f.dst)] {
                if let Some(p) = p {
                    if !p.contains(a) {
                        return None;
                    }
                    s += u32::from(p.len);
                }
            }
            if (sel.proto != 0 && sel.proto != f.proto)
                || !port_ok(sel.sport, f.sport)
                || !port_ok(sel.dport, f.dport)
            {
                return None;
            }
            Some(s)
        }
    }
}

impl Selector {
    /// A selector over `sas` (in SA-file order).
    pub fn new(sas: Vec<Candidate>) -> Self {
        Self { sas, last: None }
    }

    fn best(&self, proto: Proto, f: &Flow) -> Option<&Candidate> {
        let mut best: Option<(&Candidate, u32)> = None;
        for c in self.sas.iter().filter(|c| c.cfg.proto == proto) {
            if let Some(s) = score(&c.cfg, f) {
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((c, s));
                }
            }
        }
        best.map(|b| b.0)
    }

    /// The bundle for a packet with this flow.
    pub fn select(&mut self, f: &Flow) -> Bundle {
        if let Some((lf, b)) = &self.last {
            if lf == f {
                return *b;
            }
        }
        let esp = self.best(Proto::Esp, f);
        let after = match esp {
            Some(c) if c.cfg.mode == Mode::Tunnel => match c.cfg.src {
                Some(src) => Flow {
                    src,
                    dst: c.cfg.dst,
                    proto: if c.cfg.natt.is_some() { 17 } else { 50 },
                    sport: 0,
                    dport: 0,
                },
                None => *f,
            },
            Some(c) => Flow {
                proto: if c.cfg.natt.is_some() { 17 } else { 50 },
                sport: 0,
                dport: 0,
                ..*f
            },
            None => *f,
        };
        let ah = self.best(Proto::Ah, &after);
        let b = match (esp, ah) {
            (Some(e), Some(a)) => Bundle {
                ids: [Some(e.id), Some(a.id)],
            },
            (Some(x), None) | (None, Some(x)) => Bundle {
                ids: [Some(x.id), None],
            },
            (None, None) => Bundle::default(),
        };
        self.last = Some((*f, b));
        b
    }
}
