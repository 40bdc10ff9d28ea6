//! The inbound check of a protected packet against policy: are the SAs that protected it
//! acceptable for the (inner) packet? Mirrors spd.c `ipsec_check_ipsecin_policy()`,
//! `ipsec_check_ipsecin_unique()` and `ipsec_check_ipsecin_action()`, plus the RFC 4301 §5.2
//! inner-selector check for tunnel-mode SAs, so nothing is smuggled through the wrong SA.

use std::net::IpAddr;

use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};

use super::drop::PolicyDrop;
use super::icmp;
use super::key::PacketKey;
use super::model::{AlgSpec, EspAuth, EspSpec, KeyLen, Protection, SaSharing};
use crate::engine::InboundOk;
use crate::sa::{Identity, InnerSelectors, Mode, Proto, Sa, UniqueBinding};
use crate::sadb::Sadb;

/// One SA of an inbound packet, as the policy check sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaView<'a> {
    /// AH or ESP.
    pub proto: Proto,
    /// SPI.
    pub spi: u32,
    /// ESP encryption algorithm and key bits (salt excluded); NULL for ESP without one.
    pub encr: Option<(EncrAlg, usize)>,
    /// Integrity algorithm and key bits (salt excluded).
    pub auth: Option<(AuthAlg, usize)>,
    /// Source identity.
    pub src_id: Option<&'a Identity>,
    /// Destination identity.
    pub dst_id: Option<&'a Identity>,
    /// Unique-SA binding.
    pub unique: Option<UniqueBinding>,
    /// Mode.
    pub mode: Mode,
    /// Inner selectors (tunnel mode).
    pub inner: InnerSelectors,
    /// Upper-layer protocol of the SA's address extension (transport mode: 0 = any).
    pub ulp: u8,
    /// Source port of the SA's address extension (0 = any).
    pub sport: u16,
    /// Destination port (0 = any).
    pub dport: u16,
}

impl<'a> SaView<'a> {
    /// The view of an SADB entry.
    pub fn of(sa: &'a Sa) -> Self {
        let c = sa.config();
        let encr = match c.proto {
            Proto::Esp => {
                let alg = c.encr_alg.unwrap_or(EncrAlg::Null);
                let salt = encr_info(alg).salt_bytes * 8;
                Some((alg, c.encr_key.bits().saturating_sub(salt)))
            }
            Proto::Ah => None,
        };
        let auth = c.auth_alg.filter(|a| *a != AuthAlg::None).map(|a| {
            let salt = auth_info(a).salt_bytes * 8;
            (a, c.auth_key.bits().saturating_sub(salt))
        });
        Self {
            proto: c.proto,
            spi: c.spi,
            encr,
            auth,
            src_id: c.src_id.as_ref(),
            dst_id: c.dst_id.as_ref(),
            unique: c.unique,
            mode: c.mode,
            inner: c.inner,
            ulp: c.ulp,
            sport: c.sport,
            dport: c.dport,
        }
    }
}

/// What protected an inbound packet: at most one AH and one ESP SA, and whether the packet was
/// decapsulated from tunnel mode (self-encapsulation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied<'a> {
    /// The AH SA.
    pub ah: Option<SaView<'a>>,
    /// The ESP SA.
    pub esp: Option<SaView<'a>>,
    /// Tunnel mode: the packet checked is the inner packet.
    pub decaps: bool,
}

impl<'a> Applied<'a> {
    /// From what the engine reported, looking the SAs up in `sadb`.
    pub fn from_inbound(ok: &InboundOk, sadb: &'a Sadb) -> Result<Self, PolicyDrop> {
        let mut a = Applied {
            decaps: ok.tunnel,
            ..Applied::default()
        };
        for id in ok.sa_ids() {
            let sa = sadb.get(id).ok_or(PolicyDrop::StaleSa)?;
            let v = SaView::of(sa);
            let slot = match v.proto {
                Proto::Ah => &mut a.ah,
                Proto::Esp => &mut a.esp,
            };
            if slot.is_some() {
                return Err(PolicyDrop::BadBundle);
            }
            *slot = Some(v);
        }
        if a.ah.is_none() && a.esp.is_none() {
            return Err(PolicyDrop::GotClear);
        }
        Ok(a)
    }

    /// The SA whose identities a latched connection keeps: ESP if present, else AH.
    pub(crate) fn identity_sa(&self) -> Option<&SaView<'a>> {
        self.esp.as_ref().or(self.ah.as_ref())
    }

    /// The protection a reply inherits (spd.c `ipsec_in_to_out_action`): the same protocols
    /// with exactly the algorithms and key sizes of the SAs, the same uniqueness.
    pub fn reply_bundle(&self) -> Protection {
        let exact_auth = |a: (AuthAlg, usize)| {
            AlgSpec::of(a.0).with_bits(KeyLen::exactly(u16::try_from(a.1).unwrap_or(u16::MAX)))
        };
        let ah = self.ah.as_ref().and_then(|v| v.auth).map(exact_auth);
        let esp = self.esp.as_ref().map(|v| {
            let (alg, bits) = v.encr.unwrap_or((EncrAlg::Null, 0));
            EspSpec {
                encr: AlgSpec::of(alg)
                    .with_bits(KeyLen::exactly(u16::try_from(bits).unwrap_or(u16::MAX))),
                auth: match v.auth {
                    Some(a) => EspAuth::Required(exact_auth(a)),
                    None => EspAuth::Optional,
                },
            }
        });
        let unique = self
            .ah
            .iter()
            .chain(self.esp.iter())
            .any(|v| v.unique.is_some());
        Protection {
            ah,
            esp,
            sa: if unique {
                SaSharing::Unique
            } else {
                SaSharing::Shared
            },
            self_encap: false,
        }
    }

    /// SA mode of the packet.
    pub fn mode(&self) -> Mode {
        if self.decaps {
            Mode::Tunnel
        } else {
            Mode::Transport
        }
    }
}

fn ids<'a>(v: Option<&SaView<'a>>) -> (Option<&'a Identity>, Option<&'a Identity>) {
    v.map_or((None, None), |v| (v.src_id, v.dst_id))
}

/// AH and ESP of one packet must carry the same identities (`ipds_spd_ahesp_diffid`).
pub(crate) fn check_ids(a: &Applied<'_>) -> Result<(), PolicyDrop> {
    if a.ah.is_some() && a.esp.is_some() && ids(a.ah.as_ref()) != ids(a.esp.as_ref()) {
        return Err(PolicyDrop::AhEspDiffId);
    }
    Ok(())
}

fn port_ok(want: u16, got: Option<u16>) -> bool {
    want == 0 || got == Some(want)
}

fn prefix_ok(p: &Option<crate::sa::Prefix>, a: IpAddr) -> bool {
    p.is_none_or(|p| p.contains(a))
}

fn sa_fits(v: &SaView<'_>, key: &PacketKey) -> bool {
    if let Some(b) = v.unique {
        if !(port_ok(b.sport, key.sport) && port_ok(b.dport, key.dport))
            || (b.proto != 0 && b.proto != key.proto)
        {
            return false;
        }
    }
    match v.mode {
        Mode::Transport => {
            (v.ulp == 0 || v.ulp == key.proto)
                && port_ok(v.sport, key.sport)
                && port_ok(v.dport, key.dport)
        }
        Mode::Tunnel => {
            let s = &v.inner;
            prefix_ok(&s.src, key.src)
                && prefix_ok(&s.dst, key.dst)
                && (s.proto == 0 || s.proto == key.proto)
                && port_ok(s.sport, key.sport)
                && port_ok(s.dport, key.dport)
        }
    }
}

/// Each SA's 5-tuple binding and selectors must admit the (inner) packet
/// (`ipsec_check_ipsecin_unique`; RFC 4301 §5.2).
pub(crate) fn check_inner(a: &Applied<'_>, key: &PacketKey) -> Result<(), PolicyDrop> {
    if let Some(v) = &a.ah {
        if !sa_fits(v, key) {
            return Err(PolicyDrop::AhInnerMismatch);
        }
    }
    if let Some(v) = &a.esp {
        if !sa_fits(v, key) {
            return Err(PolicyDrop::EspInnerMismatch);
        }
    }
    Ok(())
}

fn accept_clear(key: &PacketKey) -> Result<(), PolicyDrop> {
    if icmp::accept_clear(key.proto, key.is_v6(), key.icmp_type, key.icmp_code) {
        Ok(())
    } else {
        Err(PolicyDrop::GotClear)
    }
}

/// One alternative against what was applied (`ipsec_check_ipsecin_action`, APPLY case).
/// `expect_decaps`: the alternative wants the packet tunnelled (self-encapsulation, or a
/// tunnel-mode tunnel rule). A missing protocol falls back to the ICMP accept-clear table, as
/// Solaris does.
pub(crate) fn check_alternative(
    p: &Protection,
    expect_decaps: bool,
    a: &Applied<'_>,
    key: &PacketKey,
) -> Result<(), PolicyDrop> {
    match (&p.ah, &a.ah) {
        (Some(_), None) => return accept_clear(key),
        (Some(spec), Some(v)) => match v.auth {
            Some((alg, bits)) if spec.accepts(alg, bits) => {}
            _ => return Err(PolicyDrop::BadAhAlg),
        },
        (None, Some(_)) => return Err(PolicyDrop::GotAh),
        (None, None) => {}
    }
    match (&p.esp, &a.esp) {
        (Some(_), None) => return accept_clear(key),
        (Some(spec), Some(v)) => {
            let (alg, bits) = v.encr.unwrap_or((EncrAlg::Null, 0));
            if !spec.encr.accepts(alg, bits) {
                return Err(PolicyDrop::BadEspEAlg);
            }
            if let EspAuth::Required(want) = &spec.auth {
                let ok = match v.auth {
                    Some((a, b)) => want.accepts(a, b),
                    // A combined-mode cipher authenticates by itself (ipsecconf.c: "If the
                    // cipher is combined-mode don't do any ESP authentication").
                    None => encr_info(alg).aead,
                };
                if !ok {
                    return Err(PolicyDrop::BadEspAAlg);
                }
            }
        }
        (None, Some(_)) => return Err(PolicyDrop::GotEsp),
        (None, None) => {}
    }
    match (expect_decaps, a.decaps) {
        (true, false) => accept_clear(key).map_err(|_| PolicyDrop::BadSelfEncap),
        (false, true) => Err(PolicyDrop::GotSelfEncap),
        _ => Ok(()),
    }
}

/// Whether the outbound protection `out` (as applied over loopback) satisfies the inbound
/// alternative `want`: same protocols, and every algorithm and key size `out` may use is one
/// `want` accepts.
pub(crate) fn loopback_satisfies(want: &Protection, out: &Protection) -> bool {
    let ah = match (&want.ah, &out.ah) {
        (None, None) => true,
        (Some(w), Some(o)) => w.covers(o),
        _ => false,
    };
    let esp = match (&want.esp, &out.esp) {
        (None, None) => true,
        (Some(w), Some(o)) => w.covers(o),
        _ => false,
    };
    ah && esp && want.self_encap == out.self_encap
}

fn spec_fits(p: &Protection, v: &SaView<'_>) -> bool {
    match v.proto {
        Proto::Ah => {
            p.ah.as_ref()
                .is_some_and(|s| v.auth.is_some_and(|(a, b)| s.accepts(a, b)))
        }
        Proto::Esp => p.esp.as_ref().is_some_and(|s| {
            let (alg, bits) = v.encr.unwrap_or((EncrAlg::Null, 0));
            s.encr.accepts(alg, bits)
                && match &s.auth {
                    EspAuth::Optional => true,
                    EspAuth::Required(w) => match v.auth {
                        Some((a, b)) => w.accepts(a, b),
                        None => encr_info(alg).aead,
                    },
                }
        }),
    }
}

fn outbound_sa_fits(p: &Protection, mode: Mode, sa: &Sa, key: &PacketKey) -> bool {
    let c = sa.config();
    if !sa.state().usable() || c.direction == crate::sa::Direction::Inbound {
        return false;
    }
    let want_tunnel = mode == Mode::Tunnel || p.self_encap;
    let v = SaView::of(sa);
    let place = match (want_tunnel, c.mode) {
        (false, Mode::Transport) => {
            c.dst == key.dst && c.src.is_none_or(|s| s == key.src || s.is_unspecified())
        }
        (true, Mode::Tunnel) if p.self_encap => c.dst == key.dst,
        (true, Mode::Tunnel) => {
            let s = &c.inner;
            prefix_ok(&s.src, key.src)
                && prefix_ok(&s.dst, key.dst)
                && (s.proto == 0 || s.proto == key.proto)
        }
        _ => false,
    };
    if !place || !spec_fits(p, &v) {
        return false;
    }
    // `sa unique`: an SA bound to this packet's 5-tuple; `sa shared`: an SA bound to no
    // 5-tuple (a unique SA is "not used by any other socket").
    match (p.sa, v.unique) {
        (SaSharing::Unique, Some(b)) => {
            port_ok(b.sport, key.sport)
                && port_ok(b.dport, key.dport)
                && (b.proto == 0 || b.proto == key.proto)
        }
        (SaSharing::Unique, None) => false,
        (SaSharing::Shared, Some(_)) => false,
        (SaSharing::Shared, None) => sa_fits(&v, key) || v.mode == Mode::Tunnel,
    }
}

/// The transmitter's choice for an outbound `Protect` decision: the first alternative of
/// `bundles` for which `sadb` holds usable SAs ("a transmitter will use the first
/// action-property pair that works"), with the SAs in the order
/// [`Engine::outbound`](crate::Engine::outbound) applies them (ESP, then AH outside it).
/// `None` means no alternative has SAs yet: the daemon asks the key manager (ACQUIRE).
///
/// This scans the SADB (O(SAs)); a daemon caches the answer per flow.
pub fn choose_sas(
    bundles: &[Protection],
    mode: Mode,
    key: &PacketKey,
    sadb: &Sadb,
) -> Option<(usize, [Option<crate::sadb::SaId>; 2])> {
    for (i, p) in bundles.iter().enumerate() {
        let find = |proto: Proto| {
            sadb.iter()
                .find(|(_, sa)| sa.proto() == proto && outbound_sa_fits(p, mode, sa, key))
                .map(|(id, _)| id)
        };
        let esp = match p.esp {
            Some(_) => match find(Proto::Esp) {
                Some(id) => Some(id),
                None => continue,
            },
            None => None,
        };
        let ah = match p.ah {
            Some(_) => match find(Proto::Ah) {
                Some(id) => Some(id),
                None => continue,
            },
            None => None,
        };
        let order = match (esp, ah) {
            (Some(e), a) => [Some(e), a],
            (None, a) => [a, None],
        };
        if order[0].is_some() {
            return Some((i, order));
        }
    }
    None
}
