//! The Security Association model: every field a PF_KEY v2 SA carries (RFC 2367 plus the Solaris
//! `SADB_X_*` extensions), the keyed transforms built from it, and its per-SA counters.

use core::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipsec_crypto::{AuthAlg, CryptoError, EncrAlg, EspEncr, Integ};
use zeroize::Zeroizing;

use crate::drop::DropCounters;
use crate::replay::{ReplayWindow, MAX_REPLAY_WINDOW};

/// SA type (PF_KEY `sadb_msg_satype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// Authentication Header (SADB_SATYPE_AH = 2, IP protocol 51).
    Ah,
    /// Encapsulating Security Payload (SADB_SATYPE_ESP = 3, IP protocol 50).
    Esp,
}

impl Proto {
    /// The PF_KEY SA type number.
    pub const fn satype(self) -> u8 {
        match self {
            Proto::Ah => 2,
            Proto::Esp => 3,
        }
    }
    /// The IP protocol number.
    pub const fn ip_proto(self) -> u8 {
        match self {
            Proto::Ah => 51,
            Proto::Esp => 50,
        }
    }
    /// `ah` or `esp`.
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Ah => "ah",
            Proto::Esp => "esp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Transport or tunnel mode. Solaris rule: tunnel mode exactly when the inner protocol is 4 or 41
/// and an inner address or port is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Protects the payload of the packet; the IP header stays.
    Transport,
    /// Protects a whole inner IP packet inside a new outer header.
    Tunnel,
}

/// SA state (PF_KEY `sadb_sa_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaState {
    /// Created by GETSPI, waiting for keys (0).
    Larval,
    /// Usable (1).
    Mature,
    /// Soft lifetime passed: still usable, should be replaced (2).
    Dying,
    /// Hard lifetime passed or sequence space exhausted: unusable (3).
    Dead,
}

impl SaState {
    /// PF_KEY number.
    pub const fn number(self) -> u8 {
        match self {
            SaState::Larval => 0,
            SaState::Mature => 1,
            SaState::Dying => 2,
            SaState::Dead => 3,
        }
    }
    /// From the PF_KEY number.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            0 => Some(SaState::Larval),
            1 => Some(SaState::Mature),
            2 => Some(SaState::Dying),
            3 => Some(SaState::Dead),
            _ => None,
        }
    }
    /// Packets may be processed with the SA.
    pub const fn usable(self) -> bool {
        matches!(self, SaState::Mature | SaState::Dying)
    }
}

/// Key material as carried in PF_KEY key extensions. Zeroized on drop; `Debug` shows only its size.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Wraps key bytes.
    pub fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
    /// The key bytes (for building transforms and for explicitly requested dumps).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Length in bits.
    pub fn bits(&self) -> usize {
        self.0.len() * 8
    }
    /// No key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial(<{} bits redacted>)", self.bits())
    }
}

/// One set of lifetime limits (PF_KEY `sadb_lifetime`); 0 in a field means "no limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Packets (`sadb_lifetime_allocations`).
    pub packets: u64,
    /// Bytes of protected payload.
    pub bytes: u64,
    /// Seconds after the SA was added (or matured from larval).
    pub addtime: u64,
    /// Seconds after first use.
    pub usetime: u64,
}

impl Lifetime {
    /// True when no limit is set.
    pub fn is_unlimited(&self) -> bool {
        *self == Lifetime::default()
    }
}

/// An address prefix used as an inner selector of a tunnel-mode SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

impl Prefix {
    /// A host prefix (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    /// Whether `a` lies inside this prefix (always false across address families).
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(x)) => {
                let len = u32::from(self.len.min(32));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(n) & mask == u32::from(x) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(x)) => {
                let len = u32::from(self.len.min(128));
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                u128::from(n) & mask == u128::from(x) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Inner selectors of a tunnel-mode SA (PF_KEY INNER_SRC/INNER_DST, with ports and protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InnerSelectors {
    /// Inner source prefix (None = any).
    pub src: Option<Prefix>,
    /// Inner destination prefix (None = any).
    pub dst: Option<Prefix>,
    /// Inner source port (0 = any).
    pub sport: u16,
    /// Inner destination port (0 = any).
    pub dport: u16,
    /// Inner upper-layer protocol (0 = any).
    pub proto: u8,
}

/// NAT-Traversal (RFC 3948) parameters of an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatT {
    /// Local UDP port (normally 4500).
    pub local_port: u16,
    /// Remote UDP port (normally 4500, or what the NAT mapped).
    pub remote_port: u16,
    /// Original local address before NAT (nat_loc), if known.
    pub local_addr: Option<IpAddr>,
    /// Original remote address before NAT (nat_rem), if known.
    pub remote_addr: Option<IpAddr>,
    /// This host is behind a NAT (PF_KEY `SADB_X_SAFLAGS_NATT_LOC`): NAT keepalives
    /// (RFC 3948 §2.3) are ours to send on the outbound SA.
    pub local_behind_nat: bool,
    /// The peer is behind a NAT (`SADB_X_SAFLAGS_NATT_REM`).
    pub remote_behind_nat: bool,
}

/// Identity types (PF_KEY `sadb_ident_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityType {
    /// An address prefix (1).
    Prefix,
    /// A fully qualified domain name (2).
    Fqdn,
    /// user@fqdn (3).
    UserFqdn,
    /// X.500 distinguished name (4, Solaris SADB_X_IDENTTYPE_DN).
    Dn,
    /// Key ID (6).
    KeyId,
}

/// An identity bound to an SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Kind of identity.
    pub kind: IdentityType,
    /// Its text.
    pub value: String,
}

/// Direction hint (SADB_X_SAFLAGS_INBOUND / OUTBOUND).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Unspecified: usable either way.
    #[default]
    Any,
    /// Receives.
    Inbound,
    /// Sends.
    Outbound,
}

/// Binding of an SA to one 5-tuple (IPSEC_PREF_UNIQUE / `sa unique`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UniqueBinding {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Upper-layer protocol.
    pub proto: u8,
}

/// Everything needed to create an SA. This is what `ipseckey add` or PF_KEY ADD/UPDATE supply.
#[derive(Clone, Debug)]
pub struct SaConfig {
    /// AH or ESP.
    pub proto: Proto,
    /// Security Parameter Index (never 0; 1..255 are reserved).
    pub spi: u32,
    /// Source address (None = unspecified; replay protection is then forced off, as Solaris does).
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol of the outer address extension (0 = any; 4/41 with inner selectors
    /// select tunnel mode).
    pub ulp: u8,
    /// Source port of the address extension (0 = any).
    pub sport: u16,
    /// Destination port (0 = any).
    pub dport: u16,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Inner selectors (tunnel mode).
    pub inner: InnerSelectors,
    /// ESP encryption algorithm (None for AH).
    pub encr_alg: Option<EncrAlg>,
    /// Encryption key (key || salt).
    pub encr_key: KeyMaterial,
    /// Integrity algorithm (AuthAlg::None or None for AEAD-only ESP).
    pub auth_alg: Option<AuthAlg>,
    /// Authentication key.
    pub auth_key: KeyMaterial,
    /// Replay window in packets, 0..=4096.
    pub replay_window: u32,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Initial value of the replay counter (`replay_value`).
    pub replay_value: u64,
    /// Permit RFC 8221 MUST NOT algorithms (DES, HMAC-MD5 for ESP, ...).
    pub allow_legacy: bool,
    /// Initial state (Mature unless a larval SA is being created).
    pub state: SaState,
    /// Soft lifetime.
    pub soft: Lifetime,
    /// Hard lifetime.
    pub hard: Lifetime,
    /// Idle lifetime (addtime = idle after add, usetime = idle after last use), seconds.
    pub idle: Lifetime,
    /// NAT-T encapsulation.
    pub natt: Option<NatT>,
    /// Source identity.
    pub src_id: Option<Identity>,
    /// Destination identity.
    pub dst_id: Option<Identity>,
    /// SPI of the paired SA (same addresses reversed).
    pub pair_spi: Option<u32>,
    /// Unique-SA binding.
    pub unique: Option<UniqueBinding>,
    /// Direction hint.
    pub direction: Direction,
    /// Copy the inner DSCP to the outer header in tunnel mode (default on).
    pub copy_dscp: bool,
    /// Check ESP padding bytes (Solaris `ipsecesp_padding_check`, default on).
    pub padding_check: bool,
}

impl SaConfig {
    /// A transport-mode SA with defaults everywhere else.
    pub fn new(proto: Proto, spi: u32, src: Option<IpAddr>, dst: IpAddr) -> Self {
        Self {
            proto,
            spi,
            src,
            dst,
            ulp: 0,
            sport: 0,
            dport: 0,
            mode: Mode::Transport,
            inner: InnerSelectors::default(),
            encr_alg: None,
            encr_key: KeyMaterial::default(),
            auth_alg: None,
            auth_key: KeyMaterial::default(),
            replay_window: 0,
            esn: false,
            replay_value: 0,
            allow_legacy: false,
            state: SaState::Mature,
            soft: Lifetime::default(),
            hard: Lifetime::default(),
            idle: Lifetime::default(),
            natt: None,
            src_id: None,
            dst_id: None,
            pair_spi: None,
            unique: None,
            direction: Direction::Any,
            copy_dscp: true,
            padding_check: true,
        }
    }
}

/// Why an SA configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaError {
    /// SPI 0 is reserved and 1..255 are IANA-reserved.
    ReservedSpi(u32),
    /// Replay window larger than 4096.
    ReplayTooLarge(u32),
    /// AH needs an integrity algorithm; ESP needs encryption or integrity; ...
    MissingAlgorithm(&'static str),
    /// An algorithm not valid for this protocol (e.g. encryption on AH).
    BadAlgorithm(&'static str),
    /// Source and destination have different address families.
    AddressFamilyMismatch,
    /// The key was refused.
    Key {
        /// Which key.
        which: &'static str,
        /// Why.
        err: CryptoError,
    },
    /// An SA with this <proto, dst, SPI> (and source) already exists.
    Exists,
    /// No such SA.
    NotFound,
}

impl fmt::Display for SaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaError::ReservedSpi(s) => {
                write!(f, "SPI {s:#x} is reserved (0 and 1-255 may not be used)")
            }
            SaError::ReplayTooLarge(n) => write!(
                f,
                "replay window {n} exceeds the maximum of {MAX_REPLAY_WINDOW}"
            ),
            SaError::MissingAlgorithm(s) => write!(f, "missing algorithm: {s}"),
            SaError::BadAlgorithm(s) => write!(f, "algorithm not allowed: {s}"),
            SaError::AddressFamilyMismatch => {
                f.write_str("source and destination address families differ")
            }
            SaError::Key { which, err } => write!(f, "{which} key refused: {err}"),
            SaError::Exists => f.write_str("SA already exists"),
            SaError::NotFound => f.write_str("no such SA"),
        }
    }
}

impl std::error::Error for SaError {}

/// Per-SA traffic counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaStats {
    /// Packets processed successfully.
    pub packets: u64,
    /// Protected payload bytes processed successfully (counts toward byte lifetimes).
    pub bytes: u64,
    /// Drops attributed to this SA, per reason.
    pub drops: DropCounters,
}

/// Lifetime transitions reported by [`Sa::age`] and the SADB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Soft limit reached: the SA is now dying (PF_KEY EXPIRE with a soft lifetime).
    Soft,
    /// Hard limit reached: the SA is dead and must be deleted (EXPIRE with a hard lifetime).
    Hard,
    /// Idle limit reached.
    Idle,
}

/// A live SA: configuration, keyed transforms, sequence counters, replay window, counters.
pub struct Sa {
    cfg: SaConfig,
    /// The keyed transforms, built on first use: a key schedule (about 600 bytes for
    /// AES-GCM) costs memory only for SAs that carry traffic, so a million idle SAs fit in
    /// well under 1 KiB each. [`Sa::new`] and [`Sa::mature`] key them once to validate.
    /// Shared (`Arc`) so that a data plane's worker threads can run the crypto of a batch
    /// on them without holding the lock around the SADB (see [`SaCrypto`]).
    keyed: OnceLock<Arc<Transforms>>,
    pub(crate) replay: ReplayWindow,
    /// Last sequence number sent (0 = none yet).
    pub(crate) seq_out: u64,
    /// Counters.
    pub stats: SaStats,
    state: SaState,
    add_time: u64,
    first_use: Option<u64>,
    last_use: u64,
    soft_fired: bool,
}

impl fmt::Debug for Sa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sa")
            .field("proto", &self.cfg.proto)
            .field("spi", &format_args!("{:#x}", self.cfg.spi))
            .field("src", &self.cfg.src)
            .field("dst", &self.cfg.dst)
            .field("mode", &self.cfg.mode)
            .field("encr", &self.cfg.encr_alg)
            .field("auth", &self.cfg.auth_alg)
            .field("state", &self.state)
            .field("seq_out", &self.seq_out)
            .field("replay", &self.replay)
            .field("stats", &self.stats)
            .finish()
    }
}

/// The keyed transforms of an SA.
pub(crate) struct Transforms {
    pub(crate) encr: Option<EspEncr>,
    integ: Option<Integ>,
}

/// A shared handle on an SA's keyed transforms, as they were when it was taken: crypto
/// prepared under the SADB's lock runs on it later on another thread. Its identity tells
/// whether the SA was keyed again in between ([`SaCrypto::same`]). No `Debug` output of
/// key material: it prints nothing but its type.
#[derive(Clone)]
pub struct SaCrypto(pub(crate) Arc<Transforms>);

impl SaCrypto {
    /// Whether both handles are the very same key schedule.
    pub fn same(&self, other: &SaCrypto) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for SaCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaCrypto")
    }
}

impl Sa {
    /// Validates `cfg` (keying its transforms once, so bad or weak keys are refused here)
    /// and creates the SA at time `now` (seconds). The transforms are keyed again on first
    /// use.
    pub fn new(cfg: SaConfig, now: u64) -> Result<Self, SaError> {
        if cfg.spi <= 255 {
            return Err(SaError::ReservedSpi(cfg.spi));
        }
        if cfg.replay_window > MAX_REPLAY_WINDOW {
            return Err(SaError::ReplayTooLarge(cfg.replay_window));
        }
        if let Some(src) = cfg.src {
            if src.is_ipv4() != cfg.dst.is_ipv4() {
                return Err(SaError::AddressFamilyMismatch);
            }
        }
        let larval = cfg.state == SaState::Larval;
        if !(larval && cfg.encr_alg.is_none() && cfg.auth_alg.is_none()) {
            Self::build_transforms(&cfg)?;
        }
        // Solaris: an SA without a specific source cannot enforce a replay counter.
        let window = if cfg.src.is_none() || cfg.src.is_some_and(|a| a.is_unspecified()) {
            0
        } else {
            cfg.replay_window
        };
        let mut replay = ReplayWindow::new(window, cfg.esn);
        if cfg.replay_value != 0 {
            replay.set_top(cfg.replay_value);
        }
        let state = cfg.state;
        let seq_out = cfg.replay_value;
        Ok(Self {
            cfg,
            keyed: OnceLock::new(),
            replay,
            // PF_KEY's replay value is the SA's one sequence counter (Solaris
            // `ipsa_replay`): an outbound SA continues after it, an inbound one's window
            // starts there.
            seq_out,
            stats: SaStats::default(),
            state,
            add_time: now,
            first_use: None,
            last_use: now,
            soft_fired: false,
        })
    }

    fn build_transforms(cfg: &SaConfig) -> Result<(Option<EspEncr>, Option<Integ>), SaError> {
        let auth = cfg.auth_alg.filter(|a| *a != AuthAlg::None);
        match cfg.proto {
            Proto::Ah => {
                if cfg.encr_alg.is_some_and(|e| e != EncrAlg::Null) {
                    return Err(SaError::BadAlgorithm(
                        "AH SAs carry no encryption algorithm",
                    ));
                }
                let alg = auth.ok_or(SaError::MissingAlgorithm(
                    "AH needs an authentication algorithm",
                ))?;
                let integ = Integ::new(alg, cfg.auth_key.expose(), true, cfg.allow_legacy)
                    .map_err(|err| SaError::Key {
                        which: "authentication",
                        err,
                    })?;
                Ok((None, Some(integ)))
            }
            Proto::Esp => {
                let ealg = cfg.encr_alg.unwrap_or(EncrAlg::Null);
                let encr =
                    EspEncr::new(ealg, cfg.encr_key.expose(), cfg.allow_legacy).map_err(|err| {
                        SaError::Key {
                            which: "encryption",
                            err,
                        }
                    })?;
                let integ = match auth {
                    Some(a) => {
                        if encr.is_aead() {
                            return Err(SaError::BadAlgorithm(
                                "a combined-mode (AEAD) algorithm takes no separate authentication algorithm",
                            ));
                        }
                        if matches!(
                            a,
                            AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256
                        ) {
                            return Err(SaError::BadAlgorithm(
                                "AES-GMAC authentication is for AH; use aes-none-gmac in ESP",
                            ));
                        }
                        Some(
                            Integ::new(a, cfg.auth_key.expose(), false, cfg.allow_legacy).map_err(
                                |err| SaError::Key {
                                    which: "authentication",
                                    err,
                                },
                            )?,
                        )
                    }
                    None => None,
                };
                if ealg == EncrAlg::Null && integ.is_none() {
                    // RFC 8221: NULL encryption with no authentication is not allowed.
                    return Err(SaError::MissingAlgorithm(
                        "ESP with null encryption needs an authentication algorithm",
                    ));
                }
                Ok((Some(encr), integ))
            }
        }
    }

    /// Completes a larval SA with keys (PF_KEY UPDATE); lifetimes count from now.
    pub fn mature(&mut self, cfg: SaConfig, now: u64) -> Result<(), SaError> {
        let (encr, integ) = Self::build_transforms(&cfg)?;
        let mut replay = ReplayWindow::new(
            if cfg.src.is_none() {
                0
            } else {
                cfg.replay_window
            },
            cfg.esn,
        );
        if cfg.replay_value != 0 {
            replay.set_top(cfg.replay_value);
        }
        self.keyed = OnceLock::from(Arc::new(Transforms { encr, integ }));
        self.replay = replay;
        self.seq_out = cfg.replay_value;
        self.state = if cfg.state == SaState::Larval {
            SaState::Mature
        } else {
            cfg.state
        };
        self.cfg = cfg;
        self.add_time = now;
        Ok(())
    }

    /// The configuration (keys included, behind [`KeyMaterial`]).
    pub fn config(&self) -> &SaConfig {
        &self.cfg
    }
    /// Mutable configuration for fields that may change on a live SA (lifetimes, state, NAT-T
    /// ports). Keys and algorithms cannot change this way.
    pub fn set_lifetimes(&mut self, soft: Lifetime, hard: Lifetime, idle: Lifetime) {
        self.cfg.soft = soft;
        self.cfg.hard = hard;
        self.cfg.idle = idle;
        self.soft_fired = false;
    }
    /// NAT-T: the peer's packets now come from UDP port `port` (a NAT remapped it, RFC 3948
    /// §5); later packets of this SA go there. Returns whether anything changed (false for
    /// SAs without UDP encapsulation).
    pub fn set_natt_remote_port(&mut self, port: u16) -> bool {
        match &mut self.cfg.natt {
            Some(n) if n.remote_port != port && port != 0 => {
                n.remote_port = port;
                true
            }
            _ => false,
        }
    }
    /// Protocol.
    pub fn proto(&self) -> Proto {
        self.cfg.proto
    }
    /// SPI.
    pub fn spi(&self) -> u32 {
        self.cfg.spi
    }
    /// Mode.
    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }
    /// State.
    pub fn state(&self) -> SaState {
        self.state
    }
    /// Sets the state (PF_KEY UPDATE may move mature to dying, or an SA to dead).
    pub fn set_state(&mut self, s: SaState) {
        self.state = s;
    }
    /// The keyed transforms, keying them on first use. `None` for a larval SA without
    /// algorithms (and, defensively, if keying fails, which validation at creation rules
    /// out).
    #[inline]
    fn transforms(&self) -> Option<&Transforms> {
        if let Some(t) = self.keyed.get() {
            return Some(&**t);
        }
        self.key_now().map(|t| &**t)
    }

    #[cold]
    fn key_now(&self) -> Option<&Arc<Transforms>> {
        if self.cfg.encr_alg.is_none() && self.cfg.auth_alg.is_none() {
            return None;
        }
        let (encr, integ) = Self::build_transforms(&self.cfg).ok()?;
        Some(
            self.keyed
                .get_or_init(|| Arc::new(Transforms { encr, integ })),
        )
    }

    /// A shared handle on the keyed transforms (keying them on first use), for crypto that
    /// runs without the SADB; `None` for a larval SA without algorithms.
    pub fn crypto(&self) -> Option<SaCrypto> {
        self.transforms()?;
        self.keyed.get().map(|t| SaCrypto(Arc::clone(t)))
    }

    /// Whether the key schedules exist now (they are built on first use).
    pub fn is_keyed(&self) -> bool {
        self.keyed.get().is_some()
    }

    /// Drops the key schedules (they are zeroized and built again on next use): a daemon
    /// holding many SAs releases those that have been idle for a while, so memory follows
    /// the SAs in use rather than all SAs.
    pub fn release_key_schedule(&mut self) {
        self.keyed = OnceLock::new();
    }

    /// The ESP transform.
    #[inline]
    pub fn encr(&self) -> Option<&EspEncr> {
        self.transforms().and_then(|t| t.encr.as_ref())
    }
    /// The integrity transform.
    #[inline]
    pub fn integ(&self) -> Option<&Integ> {
        self.transforms().and_then(|t| t.integ.as_ref())
    }
    /// The replay window.
    pub fn replay(&self) -> &ReplayWindow {
        &self.replay
    }
    /// Last sequence number sent.
    pub fn seq_out(&self) -> u64 {
        self.seq_out
    }
    /// Sets the outbound sequence counter (tests and PF_KEY replay_value on outbound SAs).
    pub fn set_seq_out(&mut self, seq: u64) {
        self.seq_out = seq;
    }
    /// Time the SA was added (seconds).
    pub fn add_time(&self) -> u64 {
        self.add_time
    }
    /// Time of first use, if used.
    pub fn first_use(&self) -> Option<u64> {
        self.first_use
    }
    /// Time of last use.
    pub fn last_use(&self) -> u64 {
        self.last_use
    }

    /// Takes the next outbound sequence number, or `None` when the space is exhausted (the SA is
    /// then dead: RFC 4303 §3.3.3 forbids cycling).
    pub(crate) fn next_seq(&mut self) -> Option<u64> {
        let limit = if self.cfg.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        if self.seq_out >= limit {
            self.state = SaState::Dead;
            return None;
        }
        self.seq_out += 1;
        Some(self.seq_out)
    }

    /// Would `bytes` more payload exceed the hard byte or packet lifetime?
    pub(crate) fn hard_limit_reached(&self, bytes: usize) -> bool {
        let h = &self.cfg.hard;
        (h.bytes != 0 && self.stats.bytes.saturating_add(bytes as u64) > h.bytes)
            || (h.packets != 0 && self.stats.packets >= h.packets)
    }

    /// Accounts a successfully processed packet.
    pub(crate) fn account(&mut self, bytes: usize, now: u64) {
        self.stats.packets += 1;
        self.stats.bytes = self.stats.bytes.saturating_add(bytes as u64);
        if self.first_use.is_none() {
            self.first_use = Some(now);
        }
        self.last_use = now;
    }

    /// Checks lifetimes at `now` and moves the state accordingly. Returns the transition, if any,
    /// at most one per call (hard wins over soft).
    pub fn age(&mut self, now: u64) -> Option<Expiry> {
        if matches!(self.state, SaState::Dead) {
            return None;
        }
        if self.state == SaState::Larval {
            return None;
        }
        let since_add = now.saturating_sub(self.add_time);
        let since_use = self.first_use.map(|t| now.saturating_sub(t));
        let past = |l: &Lifetime, st: &SaStats| {
            (l.addtime != 0 && since_add >= l.addtime)
                || (l.usetime != 0 && since_use.is_some_and(|u| u >= l.usetime))
                || (l.bytes != 0 && st.bytes >= l.bytes)
                || (l.packets != 0 && st.packets >= l.packets)
        };
        if past(&self.cfg.hard, &self.stats) {
            self.state = SaState::Dead;
            return Some(Expiry::Hard);
        }
        let idle = &self.cfg.idle;
        let idle_for = now.saturating_sub(self.last_use);
        let idle_limit = if self.first_use.is_some() {
            idle.usetime
        } else {
            idle.addtime
        };
        if idle_limit != 0 && idle_for >= idle_limit {
            self.state = SaState::Dead;
            return Some(Expiry::Idle);
        }
        if !self.soft_fired && past(&self.cfg.soft, &self.stats) {
            self.soft_fired = true;
            self.state = SaState::Dying;
            return Some(Expiry::Soft);
        }
        None
    }
}

#[cfg(test)]
mod size_tests {
    /// The SADB holds a million SAs in well under 1 KiB each: big key schedules are boxed.
    #[test]
    fn sa_is_small() {
        let n = core::mem::size_of::<super::Sa>();
        assert!(n <= 1024, "Sa is {n} bytes");
    }

    /// Keys are checked when the SA is created, but the key schedule exists only once the
    /// SA is used; a larval SA without algorithms has no transforms.
    #[test]
    fn transforms_are_keyed_on_first_use() {
        use super::*;
        let mut cfg = SaConfig::new(Proto::Esp, 0x1234, None, "192.0.2.2".parse().unwrap());
        cfg.encr_alg = Some(EncrAlg::AesGcm16);
        cfg.encr_key = KeyMaterial::new(&[7; 20]);
        let sa = Sa::new(cfg.clone(), 0).unwrap();
        assert!(!sa.is_keyed());
        assert_eq!(sa.encr().map(|e| e.icv_len()), Some(16));
        assert!(sa.is_keyed());
        assert!(sa.integ().is_none());

        cfg.encr_key = KeyMaterial::new(&[7; 19]);
        assert!(matches!(Sa::new(cfg.clone(), 0), Err(SaError::Key { .. })));

        let mut larval = SaConfig::new(Proto::Esp, 0x1235, None, "192.0.2.2".parse().unwrap());
        larval.state = SaState::Larval;
        let mut sa = Sa::new(larval, 0).unwrap();
        assert!(sa.encr().is_none() && !sa.is_keyed());
        cfg.encr_key = KeyMaterial::new(&[7; 20]);
        cfg.spi = 0x1235;
        sa.mature(cfg, 5).unwrap();
        assert!(sa.is_keyed() && sa.encr().is_some());
        sa.release_key_schedule();
        assert!(!sa.is_keyed());
        assert_eq!(
            sa.encr().map(|e| e.icv_len()),
            Some(16),
            "keyed again on use"
        );
    }
}
