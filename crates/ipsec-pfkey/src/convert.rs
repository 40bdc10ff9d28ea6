//! Between PF_KEY extensions and `ipsec_core::SaConfig`: what an ADD (or the UPDATE of a
//! larval SA) means as an SA, and how an SA is described in GET, DUMP, EXPIRE and in the
//! messages the `ipseckey` command sends.
//!
//! # Mapping
//!
//! | SaConfig | PF_KEY |
//! |---|---|
//! | `proto` | `sadb_msg_satype` (2 AH, 3 ESP) |
//! | `spi`, `state`, `auth_alg`, `encr_alg` | SA extension |
//! | `replay_window` | `sadb_sa_replay` when ≤ 255, else the Ironswan extension (240) |
//! | `esn`, `allow_legacy`, `copy_dscp`, `padding_check`, `unique` | Ironswan extension flags and fields |
//! | `direction` | `SADB_X_SAFLAGS_INBOUND` / `_OUTBOUND` (both or neither = any) |
//! | `src` (None = unspecified), `sport`, `ulp` | ADDRESS_SRC (unspecified address of the destination's family when None) |
//! | `dst`, `dport` | ADDRESS_DST |
//! | `mode`, `inner` | tunnel mode ⇔ INNER_SRC and INNER_DST present; their prefixes, ports and protocol |
//! | `natt` | NATT_LOC / NATT_REM extensions (address unspecified when unknown; port 0 means 4500); either makes the SA UDP-encapsulated |
//! | `natt.local_behind_nat`, `natt.remote_behind_nat` | `SADB_X_SAFLAGS_NATT_LOC` / `_NATT_REM` (which side is NATed; only `NATT_LOC` SAs send NAT keepalives) |
//! | `encr_key`, `auth_key` | KEY_ENCRYPT (salt included in the bit count), KEY_AUTH |
//! | `soft`, `hard`, `idle` | LIFETIME_SOFT, LIFETIME_HARD, X_LIFETIME_IDLE (`packets` ⇔ `allocations`, saturating at 2³²−1) |
//! | `src_id`, `dst_id` | IDENTITY_SRC/DST (prefix 1, fqdn 2, user_fqdn 3, dn 4, key_id 6) |
//! | `pair_spi` | X_PAIR |
//! | `replay_value` | X_REPLAY_VALUE (`replay32`; `replay64` for ESN SAs) |
//!
//! Without the Ironswan extension, `SADB_X_SAFLAGS_UNIQUE` binds the SA to the ports and
//! protocol of the address extensions (Solaris' rule).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipsec_core::{
    Direction, Identity as CoreIdentity, IdentityType, InnerSelectors, Lifetime as CoreLifetime,
    Mode, NatT, Prefix, Proto, Sa, SaConfig, SaError, SaState, UniqueBinding,
};
use ipsec_crypto::{auth_by_pfkey, auth_info, encr_by_pfkey, encr_info, AuthAlg, CryptoError};

use crate::consts::*;
use crate::diag::Diagnostic as D;
use crate::wire::{
    Address, Identity, IronswanSa, Key, Lifetime, Message, PfkeyError, ReplayValue, SaExt,
};

/// Flags an ADD may carry. The others (`USED`, `PAIRED`, the algorithm- and
/// kernel-reserved bits, `TCPSIG`) are the kernel's to set or are not supported.
pub const ADD_FLAGS: u32 = SADB_SAFLAGS_PFS
    | SADB_SAFLAGS_NOREPLAY
    | SADB_X_SAFLAGS_UNIQUE
    | SADB_X_SAFLAGS_KM1
    | SADB_X_SAFLAGS_KM2
    | SADB_X_SAFLAGS_KM3
    | SADB_X_SAFLAGS_KM4
    | SADB_X_SAFLAGS_NATT_LOC
    | SADB_X_SAFLAGS_NATT_REM
    | SADB_X_SAFLAGS_TUNNEL
    | SADB_X_SAFLAGS_OUTBOUND
    | SADB_X_SAFLAGS_INBOUND
    | SADB_X_SAFLAGS_NATTED;

/// Flags kept as given and reported back (they change nothing in Ironswan's SA).
pub const OPAQUE_FLAGS: u32 = SADB_SAFLAGS_PFS
    | SADB_SAFLAGS_NOREPLAY
    | SADB_X_SAFLAGS_KM1
    | SADB_X_SAFLAGS_KM2
    | SADB_X_SAFLAGS_KM3
    | SADB_X_SAFLAGS_KM4
    | SADB_X_SAFLAGS_NATTED;

/// Flags an UPDATE of a mature SA may carry: the add flags plus the kernel-reported
/// `USED` and `PAIRED` (so that a GET reply can be sent back as an UPDATE). Only the opaque
/// flags take effect.
pub const UPDATE_FLAGS: u32 = ADD_FLAGS | SADB_X_SAFLAGS_USED | SADB_X_SAFLAGS_PAIRED;

/// The NAT-T port used when an address extension gives port 0.
pub const NATT_PORT: u16 = 4500;

/// The `ipsec_core` protocol of an SA type: 0 needs a type (`SATYPE_NEEDED`), other numbers
/// are unknown (`UNKNOWN_SATYPE`).
pub fn proto_of(satype: u8) -> Result<Proto, PfkeyError> {
    match satype {
        SADB_SATYPE_AH => Ok(Proto::Ah),
        SADB_SATYPE_ESP => Ok(Proto::Esp),
        SADB_SATYPE_UNSPEC => Err(PfkeyError::invalid(D::SatypeNeeded, "SA type needed")),
        _ => Err(PfkeyError::invalid(D::UnknownSatype, "unknown SA type")),
    }
}

/// Like [`proto_of`], with 0 meaning "every type" (`None`), for FLUSH, DUMP and
/// X_DELPAIR_STATE.
pub fn proto_or_all(satype: u8) -> Result<Option<Proto>, PfkeyError> {
    match satype {
        SADB_SATYPE_UNSPEC => Ok(None),
        t => proto_of(t).map(Some),
    }
}

/// The unspecified address of `a`'s family.
pub fn unspecified_like(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn ip_of_family(v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

fn addr(ip: IpAddr, port: u16, proto: u8, prefixlen: u8) -> Address {
    Address {
        proto,
        prefixlen,
        addr: SocketAddr::new(ip, port),
    }
}

fn specified(a: IpAddr) -> Option<IpAddr> {
    (!a.is_unspecified()).then_some(a)
}

fn to_wire_lifetime(l: &CoreLifetime) -> Option<Lifetime> {
    (!l.is_unlimited()).then(|| Lifetime {
        allocations: u32::try_from(l.packets).unwrap_or(u32::MAX),
        bytes: l.bytes,
        addtime: l.addtime,
        usetime: l.usetime,
    })
}

/// A wire lifetime as an `ipsec_core` one.
pub fn from_wire_lifetime(l: &Lifetime) -> CoreLifetime {
    CoreLifetime {
        packets: u64::from(l.allocations),
        bytes: l.bytes,
        addtime: l.addtime,
        usetime: l.usetime,
    }
}

fn ident_kind(k: IdentityType) -> u16 {
    match k {
        IdentityType::Prefix => SADB_IDENTTYPE_PREFIX,
        IdentityType::Fqdn => SADB_IDENTTYPE_FQDN,
        IdentityType::UserFqdn => SADB_IDENTTYPE_USER_FQDN,
        IdentityType::Dn => SADB_X_IDENTTYPE_DN,
        IdentityType::KeyId => SADB_X_IDENTTYPE_KEY_ID,
    }
}

fn ident_from_wire(i: &Identity) -> Result<CoreIdentity, PfkeyError> {
    let kind = match i.kind {
        SADB_IDENTTYPE_PREFIX => IdentityType::Prefix,
        SADB_IDENTTYPE_FQDN => IdentityType::Fqdn,
        SADB_IDENTTYPE_USER_FQDN => IdentityType::UserFqdn,
        SADB_X_IDENTTYPE_DN => IdentityType::Dn,
        SADB_X_IDENTTYPE_KEY_ID => IdentityType::KeyId,
        SADB_X_IDENTTYPE_GN | SADB_X_IDENTTYPE_ADDR_RANGE => {
            return Err(PfkeyError::new(
                EOPNOTSUPP,
                D::None,
                "identity type not supported",
            ))
        }
        _ => return Err(PfkeyError::invalid(D::None, "unknown identity type")),
    };
    let value = String::from_utf8(i.value.clone())
        .map_err(|_| PfkeyError::invalid(D::None, "identity is not UTF-8 text"))?;
    Ok(CoreIdentity { kind, value })
}

/// The SA flags that describe `cfg` (direction, tunnel, NAT-T, unique), without the
/// kernel's `USED`/`PAIRED` or the opaque flags.
pub fn config_flags(cfg: &SaConfig) -> u32 {
    let mut f = 0;
    match cfg.direction {
        Direction::Inbound => f |= SADB_X_SAFLAGS_INBOUND,
        Direction::Outbound => f |= SADB_X_SAFLAGS_OUTBOUND,
        Direction::Any => {}
    }
    if cfg.mode == Mode::Tunnel {
        f |= SADB_X_SAFLAGS_TUNNEL;
    }
    if let Some(n) = &cfg.natt {
        if n.local_behind_nat {
            f |= SADB_X_SAFLAGS_NATT_LOC;
        }
        if n.remote_behind_nat {
            f |= SADB_X_SAFLAGS_NATT_REM;
        }
    }
    if cfg.unique.is_some() {
        f |= SADB_X_SAFLAGS_UNIQUE;
    }
    f
}

/// Fills `m` with the extensions describing `cfg`: SA, lifetimes, addresses, NAT-T, keys
/// (when `with_keys`), identities, pair, replay value and the Ironswan extension. The SA
/// extension's state is `cfg.state` and its flags [`config_flags`]; callers describing a
/// live SA overwrite both.
pub fn put_config(m: &mut Message, cfg: &SaConfig, with_keys: bool) -> Result<(), PfkeyError> {
    let unsupported = |w| PfkeyError::invalid(D::None, w);
    m.satype = cfg.proto.satype();
    m.sa = Some(SaExt {
        spi: cfg.spi,
        replay: u8::try_from(cfg.replay_window).unwrap_or(u8::MAX),
        state: cfg.state.number(),
        auth: cfg.auth_alg.map_or(SADB_AALG_NONE, |a| auth_info(a).pfkey),
        encrypt: cfg.encr_alg.map_or(SADB_EALG_NONE, |e| encr_info(e).pfkey),
        flags: config_flags(cfg),
    });
    let mut xflags = 0;
    if cfg.esn {
        xflags |= IRONSWAN_SA_ESN;
    }
    if cfg.allow_legacy {
        xflags |= IRONSWAN_SA_ALLOW_LEGACY;
    }
    if !cfg.copy_dscp {
        xflags |= IRONSWAN_SA_NO_COPY_DSCP;
    }
    if !cfg.padding_check {
        xflags |= IRONSWAN_SA_NO_PADDING_CHECK;
    }
    let mut x = IronswanSa {
        replay_window: cfg.replay_window,
        flags: xflags,
        ..IronswanSa::default()
    };
    if let Some(u) = cfg.unique {
        x.flags |= IRONSWAN_SA_UNIQUE_BINDING;
        x.unique_sport = u.sport;
        x.unique_dport = u.dport;
        x.unique_proto = u.proto;
    }
    m.ironswan_sa = (cfg.replay_window > 255 || x.flags != 0).then_some(x);

    m.lifetime_hard = to_wire_lifetime(&cfg.hard);
    m.lifetime_soft = to_wire_lifetime(&cfg.soft);
    m.lifetime_idle = to_wire_lifetime(&cfg.idle);

    let src = cfg.src.unwrap_or_else(|| unspecified_like(cfg.dst));
    m.src = Some(addr(src, cfg.sport, cfg.ulp, 0));
    m.dst = Some(addr(cfg.dst, cfg.dport, cfg.ulp, 0));
    if cfg.mode == Mode::Tunnel {
        let i = &cfg.inner;
        let v4 = i.src.or(i.dst).map_or(cfg.ulp != 41, |p| p.addr.is_ipv4());
        let side = |p: Option<Prefix>, port| match p {
            Some(p) => addr(p.addr, port, i.proto, p.len),
            None => addr(ip_of_family(v4), port, i.proto, 0),
        };
        m.inner_src = Some(side(i.src, i.sport));
        m.inner_dst = Some(side(i.dst, i.dport));
    }
    if let Some(n) = &cfg.natt {
        let fam = unspecified_like(cfg.dst);
        m.natt_loc = Some(addr(n.local_addr.unwrap_or(fam), n.local_port, 0, 0));
        m.natt_rem = Some(addr(n.remote_addr.unwrap_or(fam), n.remote_port, 0, 0));
    }
    if with_keys {
        if !cfg.auth_key.is_empty() {
            m.key_auth = Some(
                Key::new(cfg.auth_key.expose())
                    .ok_or_else(|| unsupported("authentication key too long"))?,
            );
        }
        if !cfg.encr_key.is_empty() {
            m.key_encrypt = Some(
                Key::new(cfg.encr_key.expose())
                    .ok_or_else(|| unsupported("encryption key too long"))?,
            );
        }
    }
    let ident = |i: &CoreIdentity| Identity {
        kind: ident_kind(i.kind),
        id: 0,
        value: i.value.as_bytes().to_vec(),
    };
    m.ident_src = cfg.src_id.as_ref().map(ident);
    m.ident_dst = cfg.dst_id.as_ref().map(ident);
    m.pair = cfg.pair_spi.map(|spi| crate::wire::Pair { spi });
    m.replay_value = (cfg.replay_value != 0).then(|| {
        if cfg.esn {
            ReplayValue {
                replay32: 0,
                replay64: cfg.replay_value,
            }
        } else {
            ReplayValue {
                replay32: u32::try_from(cfg.replay_value).unwrap_or(u32::MAX),
                replay64: 0,
            }
        }
    });
    Ok(())
}

/// An ADD message for `cfg` (what `ipseckey add` sends), keys included.
pub fn add_message(cfg: &SaConfig, seq: u32, pid: u32) -> Result<Message, PfkeyError> {
    let mut m = Message::new(SADB_ADD, cfg.proto.satype());
    m.seq = seq;
    m.pid = pid;
    put_config(&mut m, cfg, true)?;
    Ok(m)
}

/// Checks soft limits against hard ones (Solaris `sadb_hardsoftchk`), the idle limits too.
pub fn check_lifetimes(
    hard: Option<&Lifetime>,
    soft: Option<&Lifetime>,
    idle: Option<&Lifetime>,
) -> Result<(), PfkeyError> {
    let Some(h) = hard else { return Ok(()) };
    let over = |s: u64, h: u64| s != 0 && h != 0 && s > h;
    if let Some(s) = soft {
        if over(u64::from(s.allocations), u64::from(h.allocations)) {
            return Err(PfkeyError::invalid(
                D::AllocHserr,
                "soft allocations above hard",
            ));
        }
        if over(s.bytes, h.bytes) {
            return Err(PfkeyError::invalid(D::BytesHserr, "soft bytes above hard"));
        }
        if over(s.addtime, h.addtime) {
            return Err(PfkeyError::invalid(
                D::AddtimeHserr,
                "soft addtime above hard",
            ));
        }
        if over(s.usetime, h.usetime) {
            return Err(PfkeyError::invalid(
                D::UsetimeHserr,
                "soft usetime above hard",
            ));
        }
    }
    if let Some(i) = idle {
        if over(i.addtime, h.addtime) {
            return Err(PfkeyError::invalid(
                D::AddtimeHserr,
                "idle addtime above hard addtime",
            ));
        }
        if over(i.usetime, h.usetime) {
            return Err(PfkeyError::invalid(
                D::UsetimeHserr,
                "idle usetime above hard usetime",
            ));
        }
    }
    Ok(())
}

/// The `errno` and diagnostic for an `ipsec_core` refusal.
pub fn sa_error(e: &SaError) -> PfkeyError {
    match e {
        SaError::ReservedSpi(_) => PfkeyError::invalid(D::MalformedSa, "SPI 0..=255 is reserved"),
        SaError::ReplayTooLarge(_) => {
            PfkeyError::invalid(D::InvalidReplay, "replay window above 4096")
        }
        SaError::MissingAlgorithm(w) | SaError::BadAlgorithm(w) => {
            if w.contains("encryption") && w.contains("AH") {
                PfkeyError::invalid(D::EncrNotsupp, "AH carries no encryption")
            } else {
                PfkeyError::invalid(D::BadAalg, "algorithm combination refused")
            }
        }
        SaError::AddressFamilyMismatch => {
            PfkeyError::invalid(D::AfMismatch, "address families differ")
        }
        SaError::Key { which, err } => {
            let enc = *which == "encryption";
            let (bits, weak, alg) = if enc {
                (D::BadEkeybits, D::WeakEkey, D::BadEalg)
            } else {
                (D::BadAkeybits, D::WeakAkey, D::BadAalg)
            };
            match err {
                CryptoError::BadKeyLength { .. } => PfkeyError::invalid(bits, "wrong key length"),
                CryptoError::WeakKey => PfkeyError::invalid(weak, "weak key"),
                CryptoError::LegacyNotAllowed | CryptoError::NotAllowedHere => {
                    PfkeyError::invalid(alg, "algorithm not allowed here")
                }
                _ => PfkeyError::invalid(D::BadCtx, "transform could not be keyed"),
            }
        }
        SaError::Exists => PfkeyError::new(EEXIST, D::None, "SA already exists"),
        SaError::NotFound => PfkeyError::new(ESRCH, D::SaNotfound, "no such SA"),
    }
}

/// Reads the SA an ADD (or the UPDATE of a larval SA) describes. Every check that needs
/// only the message is made here, ending with a dry run of `ipsec_core::Sa::new` at `now`;
/// checks against the SADB (existing SA, pair) are the engine's.
///
/// `allow_larval`: whether state LARVAL is acceptable (ADD: yes, an Ironswan extension;
/// the UPDATE that matures a larval SA: no).
pub fn message_to_config(
    m: &Message,
    allow_larval: bool,
    now: u64,
) -> Result<SaConfig, PfkeyError> {
    let proto = proto_of(m.satype)?;
    let sa =
        m.sa.ok_or_else(|| PfkeyError::invalid(D::MissingSa, "needs SA"))?;
    let src = m
        .src
        .ok_or_else(|| PfkeyError::invalid(D::MissingSrc, "needs SRC"))?;
    let dst = m
        .dst
        .ok_or_else(|| PfkeyError::invalid(D::MissingDst, "needs DST"))?;

    // Addresses.
    if src.ip().is_ipv4() != dst.ip().is_ipv4() {
        return Err(PfkeyError::invalid(
            D::AfMismatch,
            "source and destination families differ",
        ));
    }
    if dst.ip().is_unspecified() {
        return Err(PfkeyError::invalid(D::BadDst, "unspecified destination"));
    }
    if src.ip().is_multicast() {
        return Err(PfkeyError::invalid(D::BadSrc, "multicast source"));
    }
    if src.proto != dst.proto {
        return Err(PfkeyError::invalid(
            D::ProtoMismatch,
            "source and destination protocols differ",
        ));
    }

    // State and flags.
    let state = match sa.state {
        SADB_SASTATE_MATURE => SaState::Mature,
        SADB_SASTATE_LARVAL if allow_larval => SaState::Larval,
        _ => return Err(PfkeyError::invalid(D::BadSastate, "state must be mature")),
    };
    if sa.flags & !ADD_FLAGS != 0 {
        return Err(PfkeyError::invalid(
            D::BadSaflags,
            "flags not allowed in ADD",
        ));
    }

    // Algorithms and keys.
    let larval = state == SaState::Larval;
    let auth_alg = match sa.auth {
        SADB_AALG_NONE => None,
        n => Some(
            auth_by_pfkey(n)
                .ok_or_else(|| PfkeyError::invalid(D::BadAalg, "unknown authentication algorithm"))?
                .alg,
        ),
    };
    let encr_alg = match (proto, sa.encrypt) {
        (_, SADB_EALG_NONE) if larval || proto == Proto::Ah => None,
        (Proto::Ah, _) => return Err(PfkeyError::invalid(D::EncrNotsupp, "AH does no encryption")),
        (Proto::Esp, SADB_EALG_NONE) => {
            return Err(PfkeyError::invalid(
                D::BadEalg,
                "ESP needs an encryption algorithm (11 = null)",
            ))
        }
        (Proto::Esp, n) => Some(
            encr_by_pfkey(n)
                .ok_or_else(|| PfkeyError::invalid(D::BadEalg, "unknown encryption algorithm"))?
                .alg,
        ),
    };
    if proto == Proto::Ah && m.key_encrypt.is_some() {
        return Err(PfkeyError::invalid(
            D::EkeyPresent,
            "AH takes no encryption key",
        ));
    }
    let needs_ekey = encr_alg.is_some_and(|e| {
        let i = encr_info(e);
        i.key_bits.max > 0 || i.salt_bytes > 0
    });
    if m.key_encrypt.is_some() && !needs_ekey {
        return Err(PfkeyError::invalid(
            D::EkeyPresent,
            "no encryption key for this algorithm",
        ));
    }
    if needs_ekey && m.key_encrypt.is_none() {
        return Err(PfkeyError::invalid(
            D::MissingEkey,
            "encryption key missing",
        ));
    }
    let needs_akey = auth_alg.is_some_and(|a| a != AuthAlg::None);
    if m.key_auth.is_some() && !needs_akey {
        return Err(PfkeyError::invalid(
            D::AkeyPresent,
            "no authentication key for this algorithm",
        ));
    }
    if needs_akey && m.key_auth.is_none() {
        return Err(PfkeyError::invalid(
            D::MissingAkey,
            "authentication key missing",
        ));
    }
    if m.key_auth.as_ref().is_some_and(|k| k.bits % 8 != 0) {
        return Err(PfkeyError::invalid(
            D::BadAkeybits,
            "authentication key not whole bytes",
        ));
    }
    if m.key_encrypt.as_ref().is_some_and(|k| k.bits % 8 != 0) {
        return Err(PfkeyError::invalid(
            D::BadEkeybits,
            "encryption key not whole bytes",
        ));
    }
    if m.sensitivity.is_some() || m.outer_sens.is_some() {
        return Err(PfkeyError::new(
            EOPNOTSUPP,
            D::BadLabel,
            "sensitivity labels are not supported",
        ));
    }

    let mut cfg = SaConfig::new(proto, sa.spi, specified(src.ip()), dst.ip());
    cfg.state = state;
    cfg.encr_alg = encr_alg;
    cfg.auth_alg = auth_alg;
    if let Some(k) = &m.key_encrypt {
        cfg.encr_key = ipsec_core::KeyMaterial::new(k.expose());
    }
    if let Some(k) = &m.key_auth {
        cfg.auth_key = ipsec_core::KeyMaterial::new(k.expose());
    }
    cfg.ulp = dst.proto;

    // Mode and inner selectors.
    match (&m.inner_src, &m.inner_dst) {
        (None, None) => {
            if sa.flags & SADB_X_SAFLAGS_TUNNEL != 0 {
                return Err(PfkeyError::invalid(
                    D::MissingInnerSrc,
                    "tunnel flag without inner addresses",
                ));
            }
            cfg.sport = src.port();
            cfg.dport = dst.port();
        }
        (Some(_), None) => {
            return Err(PfkeyError::invalid(
                D::MissingInnerDst,
                "inner source without inner destination",
            ))
        }
        (None, Some(_)) => {
            return Err(PfkeyError::invalid(
                D::MissingInnerSrc,
                "inner destination without inner source",
            ))
        }
        (Some(is), Some(id)) => {
            let v4 = is.ip().is_ipv4();
            if v4 != id.ip().is_ipv4() {
                return Err(PfkeyError::invalid(
                    D::InnerAfMismatch,
                    "inner families differ",
                ));
            }
            if is.proto != id.proto {
                return Err(PfkeyError::invalid(
                    D::InnerProtoMismatch,
                    "inner protocols differ",
                ));
            }
            let want = if v4 { 4 } else { 41 };
            match dst.proto {
                0 => cfg.ulp = want,
                p if p == want => {}
                _ => {
                    return Err(PfkeyError::new(
                        EPROTOTYPE,
                        D::InnerAfMismatch,
                        "outer protocol does not carry the inner family",
                    ))
                }
            }
            if (src.port() != 0 || dst.port() != 0) && (is.port() != 0 || id.port() != 0) {
                return Err(PfkeyError::invalid(
                    D::DualPortSets,
                    "both outer and inner ports",
                ));
            }
            let prefix = |a: &Address| {
                (!(a.ip().is_unspecified() && a.prefixlen == 0)).then_some(Prefix {
                    addr: a.ip(),
                    len: a.prefixlen,
                })
            };
            cfg.mode = Mode::Tunnel;
            cfg.inner = InnerSelectors {
                src: prefix(is),
                dst: prefix(id),
                sport: is.port(),
                dport: id.port(),
                proto: is.proto,
            };
        }
    }

    // NAT traversal.
    if sa.flags & SADB_X_SAFLAGS_NATT_LOC != 0 && m.natt_loc.is_none() {
        return Err(PfkeyError::invalid(
            D::MissingNattLoc,
            "NAT-T local flag without address",
        ));
    }
    if sa.flags & SADB_X_SAFLAGS_NATT_REM != 0 && m.natt_rem.is_none() {
        return Err(PfkeyError::invalid(
            D::MissingNattRem,
            "NAT-T remote flag without address",
        ));
    }
    if m.natt_loc.is_some() || m.natt_rem.is_some() {
        if proto == Proto::Ah {
            return Err(PfkeyError::invalid(D::BadSaflags, "NAT-T is for ESP only"));
        }
        let fam = dst.ip().is_ipv4();
        if m.natt_loc.is_some_and(|a| a.ip().is_ipv4() != fam) {
            return Err(PfkeyError::invalid(
                D::BadNattLocAf,
                "NAT-T local address family",
            ));
        }
        if m.natt_rem.is_some_and(|a| a.ip().is_ipv4() != fam) {
            return Err(PfkeyError::invalid(
                D::BadNattRemAf,
                "NAT-T remote address family",
            ));
        }
        let port = |a: Option<Address>| match a.map(|a| a.port()) {
            None | Some(0) => NATT_PORT,
            Some(p) => p,
        };
        cfg.natt = Some(NatT {
            local_port: port(m.natt_loc),
            remote_port: port(m.natt_rem),
            local_addr: m.natt_loc.and_then(|a| specified(a.ip())),
            remote_addr: m.natt_rem.and_then(|a| specified(a.ip())),
            local_behind_nat: sa.flags & SADB_X_SAFLAGS_NATT_LOC != 0,
            remote_behind_nat: sa.flags & SADB_X_SAFLAGS_NATT_REM != 0,
        });
    }

    // Lifetimes.
    check_lifetimes(
        m.lifetime_hard.as_ref(),
        m.lifetime_soft.as_ref(),
        m.lifetime_idle.as_ref(),
    )?;
    cfg.hard = m
        .lifetime_hard
        .as_ref()
        .map(from_wire_lifetime)
        .unwrap_or_default();
    cfg.soft = m
        .lifetime_soft
        .as_ref()
        .map(from_wire_lifetime)
        .unwrap_or_default();
    cfg.idle = m
        .lifetime_idle
        .as_ref()
        .map(from_wire_lifetime)
        .unwrap_or_default();

    // Replay window, ESN and the other Ironswan options.
    let x = m.ironswan_sa.unwrap_or_default();
    cfg.replay_window = if m.ironswan_sa.is_some() {
        x.replay_window
    } else if sa.flags & SADB_SAFLAGS_NOREPLAY != 0 {
        0
    } else {
        u32::from(sa.replay)
    };
    if cfg.replay_window > ipsec_core::MAX_REPLAY_WINDOW {
        return Err(PfkeyError::invalid(
            D::InvalidReplay,
            "replay window above 4096",
        ));
    }
    cfg.esn = x.flags & IRONSWAN_SA_ESN != 0;
    cfg.allow_legacy = x.flags & IRONSWAN_SA_ALLOW_LEGACY != 0;
    cfg.copy_dscp = x.flags & IRONSWAN_SA_NO_COPY_DSCP == 0;
    cfg.padding_check = x.flags & IRONSWAN_SA_NO_PADDING_CHECK == 0;
    if let Some(r) = m.replay_value {
        cfg.replay_value = replay_value(&r, cfg.esn)?;
    }
    cfg.unique = if x.flags & IRONSWAN_SA_UNIQUE_BINDING != 0 {
        Some(UniqueBinding {
            sport: x.unique_sport,
            dport: x.unique_dport,
            proto: x.unique_proto,
        })
    } else if sa.flags & SADB_X_SAFLAGS_UNIQUE != 0 {
        let (sport, dport, proto) = match (&m.inner_src, &m.inner_dst) {
            (Some(is), Some(id)) => (is.port(), id.port(), is.proto),
            _ => (src.port(), dst.port(), dst.proto),
        };
        Some(UniqueBinding {
            sport,
            dport,
            proto,
        })
    } else {
        None
    };
    cfg.direction = match sa.flags & (SADB_X_SAFLAGS_INBOUND | SADB_X_SAFLAGS_OUTBOUND) {
        SADB_X_SAFLAGS_INBOUND => Direction::Inbound,
        SADB_X_SAFLAGS_OUTBOUND => Direction::Outbound,
        _ => Direction::Any,
    };

    // Identities and pair.
    cfg.src_id = m.ident_src.as_ref().map(ident_from_wire).transpose()?;
    cfg.dst_id = m.ident_dst.as_ref().map(ident_from_wire).transpose()?;
    cfg.pair_spi = m.pair.map(|p| p.spi);

    // Everything ipsec-core checks (SPI range, key lengths, weak keys, legacy algorithms,
    // combinations).
    Sa::new(cfg.clone(), now).map_err(|e| sa_error(&e))?;
    Ok(cfg)
}

/// The replay counter a `sadb_x_replay_ctr` gives: `replay64` is for ESN SAs only
/// (Solaris refuses it with `EOPNOTSUPP`), and when both counters are set they must agree.
pub fn replay_value(r: &ReplayValue, esn: bool) -> Result<u64, PfkeyError> {
    match (r.replay32, r.replay64) {
        (v, 0) => Ok(u64::from(v)),
        (0, v) if esn => Ok(v),
        (0, _) => Err(PfkeyError::new(
            EOPNOTSUPP,
            D::InvalidReplay,
            "64-bit replay counter without ESN",
        )),
        (a, b) if esn && u64::from(a) == (b & 0xffff_ffff) => Ok(b),
        _ => Err(PfkeyError::invalid(
            D::InvalidReplay,
            "32- and 64-bit replay counters disagree",
        )),
    }
}
