//! Per-socket policy (`IP_SEC_OPT` / `IPV6_SEC_OPT` with `ipsec_req_t`), engine side: the
//! request, its validation and privilege rules, the action it becomes, and latching.
//!
//! Semantics follow illumos spd.c `ipsec_set_req()`, `ipsec_prot_from_req()` and
//! `ipsec_actvec_from_req()`:
//! * `IPSEC_PREF_NEVER` in both `ah_req` and `esp_req` is bypass; anything else applies AH when
//!   `ah_req & REQUIRED`, ESP when `esp_req & REQUIRED`, ESP authentication when
//!   `esp_auth_alg != 0`, self-encapsulation when `self_encap_req & REQUIRED`, a unique SA when
//!   `(ah_req | esp_req) & UNIQUE`. Algorithm 0 is "any"; `SADB_AALG_ANY` (255) asks for
//!   authentication with any algorithm.
//! * A request with no NEVER/REQUIRED bit in any field resets the socket to no policy.
//! * Bits other than NEVER, REQUIRED and UNIQUE, or NEVER together with REQUIRED in one field:
//!   `EINVAL`. Any NEVER bit without privilege: `EPERM`.
//! * After `connect()`/`accept()` the policy is latched: further requests get `EINVAL`; so do
//!   requests on a listening TCP (or SCTP) socket.
//! * Per-socket policy applies to all the socket's traffic, both directions, IPv4 always and
//!   IPv6 for `AF_INET6` sockets, at priority `0x1000000`.

use core::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use ipsec_crypto::{auth_by_pfkey, encr_by_pfkey, AuthAlg};

use super::index::PolicyEntry;
use super::model::{
    ulp, validate_protection, Action, AlgSpec, EspAuth, EspSpec, Family, Protection, SaSharing,
};
use crate::sa::Identity;

/// `IPSEC_PREF_NEVER`: do not protect (bypass); privileged.
pub const IPSEC_PREF_NEVER: u32 = 0x01;
/// `IPSEC_PREF_REQUIRED`: protect.
pub const IPSEC_PREF_REQUIRED: u32 = 0x02;
/// `IPSEC_PREF_UNIQUE`: use an SA unique to this socket's 5-tuple.
pub const IPSEC_PREF_UNIQUE: u32 = 0x04;
/// `SADB_AALG_ANY` (ipsec_impl.h): authentication required, any algorithm.
pub const SADB_AALG_ANY: u8 = 255;
const REQ_MASK: u32 = IPSEC_PREF_NEVER | IPSEC_PREF_REQUIRED;
const VALID_BITS: u32 = REQ_MASK | IPSEC_PREF_UNIQUE;

/// `ipsec_req_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecReq {
    /// `ipsr_ah_req`.
    pub ah_req: u32,
    /// `ipsr_esp_req`.
    pub esp_req: u32,
    /// `ipsr_self_encap_req`.
    pub self_encap_req: u32,
    /// `ipsr_auth_alg` (PF_KEY `SADB_AALG_*`).
    pub auth_alg: u8,
    /// `ipsr_esp_alg` (PF_KEY `SADB_EALG_*`).
    pub esp_alg: u8,
    /// `ipsr_esp_auth_alg` (PF_KEY `SADB_AALG_*`).
    pub esp_auth_alg: u8,
}

/// A refused socket-option request, with its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOptError {
    /// `EINVAL`.
    Invalid(&'static str),
    /// `EPERM`.
    Permission(&'static str),
    /// No such socket registered (`EBADF`).
    NoSocket,
}

impl SockOptError {
    /// The errno value (Linux numbering: EPERM 1, EBADF 9, EINVAL 22).
    pub const fn errno(&self) -> i32 {
        match self {
            SockOptError::Invalid(_) => 22,
            SockOptError::Permission(_) => 1,
            SockOptError::NoSocket => 9,
        }
    }
}

impl fmt::Display for SockOptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockOptError::Invalid(why) => write!(f, "EINVAL: {why}"),
            SockOptError::Permission(why) => write!(f, "EPERM: {why}"),
            SockOptError::NoSocket => f.write_str("EBADF: no such socket"),
        }
    }
}

impl std::error::Error for SockOptError {}

impl IpsecReq {
    /// Size of the C structure (three `uint_t`, three `uint8_t`, padding).
    pub const C_SIZE: usize = 16;

    /// AH required with `auth_alg` (0 = any).
    pub const fn ah(auth_alg: u8) -> Self {
        Self {
            ah_req: IPSEC_PREF_REQUIRED,
            esp_req: 0,
            self_encap_req: 0,
            auth_alg,
            esp_alg: 0,
            esp_auth_alg: 0,
        }
    }
    /// ESP required with `esp_alg` and `esp_auth_alg` (0 = any / none).
    pub const fn esp(esp_alg: u8, esp_auth_alg: u8) -> Self {
        Self {
            ah_req: 0,
            esp_req: IPSEC_PREF_REQUIRED,
            self_encap_req: 0,
            auth_alg: 0,
            esp_alg,
            esp_auth_alg,
        }
    }
    /// Bypass (`IPSEC_PREF_NEVER` in AH and ESP).
    pub const fn bypass() -> Self {
        Self {
            ah_req: IPSEC_PREF_NEVER,
            esp_req: IPSEC_PREF_NEVER,
            self_encap_req: 0,
            auth_alg: 0,
            esp_alg: 0,
            esp_auth_alg: 0,
        }
    }

    /// From the C structure in native byte order (`setsockopt` option value).
    pub fn from_ne_bytes(b: &[u8]) -> Result<Self, SockOptError> {
        let word = |i: usize| -> Result<u32, SockOptError> {
            b.get(i..i + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(u32::from_ne_bytes)
                .ok_or(SockOptError::Invalid("option shorter than ipsec_req_t"))
        };
        let byte = |i: usize| {
            b.get(i)
                .copied()
                .ok_or(SockOptError::Invalid("option shorter than ipsec_req_t"))
        };
        Ok(Self {
            ah_req: word(0)?,
            esp_req: word(4)?,
            self_encap_req: word(8)?,
            auth_alg: byte(12)?,
            esp_alg: byte(13)?,
            esp_auth_alg: byte(14)?,
        })
    }

    /// The C structure in native byte order (`getsockopt` option value).
    pub fn to_ne_bytes(&self) -> [u8; Self::C_SIZE] {
        let mut b = [0u8; Self::C_SIZE];
        b[0..4].copy_from_slice(&self.ah_req.to_ne_bytes());
        b[4..8].copy_from_slice(&self.esp_req.to_ne_bytes());
        b[8..12].copy_from_slice(&self.self_encap_req.to_ne_bytes());
        b[12] = self.auth_alg;
        b[13] = self.esp_alg;
        b[14] = self.esp_auth_alg;
        b
    }

    /// No NEVER or REQUIRED bit anywhere: the request removes the socket's policy.
    pub const fn is_reset(&self) -> bool {
        (self.ah_req & REQ_MASK) == 0
            && (self.esp_req & REQ_MASK) == 0
            && (self.self_encap_req & REQ_MASK) == 0
    }

    /// Any NEVER bit: only privileged callers may ask.
    pub const fn needs_privilege(&self) -> bool {
        ((self.ah_req | self.esp_req | self.self_encap_req) & IPSEC_PREF_NEVER) != 0
    }

    /// Bits other than NEVER, REQUIRED and UNIQUE: `EINVAL`.
    pub fn check_known_bits(&self) -> Result<(), SockOptError> {
        if [self.ah_req, self.esp_req, self.self_encap_req]
            .iter()
            .any(|v| v & !VALID_BITS != 0)
        {
            return Err(SockOptError::Invalid("unknown request bits"));
        }
        Ok(())
    }

    /// NEVER together with REQUIRED in one field: `EINVAL`.
    pub fn check_exclusive(&self) -> Result<(), SockOptError> {
        if [self.ah_req, self.esp_req, self.self_encap_req]
            .iter()
            .any(|v| v & REQ_MASK == REQ_MASK)
        {
            return Err(SockOptError::Invalid(
                "IPSEC_PREF_NEVER and IPSEC_PREF_REQUIRED together",
            ));
        }
        Ok(())
    }

    /// The bit checks of `ipsec_set_req()` (privilege aside; a reset request is not checked).
    pub fn check_bits(&self) -> Result<(), SockOptError> {
        if self.is_reset() {
            return Ok(());
        }
        self.check_known_bits()?;
        self.check_exclusive()
    }

    /// The action the request stands for (`None` for a reset), after the bit checks.
    /// Unknown algorithm numbers are `EINVAL`.
    pub fn to_action(&self) -> Result<Option<Action>, SockOptError> {
        self.check_bits()?;
        if self.is_reset() {
            return Ok(None);
        }
        if (self.ah_req & IPSEC_PREF_NEVER) != 0 && (self.esp_req & IPSEC_PREF_NEVER) != 0 {
            return Ok(Some(Action::Bypass));
        }
        let auth = |n: u8, what: &'static str| -> Result<AlgSpec<AuthAlg>, SockOptError> {
            if n == 0 || n == SADB_AALG_ANY {
                return Ok(AlgSpec::any());
            }
            match auth_by_pfkey(n) {
                Some(i) if i.alg != AuthAlg::None => Ok(AlgSpec::of(i.alg)),
                _ => Err(SockOptError::Invalid(what)),
            }
        };
        let use_ah = self.ah_req & IPSEC_PREF_REQUIRED != 0;
        let use_esp = self.esp_req & IPSEC_PREF_REQUIRED != 0;
        let ah = if use_ah {
            Some(auth(self.auth_alg, "unknown AH algorithm")?)
        } else {
            None
        };
        let esp = if use_esp {
            let encr = if self.esp_alg == 0 {
                AlgSpec::any()
            } else {
                match encr_by_pfkey(self.esp_alg) {
                    Some(i) => AlgSpec::of(i.alg),
                    None => return Err(SockOptError::Invalid("unknown ESP encryption algorithm")),
                }
            };
            let auth = if self.esp_auth_alg == 0 {
                EspAuth::Optional
            } else {
                EspAuth::Required(auth(
                    self.esp_auth_alg,
                    "unknown ESP authentication algorithm",
                )?)
            };
            Some(EspSpec { encr, auth })
        } else {
            None
        };
        let p = Protection {
            ah,
            esp,
            sa: if (self.ah_req | self.esp_req) & IPSEC_PREF_UNIQUE != 0 {
                SaSharing::Unique
            } else {
                SaSharing::Shared
            },
            self_encap: self.self_encap_req & IPSEC_PREF_REQUIRED != 0,
        };
        validate_protection(&p, true).map_err(|_| SockOptError::Invalid("invalid algorithm"))?;
        Ok(Some(Action::ipsec(p)))
    }

    /// The request an action stands for (`getsockopt`; spd.c `ipsec_req_from_act`).
    pub fn from_action(a: &Action) -> Self {
        match a {
            Action::Bypass => Self::bypass(),
            Action::Drop => Self::default(),
            Action::Ipsec(alts) => {
                let Some(p) = alts.first() else {
                    return Self::default();
                };
                let mut r = Self::default();
                let pf_auth =
                    |s: &AlgSpec<AuthAlg>| s.alg.map_or(0, |a| ipsec_crypto::auth_info(a).pfkey);
                if let Some(ah) = &p.ah {
                    r.ah_req |= IPSEC_PREF_REQUIRED;
                    r.auth_alg = pf_auth(ah);
                }
                if let Some(esp) = &p.esp {
                    r.esp_req |= IPSEC_PREF_REQUIRED;
                    r.esp_alg = esp.encr.alg.map_or(0, |a| ipsec_crypto::encr_info(a).pfkey);
                    if let EspAuth::Required(a) = &esp.auth {
                        r.esp_auth_alg = match a.alg {
                            None => SADB_AALG_ANY,
                            Some(_) => pf_auth(a),
                        };
                    }
                }
                if p.sa == SaSharing::Unique {
                    r.ah_req |= IPSEC_PREF_UNIQUE;
                    r.esp_req |= IPSEC_PREF_UNIQUE;
                }
                if p.self_encap {
                    r.self_encap_req |= IPSEC_PREF_REQUIRED;
                }
                r
            }
        }
    }
}

/// What the engine knows about a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// `AF_INET` (policy for IPv4 only) or `AF_INET6` (IPv4 and IPv6).
    pub family: Family,
    /// The socket's protocol (TCP, UDP, SCTP, or a raw protocol).
    pub proto: u8,
    /// The owner has the privilege to configure IPsec (root or `CAP_NET_ADMIN`, the Linux form
    /// of `PRIV_SYS_IP_CONFIG`).
    pub privileged: bool,
}

/// A connection's policy, frozen at `connect()`/`accept()` (spd.c `conn_latch`).
#[derive(Debug)]
pub(crate) struct Latch {
    /// Outbound policy found for the connection's tuple (`None`: no policy).
    pub(crate) out: Option<Arc<PolicyEntry>>,
    /// Inbound policy found for the connection's tuple.
    pub(crate) inb: Option<Arc<PolicyEntry>>,
    /// The alternative of `inb` that accepted the first protected packet
    /// (`conn_latch_in_action`).
    pub(crate) in_action: OnceLock<usize>,
    /// Identities of the SA that first protected an inbound packet: (remote = SA source,
    /// local = SA destination) (`ipl_remote_cid`, `ipl_local_cid`).
    pub(crate) ids: OnceLock<(Option<Identity>, Option<Identity>)>,
    /// Local and remote endpoints.
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
}

/// A registered socket.
#[derive(Debug)]
pub(crate) struct SocketState {
    pub(crate) info: SocketInfo,
    pub(crate) req: Option<IpsecReq>,
    pub(crate) policy: Option<Arc<PolicyEntry>>,
    pub(crate) listening: bool,
    pub(crate) latch: Option<Arc<Latch>>,
}

impl SocketState {
    pub(crate) fn new(info: SocketInfo) -> Self {
        Self {
            info,
            req: None,
            policy: None,
            listening: false,
            latch: None,
        }
    }

    /// The socket's own policy, if it has one for packets of family `fam`.
    pub(crate) fn policy_for(&self, fam: Family) -> Option<&Arc<PolicyEntry>> {
        match (self.info.family, fam) {
            (Family::V4, Family::V6) => None,
            _ => self.policy.as_ref(),
        }
    }

    /// Whether connect/accept latches this socket's policy (TCP, UDP, SCTP).
    pub(crate) fn latches(&self) -> bool {
        matches!(self.info.proto, ulp::TCP | ulp::UDP | ulp::SCTP)
    }
}
