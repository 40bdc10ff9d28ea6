//! [`SaSpec::to_config`]: from what the user wrote to an `ipsec_core::SaConfig`.

use std::net::IpAddr;

use ipsec_core::{InnerSelectors, Mode, NatT, Proto, Sa, SaConfig, SaError, SaState};
use ipsec_crypto::{auth_info, encr_info, CryptoError, EncrAlg};

use super::{ParseError, SaSpec, SaType};

/// NAT-T port used when `nat_lport` / `nat_rport` is not given (RFC 3948).
pub(crate) const NATT_PORT: u16 = 4500;

/// Duplicate-detection slot of an extension (synonyms and `6` forms share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Spi,
    PairSpi,
    Direction,
    Replay,
    ReplayValue,
    State,
    AuthAlg,
    EncrAlg,
    AuthKey,
    EncrKey,
    Src,
    Dst,
    Sport,
    Dport,
    Proto,
    Encap,
    NatLoc,
    NatRem,
    NatLport,
    NatRport,
    InnerSrc,
    InnerDst,
    InnerSport,
    InnerDport,
    InnerProto,
    SoftAlloc,
    SoftBytes,
    SoftAddtime,
    SoftUsetime,
    HardAlloc,
    HardBytes,
    HardAddtime,
    HardUsetime,
    IdleAddtime,
    IdleUsetime,
    SrcId,
    DstId,
    Esn,
    AllowLegacy,
    NoCopyDscp,
    NoPaddingCheck,
    Unique,
}

impl Slot {
    /// Words for "Can only specify single ...".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Slot::Spi => "SPI",
            Slot::PairSpi => "pair SPI",
            Slot::Direction => "direction (inbound or outbound)",
            Slot::Replay => "replay window size",
            Slot::ReplayValue => "replay value",
            Slot::State => "SA state",
            Slot::AuthAlg => "authentication algorithm",
            Slot::EncrAlg => "encryption algorithm",
            Slot::AuthKey => "authentication key",
            Slot::EncrKey => "encryption key",
            Slot::Src => "source address",
            Slot::Dst => "destination address",
            Slot::Sport => "source port",
            Slot::Dport => "destination port",
            Slot::Proto => "protocol",
            Slot::Encap => "encapsulation",
            Slot::NatLoc => "NAT-T local address",
            Slot::NatRem => "NAT-T remote address",
            Slot::NatLport => "NAT-T local port",
            Slot::NatRport => "NAT-T remote port",
            Slot::InnerSrc => "inner source address",
            Slot::InnerDst => "inner destination address",
            Slot::InnerSport => "inner source port",
            Slot::InnerDport => "inner destination port",
            Slot::InnerProto => "inner protocol",
            Slot::SoftAlloc => "soft allocation limit",
            Slot::SoftBytes => "soft byte limit",
            Slot::SoftAddtime => "soft past-add lifetime",
            Slot::SoftUsetime => "soft past-use lifetime",
            Slot::HardAlloc => "hard allocation limit",
            Slot::HardBytes => "hard byte limit",
            Slot::HardAddtime => "hard past-add lifetime",
            Slot::HardUsetime => "hard past-use lifetime",
            Slot::IdleAddtime => "idle past-add lifetime",
            Slot::IdleUsetime => "idle past-use lifetime",
            Slot::SrcId => "source identity",
            Slot::DstId => "destination identity",
            Slot::Esn => "esn flag",
            Slot::AllowLegacy => "allow_legacy flag",
            Slot::NoCopyDscp => "no_copy_dscp flag",
            Slot::NoPaddingCheck => "no_padding_check flag",
            Slot::Unique => "unique binding",
        }
    }
}

/// Where a command and its extensions were written: the positions of `to_config` errors.
/// Diagnostics only: two specs with equal values compare equal wherever they were written.
#[derive(Clone, Default)]
pub(crate) struct Spans {
    pub file: String,
    pub cmd_col: usize,
    pub cmd_word: String,
    pub end_line: usize,
    pub end_col: usize,
    pub end_token: &'static str,
    /// (slot, line, column, keyword as written)
    pub exts: Vec<(Slot, usize, usize, String)>,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl PartialEq for Spans {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Spans {
    pub(crate) fn find(&self, slot: Slot) -> Option<&(Slot, usize, usize, String)> {
        self.exts.iter().find(|e| e.0 == slot)
    }
}

impl SaSpec {
    fn err_at(&self, slot: Slot, expected: impl Into<String>) -> ParseError {
        match self.spans.find(slot) {
            Some((_, line, col, kw)) => ParseError {
                file: self.spans.file.clone(),
                line: *line,
                column: *col,
                token: kw.clone(),
                expected: expected.into(),
            },
            None => self.err_cmd(expected),
        }
    }

    /// An error about the command as a whole, at its keyword.
    fn err_cmd(&self, expected: impl Into<String>) -> ParseError {
        ParseError {
            file: self.spans.file.clone(),
            line: self.line,
            column: self.spans.cmd_col,
            token: self.spans.cmd_word.clone(),
            expected: expected.into(),
        }
    }

    /// An error about something missing, at the end of the command.
    pub(crate) fn err_end(&self, expected: impl Into<String>) -> ParseError {
        ParseError {
            file: self.spans.file.clone(),
            line: self.spans.end_line,
            column: self.spans.end_col,
            token: self.spans.end_token.to_string(),
            expected: expected.into(),
        }
    }

    /// The first of `slots` that was written (for error positions).
    fn first_of(&self, slots: &[Slot]) -> Slot {
        slots
            .iter()
            .copied()
            .find(|s| self.spans.find(*s).is_some())
            .unwrap_or(slots[0])
    }

    /// Builds the SA this add/update describes, applying defaults and the Solaris tunnel-mode
    /// rule (tunnel mode exactly when proto is 4 or 41 and an inner address or port is given).
    /// Errors (missing spi/dst, wrong key length for the algorithm, bad combinations) carry
    /// the line.
    ///
    /// Defaults: source unspecified, state mature, replay window 0, transport mode, no
    /// lifetimes, NAT-T ports 4500, DSCP copy and padding check on. The result is checked by
    /// building the SA with `ipsec_core::Sa::new`, so key lengths (salt included), weak DES
    /// keys, legacy algorithms without `allow_legacy` and algorithm combinations surface the
    /// ipsec-crypto / ipsec-core error text.
    ///
    /// This describes a complete SA: an `update` that only changes lifetimes has no keys and
    /// fails here; read its [`SaSpec`] fields instead.
    pub fn to_config(&self) -> Result<SaConfig, ParseError> {
        let proto = match self.satype {
            SaType::Ah => Proto::Ah,
            SaType::Esp => Proto::Esp,
            SaType::All => return Err(self.err_cmd("an SA type (ah, esp)")),
        };
        let spi = self
            .spi
            .ok_or_else(|| self.err_end(format!("`spi` ({} needs an SPI)", self.spans.cmd_word)))?;
        let dst = self.dst.ok_or_else(|| {
            self.err_end(format!(
                "`dst` ({} needs a destination address)",
                self.spans.cmd_word
            ))
        })?;
        if let Some(src) = self.src {
            if src.is_ipv4() != dst.is_ipv4() {
                return Err(self.err_at(
                    Slot::Src,
                    "a source address of the same family as the destination",
                ));
            }
        }
        let mut cfg = SaConfig::new(proto, spi, self.src, dst);

        // Algorithms and keys.
        if proto == Proto::Ah && self.encr_alg.is_some() {
            return Err(self.err_at(Slot::EncrAlg, "no encryption algorithm with SA type ah"));
        }
        if self.encr_key.is_some() {
            match self.encr_alg {
                None => {
                    return Err(self.err_at(
                        Slot::EncrKey,
                        "`encr_alg` with an encryption key (no encryption algorithm given)",
                    ))
                }
                Some(EncrAlg::Null) => {
                    return Err(self.err_at(Slot::EncrKey, "no key with encr_alg null"))
                }
                Some(_) => {}
            }
        }
        if self.auth_key.is_some() && self.auth_alg.is_none() {
            return Err(self.err_at(
                Slot::AuthKey,
                "`auth_alg` with an authentication key (no authentication algorithm given)",
            ));
        }
        for (bits, slot, alg_name) in [
            (
                self.encr_key_bits,
                Slot::EncrKey,
                self.encr_alg.map(|a| encr_info(a).name),
            ),
            (
                self.auth_key_bits,
                Slot::AuthKey,
                self.auth_alg.map(|a| auth_info(a).name),
            ),
        ] {
            if let Some(b) = bits {
                if b % 8 != 0 {
                    return Err(self.err_at(
                        slot,
                        format!(
                            "a key of whole bytes for {} (got {b} bits)",
                            alg_name.unwrap_or("the algorithm")
                        ),
                    ));
                }
            }
        }
        cfg.encr_alg = self.encr_alg;
        cfg.auth_alg = self.auth_alg;
        if let Some(k) = &self.encr_key {
            cfg.encr_key = k.clone();
        }
        if let Some(k) = &self.auth_key {
            cfg.auth_key = k.clone();
        }

        // Selectors and mode.
        cfg.sport = self.sport.unwrap_or(0);
        cfg.dport = self.dport.unwrap_or(0);
        let inner_given = self.inner_src.is_some()
            || self.inner_dst.is_some()
            || self.inner_sport.is_some()
            || self.inner_dport.is_some()
            || self.inner_proto.is_some();
        if inner_given {
            let fam_src = self.inner_src.map(|p| p.addr.is_ipv4());
            let fam_dst = self.inner_dst.map(|p| p.addr.is_ipv4());
            if let (Some(a), Some(b)) = (fam_src, fam_dst) {
                if a != b {
                    return Err(self.err_at(
                        Slot::InnerDst,
                        "an inner destination of the same address family as the inner source",
                    ));
                }
            }
            let inner_v4 = fam_src.or(fam_dst);
            cfg.ulp = match self.proto {
                None | Some(0) => match inner_v4.unwrap_or(dst.is_ipv4()) {
                    true => 4,
                    false => 41,
                },
                Some(4) if inner_v4 == Some(false) => {
                    return Err(self.err_at(Slot::Proto, "proto 41 (IPv6) for IPv6 inner addresses"))
                }
                Some(41) if inner_v4 == Some(true) => {
                    return Err(self.err_at(Slot::Proto, "proto 4 (IPv4) for IPv4 inner addresses"))
                }
                Some(p @ (4 | 41)) => p,
                Some(_) => {
                    return Err(self.err_at(
                        Slot::Proto,
                        "proto 4 or 41 with inner selectors (a tunnel-mode SA)",
                    ))
                }
            };
            cfg.mode = Mode::Tunnel;
            cfg.inner = InnerSelectors {
                src: self.inner_src,
                dst: self.inner_dst,
                sport: self.inner_sport.unwrap_or(0),
                dport: self.inner_dport.unwrap_or(0),
                proto: self.inner_proto.unwrap_or(0),
            };
        } else {
            cfg.mode = Mode::Transport;
            cfg.ulp = self.proto.unwrap_or(0);
        }

        // NAT traversal.
        let nat_slots = [Slot::NatLoc, Slot::NatRem, Slot::NatLport, Slot::NatRport];
        let any_nat = self.nat_loc.is_some()
            || self.nat_rem.is_some()
            || self.nat_lport.is_some()
            || self.nat_rport.is_some();
        if self.encap_udp {
            if proto == Proto::Ah {
                return Err(self.err_at(Slot::Encap, "no UDP encapsulation with SA type ah"));
            }
            if !any_nat {
                return Err(self.err_at(
                    Slot::Encap,
                    "a NAT-T address or port (nat_loc, nat_rem, nat_lport, nat_rport) with `encap udp`",
                ));
            }
            for (addr, slot) in [(self.nat_loc, Slot::NatLoc), (self.nat_rem, Slot::NatRem)] {
                if addr.is_some_and(|a: IpAddr| a.is_ipv4() != dst.is_ipv4()) {
                    return Err(self.err_at(
                        slot,
                        "a NAT-T address of the same family as the destination",
                    ));
                }
            }
            cfg.natt = Some(NatT {
                local_port: self.nat_lport.unwrap_or(NATT_PORT),
                remote_port: self.nat_rport.unwrap_or(NATT_PORT),
                local_addr: self.nat_loc,
                remote_addr: self.nat_rem,
                // As Solaris' ipseckey: a NAT-T address or port of a side flags that side
                // as NATed (SADB_X_SAFLAGS_NATT_LOC / _REM); only a NATed local side sends
                // NAT keepalives.
                local_behind_nat: self.nat_loc.is_some() || self.nat_lport.is_some(),
                remote_behind_nat: self.nat_rem.is_some() || self.nat_rport.is_some(),
            });
        } else if any_nat {
            return Err(self.err_at(
                self.first_of(&nat_slots),
                "`encap udp` with any NAT-T address or port",
            ));
        }

        // The rest.
        cfg.replay_window = self.replay.unwrap_or(0);
        cfg.replay_value = self.replay_value.unwrap_or(0);
        cfg.esn = self.esn;
        cfg.allow_legacy = self.allow_legacy;
        cfg.state = self.state.unwrap_or(SaState::Mature);
        cfg.soft = self.soft.resolve();
        cfg.hard = self.hard.resolve();
        cfg.idle = self.idle.resolve();
        cfg.src_id = self.src_id.clone();
        cfg.dst_id = self.dst_id.clone();
        cfg.pair_spi = self.pair_spi;
        cfg.unique = self.unique;
        cfg.direction = self.direction.unwrap_or_default();
        cfg.copy_dscp = !self.no_copy_dscp;
        cfg.padding_check = !self.no_padding_check;

        // What ipsec-core would refuse: keys, algorithms, SPI, replay window.
        if let Err(e) = Sa::new(cfg.clone(), 0) {
            let slot = match &e {
                SaError::ReservedSpi(_) => Slot::Spi,
                SaError::ReplayTooLarge(_) => Slot::Replay,
                SaError::AddressFamilyMismatch => Slot::Src,
                SaError::Key { which, err } => {
                    let on_key =
                        matches!(err, CryptoError::BadKeyLength { .. } | CryptoError::WeakKey);
                    let (k, a) = if *which == "encryption" {
                        (Slot::EncrKey, Slot::EncrAlg)
                    } else {
                        (Slot::AuthKey, Slot::AuthAlg)
                    };
                    if on_key {
                        self.first_of(&[k, a])
                    } else {
                        self.first_of(&[a, k])
                    }
                }
                SaError::BadAlgorithm(_) => self.first_of(&[Slot::AuthAlg, Slot::EncrAlg]),
                _ => {
                    return Err(self.err_end(format!("a usable SA ({e})")));
                }
            };
            return Err(self.err_at(slot, format!("a usable SA ({e})")));
        }
        Ok(cfg)
    }
}
