//! The IKE_SA_INIT and IKE_AUTH exchanges with pre-shared-key authentication
//! (RFC 7296 §1.2, §2.15), one type per exchange state.
//!
//! ```text
//!  initiator                                         responder
//!  ExpectSaInitResp::start ── HDR, SAi1, KEi, Ni ──> respond_sa_init
//!                          <── HDR, SAr1, KEr, Nr ──  -> ExpectAuthReq
//!  -> ExpectAuthResp       ── HDR, SK{IDi, AUTH, SAi2, TSi, TSr} ──>
//!                          <── HDR, SK{IDr, AUTH, SAr2, TSi, TSr} ── -> Established
//!  -> Established
//! ```
//!
//! Each state is a value: `handle` consumes it and returns a [`Step`]: the same state
//! (a dropped or retransmitted message, possibly with a reply), the next state, or a
//! failure. [`Established`] can only be built with an [`AuthVerified`] proof, which only
//! the AUTH check makes, so no Child SA keys leave this module before the peer's
//! authentication has been verified.
//!
//! Reliability (RFC 7296 §2.1–§2.3): window size 1 (one request outstanding; the responder
//! accepts only the next message ID). Only the initiator retransmits, with exponential
//! back-off, and each retransmission is the stored request, bit for bit. The responder
//! keeps its last response and sends it again only when the same request arrives again.
//!
//! Under load the responder answers IKE_SA_INIT requests without a valid cookie with a
//! COOKIE notification only ([`CookieJar`], [`InitContext`]); the initiator retries once
//! more with the cookie first.
//!
//! IKE_SA_INIT carries the NAT detection notifications of RFC 7296 §2.23 both ways and
//! each side reports what they show ([`NatStatus`]); moving to port 4500 is the caller's
//! part.
//!
//! The responder narrows the proposed traffic selectors to its policy (RFC 7296 §2.9,
//! [`crate::ts`]) and the initiator accepts only answers inside what it proposed.
//! USE_TRANSPORT_MODE and INITIAL_CONTACT are sent and reported.
//!
//! On the [`Established`] SA, INFORMATIONAL exchanges run both ways: liveness checks
//! (dead-peer detection is a liveness check that times out), Child SA and IKE SA deletion;
//! and CREATE_CHILD_SA: new Child SAs and Child SA rekeying, with optional PFS, and IKE SA
//! rekeying. Message IDs never wrap ([`IkeError::NeedsRekey`]).
//!
//! Time and randomness are inputs (`now`, [`Random`]). Not here yet: the use of
//! fragmentation, certificates, the §2.8.1 nonce rule for rekey collisions (a colliding
//! rekey is refused with TEMPORARY_FAILURE instead).

use core::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::consts::{exchange, flags, notify, payload as pt, protocol, transform};
use crate::dh::{Group, KeyShare};
use crate::error::{CryptoError, ParseError};
use crate::keys::{child_keys, ChildKeys, IkeKeys};
use crate::prf::PrfAlg;
use crate::sk::{SkCipher, SkSuite};
use crate::ts;
use crate::wire::{
    Attribute, Auth, Header, Id, Message, Notify, Payload, Proposal, TrafficSelector, Transform,
};

pub use crate::Random;

/// Nonce length we send (RFC 7296 §2.10: at least half the PRF key size, 16..=256).
const NONCE_LEN: usize = 32;

/// The PSK pad string of RFC 7296 §2.15.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// Retransmission policy of the initiator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the first retransmission; each later wait doubles.
    pub first: Duration,
    /// Sends of one request in all (the first included) before giving up.
    pub max_sends: u32,
}

impl Default for Backoff {
    /// 0.5 s doubling, 7 sends: the last retransmission goes out after 31.5 s and the
    /// exchange fails 63.5 s after the first send.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max_sends: 7,
        }
    }
}

/// An identity (RFC 7296 §3.5) owned by the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// ID type (see [`crate::consts::id`]).
    pub id_type: u8,
    /// Identification data.
    pub data: Vec<u8>,
}

impl Identity {
    fn as_id(&self) -> Id<'_> {
        Id {
            id_type: self.id_type,
            data: &self.data,
        }
    }
}

/// The ESP transforms of the Child SA made with the IKE SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChildSuite {
    /// ENCR transform ID.
    pub encr: u16,
    /// Cipher key length in bits (sent as the Key Length attribute).
    pub key_bits: u16,
    /// INTEG transform ID, `None` with an AEAD cipher.
    pub integ: Option<u16>,
    /// Transport mode (asked for with USE_TRANSPORT_MODE, RFC 7296 §1.3.1); tunnel mode
    /// otherwise.
    pub transport: bool,
    /// Perfect forward secrecy: CREATE_CHILD_SA exchanges carry a key exchange in the IKE
    /// SA's group (RFC 7296 §1.3.1); the Child SA made by IKE_AUTH never has one.
    pub pfs: bool,
}

/// One side's configuration of an IKE SA with PSK authentication.
#[derive(Clone)]
pub struct IkeConfig {
    /// SK payload protection.
    pub suite: SkSuite,
    /// PRF.
    pub prf: PrfAlg,
    /// Key exchange group.
    pub group: Group,
    /// Child SA transforms.
    pub child: ChildSuite,
    /// Our identity.
    pub local_id: Identity,
    /// The identity the peer must show (`None`: any).
    pub remote_id: Option<Identity>,
    /// The pre-shared key.
    pub psk: Zeroizing<Vec<u8>>,
    /// Our side's traffic selectors.
    pub ts_local: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub ts_remote: Vec<TrafficSelector>,
    /// Initiator retransmission policy.
    pub backoff: Backoff,
    /// Initiator: send INITIAL_CONTACT in IKE_AUTH (RFC 7296 §2.4), telling the peer to
    /// drop any older IKE SA with us (set for the first SA after a restart).
    pub initial_contact: bool,
}

impl fmt::Debug for IkeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeConfig")
            .field("suite", &self.suite)
            .field("prf", &self.prf)
            .field("group", &self.group)
            .field("child", &self.child)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .finish_non_exhaustive()
    }
}

/// Why an exchange failed or a message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IkeError {
    /// The message does not parse.
    Parse(ParseError),
    /// Decryption, integrity or key exchange failed.
    Crypto(CryptoError),
    /// A message of the wrong exchange, direction, SPI or message ID.
    Unexpected(&'static str),
    /// A payload the exchange requires is missing (or appears twice).
    MissingPayload(&'static str),
    /// No acceptable proposal (NO_PROPOSAL_CHOSEN).
    NoProposalChosen,
    /// The KE payload is not of the selected group (INVALID_KE_PAYLOAD); the group wanted.
    InvalidKePayload(u16),
    /// The peer's AUTH payload does not verify, or its identity is not the expected one.
    AuthenticationFailed,
    /// The proposed traffic selectors are not acceptable (TS_UNACCEPTABLE).
    TsUnacceptable,
    /// The peer answered with this error notification.
    PeerNotify(u16),
    /// No response after the last retransmission.
    Timeout,
    /// The responder is under load and the request carries no valid cookie (a COOKIE
    /// notification was sent, RFC 7296 §2.6).
    CookieRequired,
    /// A request of ours is still outstanding (window size 1).
    Busy,
    /// The message IDs are used up: the IKE SA must be rekeyed (RFC 7296 §2.2).
    NeedsRekey,
}

impl fmt::Display for IkeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "malformed message: {e}"),
            Self::Crypto(e) => write!(f, "{e}"),
            Self::Unexpected(w) => write!(f, "unexpected message: {w}"),
            Self::MissingPayload(w) => write!(f, "missing or duplicated {w} payload"),
            Self::NoProposalChosen => f.write_str("no proposal chosen"),
            Self::InvalidKePayload(g) => write!(f, "invalid KE payload: group {g} wanted"),
            Self::AuthenticationFailed => f.write_str("authentication failed"),
            Self::TsUnacceptable => f.write_str("traffic selectors unacceptable"),
            Self::PeerNotify(n) => write!(f, "peer sent error notification {n}"),
            Self::Timeout => f.write_str("no response after the last retransmission"),
            Self::CookieRequired => f.write_str("cookie required"),
            Self::Busy => f.write_str("a request is outstanding"),
            Self::NeedsRekey => f.write_str("message IDs used up: rekey the IKE SA"),
        }
    }
}

impl std::error::Error for IkeError {}

impl From<ParseError> for IkeError {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

impl From<CryptoError> for IkeError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

/// The result of handing a datagram to a state.
#[derive(Debug)]
#[must_use]
pub enum Step<S, N> {
    /// The state is unchanged: the datagram was dropped (`dropped` says why) or was a
    /// retransmitted request answered from the cache (`reply`).
    Stay {
        /// The unchanged state.
        state: S,
        /// A cached response to send again.
        reply: Option<Vec<u8>>,
        /// Why the datagram was dropped, if it was.
        dropped: Option<IkeError>,
    },
    /// The exchange moved on.
    Next {
        /// The new state.
        state: N,
        /// The message to send (the next request, or the response).
        reply: Option<Vec<u8>>,
    },
    /// The SA failed; `reply` is an error notification to send, if any.
    Failed {
        /// Why.
        error: IkeError,
        /// The notification to send.
        reply: Option<Vec<u8>>,
    },
}

fn stay<S, N>(state: S, why: IkeError) -> Step<S, N> {
    Step::Stay {
        state,
        reply: None,
        dropped: Some(why),
    }
}

/// Proof that the peer's AUTH payload verified. Only [`verify_psk_auth`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthVerified(());

/// A request waiting for its response, with its retransmission schedule.
#[derive(Debug, Clone)]
struct Pending {
    packet: Vec<u8>,
    sends: u32,
    interval: Duration,
    next: Instant,
}

impl Pending {
    fn new(packet: Vec<u8>, now: Instant, b: Backoff) -> Self {
        Self {
            packet,
            sends: 1,
            interval: b.first,
            next: now + b.first,
        }
    }

    /// The retransmission due at `now`, if any (spurious calls are no-ops).
    fn on_timeout(&mut self, now: Instant, b: Backoff) -> Result<Option<&[u8]>, IkeError> {
        if now < self.next {
            return Ok(None);
        }
        if self.sends >= b.max_sends {
            return Err(IkeError::Timeout);
        }
        self.sends += 1;
        self.interval = self.interval.saturating_mul(2);
        self.next = now + self.interval;
        Ok(Some(&self.packet))
    }
}

fn random_vec(rng: &mut dyn Random, n: usize) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    rng.fill(&mut v);
    v
}

fn key_share(group: Group, rng: &mut dyn Random) -> Result<KeyShare, IkeError> {
    // A rejected draw (probability below 2^-32) is retried with fresh bytes.
    for _ in 0..4 {
        let r = random_vec(rng, group.random_len());
        match KeyShare::new(group, &r) {
            Ok(k) => return Ok(k),
            Err(CryptoError::BadRandom) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(CryptoError::BadRandom.into())
}

fn spi8(rng: &mut dyn Random) -> [u8; 8] {
    let mut s = [0u8; 8];
    while s == [0; 8] {
        rng.fill(&mut s);
    }
    s
}

fn spi4(rng: &mut dyn Random) -> [u8; 4] {
    // SPIs 0..=255 are reserved for IANA (RFC 4303 §2.1).
    let mut s = [0u8; 4];
    while u32::from_be_bytes(s) < 256 {
        rng.fill(&mut s);
    }
    s
}

fn key_length(bits: u16) -> Vec<Attribute<'static>> {
    vec![Attribute::Tv {
        ty: transform::ATTR_KEY_LENGTH,
        value: bits,
    }]
}

/// The encryption transform with a Key Length attribute, except for ChaCha20-Poly1305,
/// whose key size is fixed and which takes no attribute (RFC 7634 §3).
fn encr_transform(id: u16, key_bits: u16) -> Transform<'static> {
    Transform {
        ty: transform::ENCR,
        id,
        attributes: if id == 28 {
            vec![]
        } else {
            key_length(key_bits)
        },
    }
}

fn plain(ty: u8, id: u16) -> Transform<'static> {
    Transform {
        ty,
        id,
        attributes: vec![],
    }
}

fn ike_proposal(cfg: &IkeConfig, num: u8) -> Proposal<'static> {
    ike_proposal_with_spi(cfg, num, &[])
}

/// The IKE proposal with an SPI (the new SPI of a rekeyed IKE SA, RFC 7296 §1.3.2).
fn ike_proposal_with_spi<'a>(cfg: &IkeConfig, num: u8, spi: &'a [u8]) -> Proposal<'a> {
    let mut t = vec![encr_transform(cfg.suite.encr, cfg.suite.key_bits)];
    t.push(plain(transform::PRF, cfg.prf.id()));
    if let Some(i) = cfg.suite.integ {
        t.push(plain(transform::INTEG, i));
    }
    t.push(plain(transform::DH, cfg.group.id()));
    Proposal {
        num,
        protocol: protocol::IKE,
        spi,
        transforms: t,
    }
}

fn esp_proposal<'a>(c: &ChildSuite, spi: &'a [u8], num: u8) -> Proposal<'a> {
    let mut t = vec![encr_transform(c.encr, c.key_bits)];
    if let Some(i) = c.integ {
        t.push(plain(transform::INTEG, i));
    }
    t.push(plain(transform::ESN, 0));
    Proposal {
        num,
        protocol: protocol::ESP,
        spi,
        transforms: t,
    }
}

/// Whether `p` offers exactly one transform of each type we need, with our values among
/// them: the proposal is acceptable if, for each transform type we use, one of its
/// transforms of that type is ours, and it offers no transform type we do not use.
fn offers(p: &Proposal<'_>, wanted: &[Transform<'_>]) -> bool {
    let types_ok = p
        .transforms
        .iter()
        .all(|t| wanted.iter().any(|w| w.ty == t.ty));
    let each = wanted.iter().all(|w| {
        p.transforms
            .iter()
            .any(|t| t.ty == w.ty && t.id == w.id && t.key_length() == w.key_length())
    });
    types_ok && each
}

/// Whether `p` (a single-transform-per-type answer) is exactly `wanted`.
fn chosen_is(p: &Proposal<'_>, wanted: &Proposal<'_>) -> bool {
    p.protocol == wanted.protocol
        && p.transforms.len() == wanted.transforms.len()
        && offers(p, &wanted.transforms)
}

/// The AUTH payload value for a PSK (RFC 7296 §2.15):
/// `prf(prf(PSK, "Key Pad for IKEv2"), RealMessage | Nonce | prf(SK_p, ID body))`.
fn psk_auth(
    prf: PrfAlg,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id: &Id<'_>,
) -> Zeroizing<Vec<u8>> {
    let maced_id = prf.prf(sk_p, &[&[id.id_type, 0, 0, 0], id.data]);
    let key = prf.prf(psk, &[KEY_PAD]);
    prf.prf(&key, &[real_message, peer_nonce, &maced_id])
}

/// Checks a peer's PSK AUTH payload in constant time.
///
/// # Errors
/// [`IkeError::AuthenticationFailed`] for another method or a wrong value.
pub fn verify_psk_auth(
    prf: PrfAlg,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id: &Id<'_>,
    auth: &Auth<'_>,
) -> Result<AuthVerified, IkeError> {
    if auth.method != crate::consts::auth::SHARED_KEY_MIC {
        return Err(IkeError::AuthenticationFailed);
    }
    let want = psk_auth(prf, psk, real_message, peer_nonce, sk_p, id);
    if want.len() == auth.data.len() && bool::from(want.ct_eq(auth.data)) {
        Ok(AuthVerified(()))
    } else {
        Err(IkeError::AuthenticationFailed)
    }
}

/// Finds the peer's ID payload (`id_ty`: IDi or IDr) and AUTH payload, verifies the AUTH
/// value over `real_message | nonce | prf(sk_p, ID)` and checks the identity against the
/// configuration.
fn authenticate_peer(
    cfg: &IkeConfig,
    inner: &[Payload<'_>],
    id_ty: u8,
    real_message: &[u8],
    nonce: &[u8],
    sk_p: &[u8],
) -> Result<AuthVerified, IkeError> {
    let id = match one(inner, id_ty, "ID")? {
        Payload::IdI(id) | Payload::IdR(id) => id,
        _ => return Err(IkeError::MissingPayload("ID")),
    };
    let Payload::Auth(auth) = one(inner, pt::AUTH, "AUTH")? else {
        return Err(IkeError::MissingPayload("AUTH"));
    };
    let proof = verify_psk_auth(cfg.prf, &cfg.psk, real_message, nonce, sk_p, id, auth)?;
    match &cfg.remote_id {
        Some(want) if want.as_id() != *id => Err(IkeError::AuthenticationFailed),
        _ => Ok(proof),
    }
}

/// The TSi and TSr payloads (exactly one of each).
fn selectors<'m>(
    inner: &'m [Payload<'_>],
) -> Result<(&'m Vec<TrafficSelector>, &'m Vec<TrafficSelector>), IkeError> {
    match (one(inner, pt::TSI, "TSi")?, one(inner, pt::TSR, "TSr")?) {
        (Payload::TsI(i), Payload::TsR(r)) => Ok((i, r)),
        _ => Err(IkeError::MissingPayload("TS")),
    }
}

/// What the responder of a Child SA exchange answered, checked.
struct ChildAnswer {
    spi: [u8; 4],
    ts_i: Vec<TrafficSelector>,
    ts_r: Vec<TrafficSelector>,
    transport: bool,
}

/// Checks the responder's answer to our Child SA proposal `wanted` (RFC 7296 §1.3,
/// §2.9): one proposal, ours, numbered 1, with a 4-byte SPI; selectors inside the ones
/// we proposed (narrowed, never widened); the mode our policy asked for.
fn child_answer(
    cfg: &IkeConfig,
    inner: &[Payload<'_>],
    wanted: &Proposal<'_>,
    ts_i: &[TrafficSelector],
    ts_r: &[TrafficSelector],
) -> Result<ChildAnswer, IkeError> {
    let Payload::Sa(props) = one(inner, pt::SA, "SA")? else {
        return Err(IkeError::MissingPayload("SA"));
    };
    let spi: [u8; 4] = match props.as_slice() {
        [p] if p.num == 1 && chosen_is(p, wanted) => {
            p.spi.try_into().map_err(|_| IkeError::NoProposalChosen)?
        }
        _ => return Err(IkeError::NoProposalChosen),
    };
    let (tsi, tsr) = selectors(inner)?;
    if !ts::within(tsi, ts_i) || !ts::within(tsr, ts_r) {
        return Err(IkeError::TsUnacceptable);
    }
    let transport = has_notify(inner, notify::USE_TRANSPORT_MODE);
    if transport != cfg.child.transport {
        // Our policy's mode was refused (or one we did not ask for was imposed).
        return Err(IkeError::NoProposalChosen);
    }
    Ok(ChildAnswer {
        spi,
        ts_i: tsi.clone(),
        ts_r: tsr.clone(),
        transport,
    })
}

/// The only payload of type `ty`, if there is exactly one.
fn one<'m, 'a>(
    ps: &'m [Payload<'a>],
    ty: u8,
    name: &'static str,
) -> Result<&'m Payload<'a>, IkeError> {
    let mut it = ps.iter().filter(|p| p.ty() == ty);
    match (it.next(), it.next()) {
        (Some(p), None) => Ok(p),
        _ => Err(IkeError::MissingPayload(name)),
    }
}

fn has_notify(ps: &[Payload<'_>], ty: u16) -> bool {
    ps.iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.ty == ty))
}

fn error_notify(ps: &[Payload<'_>]) -> Option<u16> {
    ps.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty < 16384 => Some(n.ty),
        _ => None,
    })
}

fn header(spi_i: [u8; 8], spi_r: [u8; 8], ex: u8, fl: u8, message_id: u32) -> Header {
    Header {
        spi_i,
        spi_r,
        minor: 0,
        exchange: ex,
        flags: fl,
        message_id,
    }
}

fn notify_payload(ty: u16, data: &[u8]) -> Payload<'_> {
    Payload::Notify(Notify {
        protocol: 0,
        spi: &[],
        ty,
        data,
    })
}

/// Keys of one IKE SA in one role: the ciphers for each direction.
struct Ciphers {
    out: SkCipher,
    inp: SkCipher,
}

impl Ciphers {
    fn new(suite: SkSuite, k: &IkeKeys, initiator: bool) -> Result<Self, IkeError> {
        let i = SkCipher::new(suite, &k.sk_ei, &k.sk_ai)?;
        let r = SkCipher::new(suite, &k.sk_er, &k.sk_ar)?;
        Ok(if initiator {
            Self { out: i, inp: r }
        } else {
            Self { out: r, inp: i }
        })
    }

    fn seal(
        &self,
        h: &Header,
        inner: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        let iv = random_vec(rng, self.out.iv_len());
        Ok(self.out.seal(h, inner, &iv)?)
    }
}

impl fmt::Debug for Ciphers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphers").finish_non_exhaustive()
    }
}

fn derive(
    cfg: &IkeConfig,
    share: &KeyShare,
    peer_ke: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
) -> Result<IkeKeys, IkeError> {
    let gir = share.agree(peer_ke)?;
    Ok(IkeKeys::derive(
        cfg.prf,
        ni,
        nr,
        &gir,
        spi_i,
        spi_r,
        cfg.suite.key_sizes()?,
    )?)
}

fn child_sizes(c: &ChildSuite) -> Result<crate::keys::KeySizes, IkeError> {
    SkSuite {
        encr: c.encr,
        key_bits: c.key_bits,
        integ: c.integ,
    }
    .key_sizes()
    .map_err(IkeError::from)
}

/// A Child SA pair negotiated by IKE_AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSa {
    /// The SPI the initiator chose: the initiator's inbound ESP SA (responder to initiator).
    pub spi_i: [u8; 4],
    /// The SPI the responder chose: the responder's inbound ESP SA (initiator to responder).
    pub spi_r: [u8; 4],
    /// The transforms.
    pub suite: ChildSuite,
    /// The keys (RFC 7296 §2.17).
    pub keys: ChildKeys,
    /// Initiator-side selectors.
    pub ts_i: Vec<TrafficSelector>,
    /// Responder-side selectors.
    pub ts_r: Vec<TrafficSelector>,
    /// Transport mode (both sides agreed on USE_TRANSPORT_MODE); tunnel mode otherwise.
    pub transport: bool,
}

/// The addresses of a UDP path, as one end sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

impl Path {
    /// The same path seen from the other end (as it is when no NAT is on it).
    #[must_use]
    pub fn reversed(self) -> Self {
        Self {
            local: self.remote,
            remote: self.local,
        }
    }
}

/// What NAT detection (RFC 7296 §2.23) found in IKE_SA_INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatStatus {
    /// Our address is translated: keepalives are ours to send, and IKE moves to port 4500.
    pub local_behind_nat: bool,
    /// The peer's address is translated.
    pub peer_behind_nat: bool,
}

impl NatStatus {
    /// Whether any NAT is on the path (ESP then goes inside UDP, RFC 3948, and IKE moves
    /// to port 4500).
    #[must_use]
    pub fn any(&self) -> bool {
        self.local_behind_nat || self.peer_behind_nat
    }
}

/// The NAT detection hash: SHA-1(SPIi | SPIr | IP address | port) (RFC 7296 §2.23).
#[must_use]
pub fn nat_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> [u8; 20] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(spi_i);
    ctx.update(spi_r);
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Our two NAT detection notifications for a message sent on `path`.
fn nat_notifies(spi_i: &[u8; 8], spi_r: &[u8; 8], path: Path) -> [[u8; 20]; 2] {
    [
        nat_hash(spi_i, spi_r, path.local),
        nat_hash(spi_i, spi_r, path.remote),
    ]
}

/// Compares the peer's NAT detection notifications with the path the message arrived on.
/// `None` when the peer sent none (it does not do NAT traversal).
fn detect_nat(
    payloads: &[Payload<'_>],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    path: Path,
) -> Option<NatStatus> {
    let of = |ty: u16| {
        payloads.iter().filter_map(move |p| match p {
            Payload::Notify(n) if n.ty == ty => Some(n.data),
            _ => None,
        })
    };
    let sources: Vec<&[u8]> = of(notify::NAT_DETECTION_SOURCE_IP).collect();
    let dest: Vec<&[u8]> = of(notify::NAT_DETECTION_DESTINATION_IP).collect();
    if sources.is_empty() || dest.is_empty() {
        return None;
    }
    // The peer's source as we see it, and our address as the peer saw it.
    let peer = nat_hash(spi_i, spi_r, path.remote);
    let me = nat_hash(spi_i, spi_r, path.local);
    Some(NatStatus {
        peer_behind_nat: !sources.iter().any(|h| *h == peer),
        local_behind_nat: !dest.iter().any(|h| *h == me),
    })
}

// ------------------------------------------------------------------------------------------
// Initiator
// ------------------------------------------------------------------------------------------

/// Initiator, IKE_SA_INIT request sent.
#[derive(Debug)]
pub struct ExpectSaInitResp {
    cfg: IkeConfig,
    spi_i: [u8; 8],
    share: KeyShare,
    ni: Zeroizing<Vec<u8>>,
    pending: Pending,
    cookie_retries: u8,
    path: Path,
}

/// How many COOKIE answers the initiator follows before giving up (a responder that
/// keeps asking is broken or hostile).
const MAX_COOKIE_RETRIES: u8 = 2;

fn sa_init_request(
    cfg: &IkeConfig,
    spi_i: [u8; 8],
    share: &KeyShare,
    ni: &[u8],
    cookie: Option<&[u8]>,
    path: Path,
) -> Result<Vec<u8>, IkeError> {
    let nat = nat_notifies(&spi_i, &[0; 8], path);
    let mut payloads = Vec::with_capacity(6);
    if let Some(c) = cookie {
        payloads.push(notify_payload(notify::COOKIE, c));
    }
    payloads.push(Payload::Sa(vec![ike_proposal(cfg, 1)]));
    payloads.push(Payload::Ke {
        group: cfg.group.id(),
        data: share.public(),
    });
    payloads.push(Payload::Nonce(ni));
    payloads.push(notify_payload(notify::NAT_DETECTION_SOURCE_IP, &nat[0]));
    payloads.push(notify_payload(
        notify::NAT_DETECTION_DESTINATION_IP,
        &nat[1],
    ));
    Message {
        header: header(spi_i, [0; 8], exchange::IKE_SA_INIT, flags::INITIATOR, 0),
        payloads,
    }
    .emit()
    .map_err(|_| IkeError::Unexpected("IKE_SA_INIT request cannot be encoded"))
}

impl ExpectSaInitResp {
    /// Builds the IKE_SA_INIT request (take it with [`ExpectSaInitResp::request`] and send
    /// it on `path`; the response is expected back on the same path). The request carries
    /// NAT detection notifications for `path`.
    ///
    /// # Errors
    /// Only for a configuration this crate cannot run.
    pub fn start(
        cfg: IkeConfig,
        path: Path,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Self, IkeError> {
        cfg.suite.key_sizes()?;
        child_sizes(&cfg.child)?;
        let spi_i = spi8(rng);
        let share = key_share(cfg.group, rng)?;
        let ni = random_vec(rng, NONCE_LEN);
        let packet = sa_init_request(&cfg, spi_i, &share, &ni, None, path)?;
        let pending = Pending::new(packet, now, cfg.backoff);
        Ok(Self {
            cfg,
            spi_i,
            share,
            ni,
            pending,
            cookie_retries: 0,
            path,
        })
    }

    /// The current request (RealMessage1): the first one, or the one carrying the
    /// responder's cookie after a COOKIE answer.
    #[must_use]
    pub fn request(&self) -> &[u8] {
        &self.pending.packet
    }

    /// When [`ExpectSaInitResp::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.pending.next
    }

    /// The retransmission due at `now` (the same bytes as the first send), if any.
    ///
    /// # Errors
    /// [`IkeError::Timeout`] after the last retransmission went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<&[u8]>, IkeError> {
        self.pending.on_timeout(now, self.cfg.backoff)
    }

    /// Handles a datagram that may be the IKE_SA_INIT response.
    pub fn handle(
        self,
        datagram: &[u8],
        now: Instant,
        rng: &mut dyn Random,
    ) -> Step<Self, ExpectAuthResp> {
        let m = match Message::parse(datagram) {
            Ok(m) => m,
            Err(e) => return stay(self, e.into()),
        };
        let h = m.header;
        if h.exchange != exchange::IKE_SA_INIT
            || !h.is_response()
            || h.is_initiator()
            || h.message_id != 0
            || h.spi_i != self.spi_i
        {
            return stay(self, IkeError::Unexpected("not our IKE_SA_INIT response"));
        }
        // A COOKIE answer (RFC 7296 §2.6): send the request again with the cookie as the
        // first payload and every other payload unchanged; the schedule starts over.
        if let [Payload::Notify(n)] = m.payloads.as_slice() {
            if n.ty == notify::COOKIE {
                return self.retry_with_cookie(n.data, now);
            }
        }
        // Error notifications in the response end the attempt (RFC 7296 §2.21.1): the
        // responder refused, and waiting would only lead to a timeout.
        if let Some(n) = error_notify(&m.payloads) {
            return Step::Failed {
                error: IkeError::PeerNotify(n),
                reply: None,
            };
        }
        match self.accept_init_response(&m, datagram, now, rng) {
            Ok(next) => {
                let reply = Some(next.pending.packet.clone());
                Step::Next { state: next, reply }
            }
            // The response is not authenticated: one that does not fit (forged, corrupted,
            // another proposal, a bad KE value) is dropped and the wait goes on, so that
            // an attacker cannot end the exchange with a single packet (RFC 7296 §2.21).
            Err(e) => stay(self, e),
        }
    }

    fn retry_with_cookie(mut self, cookie: &[u8], now: Instant) -> Step<Self, ExpectAuthResp> {
        if cookie.is_empty() || cookie.len() > 64 {
            return stay(self, IkeError::Unexpected("COOKIE data not 1 to 64 bytes"));
        }
        if self.cookie_retries >= MAX_COOKIE_RETRIES {
            return Step::Failed {
                error: IkeError::CookieRequired,
                reply: None,
            };
        }
        match sa_init_request(
            &self.cfg,
            self.spi_i,
            &self.share,
            &self.ni,
            Some(cookie),
            self.path,
        ) {
            Ok(packet) => {
                self.cookie_retries += 1;
                self.pending = Pending::new(packet.clone(), now, self.cfg.backoff);
                Step::Stay {
                    state: self,
                    reply: Some(packet),
                    dropped: None,
                }
            }
            Err(e) => Step::Failed {
                error: e,
                reply: None,
            },
        }
    }

    fn accept_init_response(
        &self,
        m: &Message<'_>,
        datagram: &[u8],
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<ExpectAuthResp, IkeError> {
        let cfg = &self.cfg;
        let spi_r = m.header.spi_r;
        if spi_r == [0; 8] {
            return Err(IkeError::Unexpected("responder SPI zero"));
        }
        let Payload::Sa(props) = one(&m.payloads, pt::SA, "SA")? else {
            return Err(IkeError::MissingPayload("SA"));
        };
        let ours = ike_proposal(cfg, 1);
        match props.as_slice() {
            [p] if p.num == 1 && chosen_is(p, &ours) => {}
            _ => return Err(IkeError::NoProposalChosen),
        }
        let Payload::Ke { group, data } = one(&m.payloads, pt::KE, "KE")? else {
            return Err(IkeError::MissingPayload("KE"));
        };
        if *group != cfg.group.id() {
            return Err(IkeError::InvalidKePayload(cfg.group.id()));
        }
        let Payload::Nonce(nr) = one(&m.payloads, pt::NONCE, "Nonce")? else {
            return Err(IkeError::MissingPayload("Nonce"));
        };
        if !(16..=256).contains(&nr.len()) {
            return Err(IkeError::Unexpected("nonce length outside 16..=256"));
        }
        let keys = derive(cfg, &self.share, data, &self.ni, nr, &self.spi_i, &spi_r)?;
        let ciphers = Ciphers::new(cfg.suite, &keys, true)?;

        // IKE_AUTH request: SK{IDi, AUTH, SAi2, TSi, TSr}.
        let idi = cfg.local_id.as_id();
        let auth = psk_auth(cfg.prf, &cfg.psk, self.request(), nr, &keys.sk_pi, &idi);
        let child_spi = spi4(rng);
        let mut inner = vec![Payload::IdI(idi)];
        if cfg.initial_contact {
            inner.push(notify_payload(notify::INITIAL_CONTACT, &[]));
        }
        inner.push(Payload::Auth(Auth {
            method: crate::consts::auth::SHARED_KEY_MIC,
            data: &auth,
        }));
        if cfg.child.transport {
            inner.push(notify_payload(notify::USE_TRANSPORT_MODE, &[]));
        }
        inner.push(Payload::Sa(vec![esp_proposal(&cfg.child, &child_spi, 1)]));
        inner.push(Payload::TsI(cfg.ts_local.clone()));
        inner.push(Payload::TsR(cfg.ts_remote.clone()));
        let h = header(self.spi_i, spi_r, exchange::IKE_AUTH, flags::INITIATOR, 1);
        let packet = ciphers.seal(&h, &inner, rng)?;
        Ok(ExpectAuthResp {
            cfg: cfg.clone(),
            spi_i: self.spi_i,
            spi_r,
            keys,
            ciphers,
            ni: self.ni.clone(),
            nr: Zeroizing::new(nr.to_vec()),
            init_response: datagram.to_vec(),
            nat: detect_nat(&m.payloads, &self.spi_i, &spi_r, self.path),
            child_spi,
            pending: Pending::new(packet, now, cfg.backoff),
        })
    }
}

/// Initiator, IKE_AUTH request sent.
#[derive(Debug)]
pub struct ExpectAuthResp {
    nat: Option<NatStatus>,
    cfg: IkeConfig,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    keys: IkeKeys,
    ciphers: Ciphers,
    ni: Zeroizing<Vec<u8>>,
    nr: Zeroizing<Vec<u8>>,
    init_response: Vec<u8>,
    child_spi: [u8; 4],
    pending: Pending,
}

impl ExpectAuthResp {
    /// The IKE_AUTH request as first sent.
    #[must_use]
    pub fn request(&self) -> &[u8] {
        &self.pending.packet
    }

    /// What NAT detection found (`None`: the responder does not do NAT traversal). With
    /// a NAT the IKE_AUTH request and everything after it go to port 4500 with the
    /// non-ESP marker (RFC 7296 §2.23): the caller sends them there.
    #[must_use]
    pub fn nat(&self) -> Option<NatStatus> {
        self.nat
    }

    /// The IKE SA keys derived from IKE_SA_INIT (the peer is not authenticated yet: no
    /// Child SA key is available before [`Established`]).
    #[must_use]
    pub fn ike_keys(&self) -> &IkeKeys {
        &self.keys
    }

    /// When [`ExpectAuthResp::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.pending.next
    }

    /// The retransmission due at `now` (the same bytes as the first send), if any.
    ///
    /// # Errors
    /// [`IkeError::Timeout`] after the last retransmission went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<&[u8]>, IkeError> {
        self.pending.on_timeout(now, self.cfg.backoff)
    }

    /// Handles a datagram that may be the IKE_AUTH response.
    pub fn handle(self, datagram: &[u8]) -> Step<Self, Established> {
        let mut plain = Zeroizing::new(Vec::new());
        let (h, inner) = match self.ciphers.inp.open(datagram, &mut plain) {
            Ok(x) => x,
            // Bad ICV or garbage: silent drop, keep waiting (RFC 7296 §2.21.1).
            Err(e) => return stay(self, e.into()),
        };
        if h.exchange != exchange::IKE_AUTH
            || !h.is_response()
            || h.is_initiator()
            || h.message_id != 1
            || h.spi_i != self.spi_i
            || h.spi_r != self.spi_r
        {
            return stay(self, IkeError::Unexpected("not our IKE_AUTH response"));
        }
        if let Some(n) = error_notify(&inner) {
            return Step::Failed {
                error: IkeError::PeerNotify(n),
                reply: None,
            };
        }
        match self.accept_auth_response(&inner) {
            Ok(est) => Step::Next {
                state: est,
                reply: None,
            },
            Err(e) => Step::Failed {
                error: e,
                reply: None,
            },
        }
    }

    fn accept_auth_response(&self, inner: &[Payload<'_>]) -> Result<Established, IkeError> {
        let cfg = &self.cfg;
        let proof = authenticate_peer(
            cfg,
            inner,
            pt::IDR,
            &self.init_response,
            &self.ni,
            &self.keys.sk_pr,
        )?;
        let wanted = esp_proposal(&cfg.child, &[], 1);
        let answer = child_answer(cfg, inner, &wanted, &cfg.ts_local, &cfg.ts_remote)?;
        let keys = child_keys(
            cfg.prf,
            &self.keys.sk_d,
            None,
            &self.ni,
            &self.nr,
            child_sizes(&cfg.child)?,
        )?;
        Ok(Established {
            nat: self.nat,
            initiator: true,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            keys: self.keys.clone(),
            cfg: cfg.clone(),
            children: vec![Child {
                requested_by_us: true,
                sa: ChildSa {
                    spi_i: self.child_spi,
                    spi_r: answer.spi,
                    suite: cfg.child,
                    keys,
                    ts_i: answer.ts_i,
                    ts_r: answer.ts_r,
                    transport: answer.transport,
                },
            }],
            cached: None,
            peer_initial_contact: false,
            ciphers: Ciphers::new(cfg.suite, &self.keys, true)?,
            backoff: cfg.backoff,
            next_request_id: 2,
            expect_request_id: 0,
            pending: None,
            closed: false,
            _auth: proof,
        })
    }
}

// ------------------------------------------------------------------------------------------
// Responder
// ------------------------------------------------------------------------------------------

/// What the responder does with an IKE_SA_INIT request it does not accept.
#[derive(Debug)]
pub enum InitRejected {
    /// Drop it silently (malformed, not a request, IKEv1...).
    Drop(IkeError),
    /// Answer with an unprotected error notification and keep no state.
    Reply(IkeError, Vec<u8>),
}

fn init_error_reply(req: &Header, spi_r: [u8; 8], ty: u16, data: &[u8]) -> Option<Vec<u8>> {
    Message {
        header: header(req.spi_i, spi_r, exchange::IKE_SA_INIT, flags::RESPONSE, 0),
        payloads: vec![notify_payload(ty, data)],
    }
    .emit()
    .ok()
}

/// The stateless cookies of RFC 7296 §2.6.
///
/// `Cookie = <VersionIDofSecret> | HMAC-SHA-256(secret, Ni | IPi | SPIi)`: one version
/// byte and 32 bytes of MAC. The secret is rotated by the caller ([`CookieJar::rotate`]);
/// cookies made with the current or the previous secret are accepted, so a rotation does
/// not break exchanges in flight.
pub struct CookieJar {
    current: (u8, Zeroizing<Vec<u8>>),
    previous: Option<(u8, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("version", &self.current.0)
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar with `secret` (random bytes from the caller, at least 32) as version 0.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            current: (0, Zeroizing::new(secret.to_vec())),
            previous: None,
        }
    }

    /// Replaces the secret; the old one is still accepted until the next rotation.
    pub fn rotate(&mut self, secret: &[u8]) {
        let version = self.current.0.wrapping_add(1);
        let old = core::mem::replace(
            &mut self.current,
            (version, Zeroizing::new(secret.to_vec())),
        );
        self.previous = Some(old);
    }

    fn mac(secret: &[u8], ni: &[u8], ip: &IpAddr, spi_i: &[u8; 8]) -> Zeroizing<Vec<u8>> {
        let ip = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        PrfAlg::HmacSha256.prf(secret, &[ni, &ip, spi_i])
    }

    /// The cookie for an initiator.
    #[must_use]
    pub fn make(&self, ni: &[u8], ip: &IpAddr, spi_i: &[u8; 8]) -> Vec<u8> {
        let mut c = vec![self.current.0];
        c.extend_from_slice(&Self::mac(&self.current.1, ni, ip, spi_i));
        c
    }

    /// Whether `cookie` is one this jar made (current or previous secret) for these values.
    #[must_use]
    pub fn check(&self, cookie: &[u8], ni: &[u8], ip: &IpAddr, spi_i: &[u8; 8]) -> bool {
        let Some((version, mac)) = cookie.split_first() else {
            return false;
        };
        let secret = if *version == self.current.0 {
            &self.current.1
        } else {
            match &self.previous {
                Some((v, s)) if v == version => s,
                _ => return false,
            }
        };
        let want = Self::mac(secret, ni, ip, spi_i);
        want.len() == mac.len() && bool::from(want.ct_eq(mac))
    }
}

/// What the responder knows about an IKE_SA_INIT request besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct InitContext<'a> {
    /// The path the request arrived on: `remote` is its source (IPi of the cookie,
    /// and the address NAT detection checks), `local` the address it was sent to.
    pub path: Path,
    /// The cookie secrets.
    pub cookies: &'a CookieJar,
    /// Whether a valid cookie is required: the caller sets it while the number of
    /// half-open SAs is above its threshold (RFC 7296 §2.6). Requests without one then
    /// get only a COOKIE notification and leave no state.
    pub require_cookie: bool,
}

/// Handles an IKE_SA_INIT request: on success returns the new half-open SA and the
/// response to send (also cached in the state for retransmitted requests).
///
/// # Errors
/// [`InitRejected`]: silent drop, or COOKIE / NO_PROPOSAL_CHOSEN / INVALID_KE_PAYLOAD /
/// INVALID_SYNTAX / INVALID_MAJOR_VERSION / UNSUPPORTED_CRITICAL_PAYLOAD replies.
pub fn respond_sa_init(
    cfg: &IkeConfig,
    datagram: &[u8],
    ctx: &InitContext<'_>,
    rng: &mut dyn Random,
) -> Result<(ExpectAuthReq, Vec<u8>), InitRejected> {
    let m = match Message::parse(datagram) {
        Ok(m) => m,
        Err(e) => {
            // Answer only what is recognisably an IKEv2 initial request.
            let reply = Header::parse_any_version(datagram)
                .ok()
                .and_then(|(h, _, _)| {
                    let initial = h.exchange == exchange::IKE_SA_INIT
                        && !h.is_response()
                        && h.spi_r == [0; 8];
                    let n = e.notify()?;
                    if initial {
                        init_error_reply(&h, [0; 8], n, &[])
                    } else {
                        None
                    }
                });
            return Err(match reply {
                Some(r) => InitRejected::Reply(e.into(), r),
                None => InitRejected::Drop(e.into()),
            });
        }
    };
    let h = m.header;
    if h.exchange != exchange::IKE_SA_INIT
        || h.is_response()
        || !h.is_initiator()
        || h.message_id != 0
        || h.spi_r != [0; 8]
    {
        return Err(InitRejected::Drop(IkeError::Unexpected(
            "not an initial IKE_SA_INIT request",
        )));
    }
    let get = |ty, name| one(&m.payloads, ty, name).map_err(InitRejected::Drop);
    let Payload::Nonce(ni) = get(pt::NONCE, "Nonce")? else {
        return Err(InitRejected::Drop(IkeError::MissingPayload("Nonce")));
    };
    if !(16..=256).contains(&ni.len()) {
        return Err(InitRejected::Drop(IkeError::Unexpected(
            "nonce length outside 16..=256",
        )));
    }
    if ctx.require_cookie {
        // The cookie must be the first payload (RFC 7296 §2.6); checked before any
        // other work, and a request without a valid one leaves no state.
        let valid = matches!(
            m.payloads.first(),
            Some(Payload::Notify(n)) if n.ty == notify::COOKIE
                && ctx.cookies.check(n.data, ni, &ctx.path.remote.ip(), &h.spi_i)
        );
        if !valid {
            let cookie = ctx.cookies.make(ni, &ctx.path.remote.ip(), &h.spi_i);
            return Err(
                match init_error_reply(&h, [0; 8], notify::COOKIE, &cookie) {
                    Some(r) => InitRejected::Reply(IkeError::CookieRequired, r),
                    None => InitRejected::Drop(IkeError::CookieRequired),
                },
            );
        }
    }
    let Payload::Sa(props) = get(pt::SA, "SA")? else {
        return Err(InitRejected::Drop(IkeError::MissingPayload("SA")));
    };
    let ours = ike_proposal(cfg, 1);
    let Some(chosen) = props
        .iter()
        .find(|p| p.protocol == protocol::IKE && p.spi.is_empty() && offers(p, &ours.transforms))
    else {
        let r = init_error_reply(&h, [0; 8], notify::NO_PROPOSAL_CHOSEN, &[]);
        return Err(match r {
            Some(r) => InitRejected::Reply(IkeError::NoProposalChosen, r),
            None => InitRejected::Drop(IkeError::NoProposalChosen),
        });
    };
    let Payload::Ke { group, data: ke } = get(pt::KE, "KE")? else {
        return Err(InitRejected::Drop(IkeError::MissingPayload("KE")));
    };
    if *group != cfg.group.id() {
        let want = cfg.group.id().to_be_bytes();
        let e = IkeError::InvalidKePayload(cfg.group.id());
        return Err(
            match init_error_reply(&h, [0; 8], notify::INVALID_KE_PAYLOAD, &want) {
                Some(r) => InitRejected::Reply(e, r),
                None => InitRejected::Drop(e),
            },
        );
    }
    let fail = |e: IkeError| InitRejected::Drop(e);
    let share = key_share(cfg.group, rng).map_err(fail)?;
    let spi_r = spi8(rng);
    let nr = random_vec(rng, NONCE_LEN);
    // The peer's KE value is checked (RFC 6989) before any state is kept.
    let keys = derive(cfg, &share, ke, ni, &nr, &h.spi_i, &spi_r).map_err(|e| {
        match init_error_reply(&h, [0; 8], notify::INVALID_SYNTAX, &[]) {
            Some(r) => InitRejected::Reply(e, r),
            None => InitRejected::Drop(e),
        }
    })?;
    let ciphers = Ciphers::new(cfg.suite, &keys, false).map_err(fail)?;
    // The initiator hashed a zero SPIr into its request's NAT detection data.
    let nat = detect_nat(&m.payloads, &h.spi_i, &[0; 8], ctx.path);
    let our_nat = nat_notifies(&h.spi_i, &spi_r, ctx.path);
    let resp = Message {
        header: header(h.spi_i, spi_r, exchange::IKE_SA_INIT, flags::RESPONSE, 0),
        payloads: vec![
            Payload::Sa(vec![ike_proposal(cfg, chosen.num)]),
            Payload::Ke {
                group: cfg.group.id(),
                data: share.public(),
            },
            Payload::Nonce(&nr),
            notify_payload(notify::NAT_DETECTION_SOURCE_IP, &our_nat[0]),
            notify_payload(notify::NAT_DETECTION_DESTINATION_IP, &our_nat[1]),
        ],
    }
    .emit()
    .map_err(|_| fail(IkeError::Unexpected("response cannot be encoded")))?;
    let state = ExpectAuthReq {
        nat,
        cfg: cfg.clone(),
        spi_i: h.spi_i,
        spi_r,
        keys,
        ciphers,
        ni: Zeroizing::new(ni.to_vec()),
        nr,
        init_request: datagram.to_vec(),
        init_response: resp.clone(),
    };
    Ok((state, resp))
}

/// Responder, IKE_SA_INIT answered, waiting for IKE_AUTH.
#[derive(Debug)]
pub struct ExpectAuthReq {
    nat: Option<NatStatus>,
    cfg: IkeConfig,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    keys: IkeKeys,
    ciphers: Ciphers,
    ni: Zeroizing<Vec<u8>>,
    nr: Zeroizing<Vec<u8>>,
    init_request: Vec<u8>,
    init_response: Vec<u8>,
}

impl ExpectAuthReq {
    /// The SPIs (initiator's, ours) this half-open SA is found by.
    #[must_use]
    pub fn spis(&self) -> ([u8; 8], [u8; 8]) {
        (self.spi_i, self.spi_r)
    }

    /// Handles a datagram for this SA: a retransmitted IKE_SA_INIT request (answered from
    /// the cache) or the IKE_AUTH request.
    pub fn handle(self, datagram: &[u8], rng: &mut dyn Random) -> Step<Self, Established> {
        if datagram == self.init_request.as_slice() {
            let reply = Some(self.init_response.clone());
            return Step::Stay {
                state: self,
                reply,
                dropped: None,
            };
        }
        let mut plain = Zeroizing::new(Vec::new());
        let (h, inner) = match self.ciphers.inp.open(datagram, &mut plain) {
            Ok(x) => x,
            Err(e) => return stay(self, e.into()),
        };
        if h.exchange != exchange::IKE_AUTH
            || h.is_response()
            || !h.is_initiator()
            || h.message_id != 1
            || h.spi_i != self.spi_i
            || h.spi_r != self.spi_r
        {
            return stay(self, IkeError::Unexpected("not the IKE_AUTH request"));
        }
        match self.accept_auth_request(&inner, rng) {
            Ok(est) => {
                let reply = est.cached.as_ref().map(|(_, r)| r.clone());
                let est = Established {
                    cached: est.cached.map(|(_, r)| (datagram.to_vec(), r)),
                    ..est
                };
                Step::Next { state: est, reply }
            }
            Err(e) => {
                let ty = match e {
                    IkeError::NoProposalChosen => notify::NO_PROPOSAL_CHOSEN,
                    IkeError::TsUnacceptable => notify::TS_UNACCEPTABLE,
                    IkeError::MissingPayload(_) => notify::INVALID_SYNTAX,
                    _ => notify::AUTHENTICATION_FAILED,
                };
                let h = header(
                    self.spi_i,
                    self.spi_r,
                    exchange::IKE_AUTH,
                    flags::RESPONSE,
                    1,
                );
                let reply = self.ciphers.seal(&h, &[notify_payload(ty, &[])], rng).ok();
                Step::Failed { error: e, reply }
            }
        }
    }

    fn accept_auth_request(
        &self,
        inner: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<Established, IkeError> {
        let cfg = &self.cfg;
        let proof = authenticate_peer(
            cfg,
            inner,
            pt::IDI,
            &self.init_request,
            &self.nr,
            &self.keys.sk_pi,
        )?;
        let Payload::Sa(props) = one(inner, pt::SA, "SA")? else {
            return Err(IkeError::MissingPayload("SA"));
        };
        let wanted = esp_proposal(&cfg.child, &[], 1);
        let Some(chosen) = props.iter().find(|p| {
            p.protocol == protocol::ESP && p.spi.len() == 4 && offers(p, &wanted.transforms)
        }) else {
            return Err(IkeError::NoProposalChosen);
        };
        let spi_i: [u8; 4] = chosen
            .spi
            .try_into()
            .map_err(|_| IkeError::NoProposalChosen)?;
        let (tsi, tsr) = selectors(inner)?;
        // Narrow to our policy (RFC 7296 §2.9); the initiator's TSi is our remote side.
        let tsi = ts::narrow(tsi, &cfg.ts_remote);
        let tsr = ts::narrow(tsr, &cfg.ts_local);
        if tsi.is_empty() || tsr.is_empty() {
            return Err(IkeError::TsUnacceptable);
        }
        let transport = cfg.child.transport && has_notify(inner, notify::USE_TRANSPORT_MODE);
        let initial_contact = has_notify(inner, notify::INITIAL_CONTACT);
        let spi_r = spi4(rng);
        let idr = cfg.local_id.as_id();
        let my_auth = psk_auth(
            cfg.prf,
            &cfg.psk,
            &self.init_response,
            &self.ni,
            &self.keys.sk_pr,
            &idr,
        );
        let mut reply_payloads = vec![
            Payload::IdR(idr),
            Payload::Auth(Auth {
                method: crate::consts::auth::SHARED_KEY_MIC,
                data: &my_auth,
            }),
        ];
        if transport {
            reply_payloads.push(notify_payload(notify::USE_TRANSPORT_MODE, &[]));
        }
        reply_payloads.push(Payload::Sa(vec![esp_proposal(
            &cfg.child, &spi_r, chosen.num,
        )]));
        reply_payloads.push(Payload::TsI(tsi.clone()));
        reply_payloads.push(Payload::TsR(tsr.clone()));
        let h = header(
            self.spi_i,
            self.spi_r,
            exchange::IKE_AUTH,
            flags::RESPONSE,
            1,
        );
        let reply = self.ciphers.seal(&h, &reply_payloads, rng)?;
        let keys = child_keys(
            cfg.prf,
            &self.keys.sk_d,
            None,
            &self.ni,
            &self.nr,
            child_sizes(&cfg.child)?,
        )?;
        Ok(Established {
            nat: self.nat,
            initiator: false,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            keys: self.keys.clone(),
            cfg: cfg.clone(),
            children: vec![Child {
                requested_by_us: false,
                sa: ChildSa {
                    spi_i,
                    spi_r,
                    suite: cfg.child,
                    keys,
                    ts_i: tsi,
                    ts_r: tsr,
                    transport,
                },
            }],
            cached: Some((Vec::new(), reply)),
            peer_initial_contact: initial_contact,
            ciphers: Ciphers::new(cfg.suite, &self.keys, false)?,
            backoff: cfg.backoff,
            next_request_id: 0,
            expect_request_id: 2,
            pending: None,
            closed: false,
            _auth: proof,
        })
    }
}

// ------------------------------------------------------------------------------------------
// Established
// ------------------------------------------------------------------------------------------

/// An IKE SA whose peer has authenticated, with the Child SA made by IKE_AUTH.
///
/// INFORMATIONAL and CREATE_CHILD_SA exchanges run on it in both directions (RFC 7296
/// §1.3, §1.4, §2.3): each side has at most one request of its own outstanding (window
/// size 1), retransmitted bit for bit with exponential back-off
/// ([`Established::handle_timeout`]; a request that goes unanswered means the peer is
/// dead), and answers the peer's requests in message-ID order, replaying its last
/// response when the last request comes again.
///
/// Child SAs are created and rekeyed (make before break: the caller installs the new
/// pair, then deletes the old one with [`Established::delete_child`]), optionally with a
/// fresh key exchange ([`ChildSuite::pfs`]). A peer's rekey of a Child SA that we are
/// rekeying ourselves at that moment is refused with TEMPORARY_FAILURE (RFC 7296 §2.25)
/// rather than resolved by the nonce rule of §2.8.1.
#[derive(Debug)]
pub struct Established {
    cfg: IkeConfig,
    nat: Option<NatStatus>,
    initiator: bool,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    keys: IkeKeys,
    children: Vec<Child>,
    /// The peer's last request and our response to it, for retransmitted requests.
    cached: Option<(Vec<u8>, Vec<u8>)>,
    peer_initial_contact: bool,
    ciphers: Ciphers,
    backoff: Backoff,
    /// Message ID of our next request.
    next_request_id: u32,
    /// Message ID of the peer's next request (wider than the field, so that after
    /// 0xffffffff no ID matches: message IDs never wrap).
    expect_request_id: u64,
    /// Our outstanding request.
    pending: Option<(Pending, Request)>,
    /// The IKE SA was deleted (by either side).
    closed: bool,
    _auth: AuthVerified,
}

/// A Child SA pair and which side requested it.
#[derive(Debug)]
struct Child {
    sa: ChildSa,
    /// We sent the request that created it (so `sa.spi_i` is ours).
    requested_by_us: bool,
}

impl Child {
    /// The SPI of our inbound ESP SA (the one we chose).
    fn inbound(&self) -> [u8; 4] {
        if self.requested_by_us {
            self.sa.spi_i
        } else {
            self.sa.spi_r
        }
    }

    /// The SPI of our outbound ESP SA (the one the peer chose).
    fn outbound(&self) -> [u8; 4] {
        if self.requested_by_us {
            self.sa.spi_r
        } else {
            self.sa.spi_i
        }
    }
}

/// A Delete payload for one ESP SA.
fn esp_delete(spi: &[u8; 4]) -> Payload<'_> {
    Payload::Delete(crate::wire::Delete {
        protocol: protocol::ESP,
        spi_size: 4,
        spis: spi,
    })
}

/// What our outstanding request asks.
#[derive(Debug)]
enum Request {
    Liveness,
    /// Delete the child whose inbound SPI this is.
    DeleteChild([u8; 4]),
    DeleteIke,
    CreateChild(Box<ChildRequest>),
    RekeyIke(Box<IkeRekeyRequest>),
}

/// Our side of an IKE SA rekey in flight.
#[derive(Debug)]
struct IkeRekeyRequest {
    /// Our SPI of the new IKE SA (we will be its initiator).
    spi: [u8; 8],
    ni: Zeroizing<Vec<u8>>,
    share: KeyShare,
}

/// Our side of a CREATE_CHILD_SA exchange in flight.
#[derive(Debug)]
struct ChildRequest {
    /// The inbound SPI of the child being rekeyed.
    rekey: Option<[u8; 4]>,
    /// Our inbound SPI for the new child.
    spi: [u8; 4],
    ni: Zeroizing<Vec<u8>>,
    share: Option<KeyShare>,
    ts_i: Vec<TrafficSelector>,
    ts_r: Vec<TrafficSelector>,
}

/// Something an exchange on the established SA made happen. Child SAs are named by our
/// inbound SPI; [`Established::child_by_inbound`] gives the whole pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Our liveness check was answered.
    Alive,
    /// The peer checked our liveness (its empty request was answered).
    PeerChecked,
    /// A Child SA pair is deleted: by the peer, or our delete was acknowledged. Remove
    /// both ESP SAs.
    ChildDeleted {
        /// Our inbound SPI of the deleted pair.
        inbound: [u8; 4],
        /// Our outbound SPI of the deleted pair.
        outbound: [u8; 4],
    },
    /// A new Child SA pair exists (install both ESP SAs).
    ChildCreated {
        /// Our inbound SPI of the new pair.
        inbound: [u8; 4],
    },
    /// A Child SA pair was rekeyed: install the new pair; the old one stays until it is
    /// deleted (by whoever requested the rekey).
    ChildRekeyed {
        /// Our inbound SPI of the old pair.
        old: [u8; 4],
        /// Our inbound SPI of the new pair.
        new: [u8; 4],
    },
    /// Our CREATE_CHILD_SA request failed (the peer's error notification, or a response
    /// we could not accept); nothing was created.
    ChildFailed(IkeError),
    /// The IKE SA is deleted (with its Child SAs): by the peer, or our delete was
    /// acknowledged. Nothing more is sent or accepted on it.
    IkeDeleted,
    /// The IKE SA was rekeyed (RFC 7296 §1.3.2): the new one is in [`Output::rekeyed`].
    IkeRekeyed,
    /// Our IKE SA rekey failed (the peer's error notification, or a response we could
    /// not accept); nothing changed.
    IkeRekeyFailed(IkeError),
}

/// The result of a datagram handled by an [`Established`] SA.
#[derive(Debug, Default)]
#[must_use]
pub struct Output {
    /// The response to send, if the datagram was a request (or its retransmission).
    pub reply: Option<Vec<u8>>,
    /// What happened.
    pub event: Option<Event>,
    /// With [`Event::IkeRekeyed`]: the new IKE SA, which now holds every Child SA. The old
    /// one stays until the side that asked for the rekey deletes it
    /// ([`Established::delete_ike`] on the old SA).
    pub rekeyed: Option<Box<Established>>,
}

/// The ESP proposal of a CREATE_CHILD_SA exchange: with the key exchange group when the
/// suite asks for perfect forward secrecy.
fn ccsa_proposal<'a>(cfg: &IkeConfig, spi: &'a [u8], num: u8) -> Proposal<'a> {
    let mut p = esp_proposal(&cfg.child, spi, num);
    if cfg.child.pfs {
        p.transforms.push(plain(transform::DH, cfg.group.id()));
    }
    p
}

impl Established {
    /// Whether we initiated the IKE SA.
    #[must_use]
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// What NAT detection found in IKE_SA_INIT (`None`: the peer does not do NAT
    /// traversal).
    #[must_use]
    pub fn nat(&self) -> Option<NatStatus> {
        self.nat
    }

    /// Responder: whether the initiator sent INITIAL_CONTACT (RFC 7296 §2.4): the caller
    /// then deletes every other IKE SA (and its Child SAs) with the same authenticated
    /// identity.
    #[must_use]
    pub fn peer_initial_contact(&self) -> bool {
        self.peer_initial_contact
    }

    /// The IKE SA SPIs (initiator's, responder's).
    #[must_use]
    pub fn spis(&self) -> ([u8; 8], [u8; 8]) {
        (self.spi_i, self.spi_r)
    }

    /// The IKE SA keys.
    #[must_use]
    pub fn ike_keys(&self) -> &IkeKeys {
        &self.keys
    }

    /// The first Child SA (the one IKE_AUTH made, until it is deleted).
    #[must_use]
    pub fn child(&self) -> Option<&ChildSa> {
        self.children.first().map(|c| &c.sa)
    }

    /// Every Child SA pair of this IKE SA, oldest first.
    pub fn children(&self) -> impl Iterator<Item = &ChildSa> {
        self.children.iter().map(|c| &c.sa)
    }

    /// The Child SA pair whose inbound SPI (ours) is `spi`.
    #[must_use]
    pub fn child_by_inbound(&self, spi: [u8; 4]) -> Option<&ChildSa> {
        self.children
            .iter()
            .find(|c| c.inbound() == spi)
            .map(|c| &c.sa)
    }

    /// Whether the IKE SA has been deleted.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The message ID our next request will carry.
    #[must_use]
    pub fn next_message_id(&self) -> u32 {
        self.next_request_id
    }

    /// Seals a request or response of exchange `ex` with our role's flags.
    fn message(
        &self,
        ex: u8,
        response: bool,
        message_id: u32,
        payloads: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        let mut fl = if self.initiator { flags::INITIATOR } else { 0 };
        if response {
            fl |= flags::RESPONSE;
        }
        let h = header(self.spi_i, self.spi_r, ex, fl, message_id);
        self.ciphers.seal(&h, payloads, rng)
    }

    fn request(
        &mut self,
        kind: Request,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        if self.closed {
            return Err(IkeError::Unexpected("the IKE SA is deleted"));
        }
        if self.pending.is_some() {
            return Err(IkeError::Busy);
        }
        // Message IDs must not wrap (RFC 7296 §2.2): the SA has to be rekeyed first.
        if self.next_request_id == u32::MAX {
            return Err(IkeError::NeedsRekey);
        }
        let (ex, payloads): (u8, Vec<Payload<'_>>) = match &kind {
            Request::Liveness => (exchange::INFORMATIONAL, vec![]),
            Request::DeleteChild(spi) => (exchange::INFORMATIONAL, vec![esp_delete(spi)]),
            Request::DeleteIke => (
                exchange::INFORMATIONAL,
                vec![Payload::Delete(crate::wire::Delete {
                    protocol: protocol::IKE,
                    spi_size: 0,
                    spis: &[],
                })],
            ),
            Request::CreateChild(c) => {
                let mut v = Vec::with_capacity(7);
                if let Some(old) = &c.rekey {
                    v.push(Payload::Notify(Notify {
                        protocol: protocol::ESP,
                        spi: old,
                        ty: notify::REKEY_SA,
                        data: &[],
                    }));
                }
                if self.cfg.child.transport {
                    v.push(notify_payload(notify::USE_TRANSPORT_MODE, &[]));
                }
                v.push(Payload::Sa(vec![ccsa_proposal(&self.cfg, &c.spi, 1)]));
                v.push(Payload::Nonce(&c.ni));
                if let Some(k) = &c.share {
                    v.push(Payload::Ke {
                        group: k.group().id(),
                        data: k.public(),
                    });
                }
                v.push(Payload::TsI(c.ts_i.clone()));
                v.push(Payload::TsR(c.ts_r.clone()));
                (exchange::CREATE_CHILD_SA, v)
            }
            Request::RekeyIke(r) => (
                exchange::CREATE_CHILD_SA,
                vec![
                    Payload::Sa(vec![ike_proposal_with_spi(&self.cfg, 1, &r.spi)]),
                    Payload::Nonce(&r.ni),
                    Payload::Ke {
                        group: r.share.group().id(),
                        data: r.share.public(),
                    },
                ],
            ),
        };
        let packet = self.message(ex, false, self.next_request_id, &payloads, rng)?;
        self.next_request_id += 1;
        self.pending = Some((Pending::new(packet.clone(), now, self.backoff), kind));
        Ok(packet)
    }

    /// Builds an empty INFORMATIONAL request (a liveness check, RFC 7296 §1.4).
    ///
    /// # Errors
    /// [`IkeError::Busy`] while another request of ours is outstanding,
    /// [`IkeError::NeedsRekey`] when the message IDs are used up.
    pub fn check_liveness(
        &mut self,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        self.request(Request::Liveness, now, rng)
    }

    /// Builds a request deleting the Child SA pair whose inbound SPI (ours) is `inbound`
    /// (RFC 7296 §1.4.1).
    ///
    /// # Errors
    /// As [`Established::check_liveness`]; [`IkeError::Unexpected`] for an unknown SPI.
    pub fn delete_child(
        &mut self,
        inbound: [u8; 4],
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        if self.child_by_inbound(inbound).is_none() {
            return Err(IkeError::Unexpected("no Child SA with that SPI"));
        }
        self.request(Request::DeleteChild(inbound), now, rng)
    }

    /// Builds a request deleting the IKE SA and its Child SAs.
    ///
    /// # Errors
    /// As [`Established::check_liveness`].
    pub fn delete_ike(&mut self, now: Instant, rng: &mut dyn Random) -> Result<Vec<u8>, IkeError> {
        self.request(Request::DeleteIke, now, rng)
    }

    /// Builds a CREATE_CHILD_SA request (RFC 7296 §1.3): a new Child SA pair for the
    /// configured selectors, or with `rekey` (our inbound SPI of an existing pair) its
    /// replacement with the same selectors (§1.3.3).
    ///
    /// # Errors
    /// As [`Established::check_liveness`]; [`IkeError::Unexpected`] for an unknown SPI.
    pub fn create_child(
        &mut self,
        rekey: Option<[u8; 4]>,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        let (ts_i, ts_r) = match rekey {
            None => (self.cfg.ts_local.clone(), self.cfg.ts_remote.clone()),
            Some(spi) => {
                let old = self
                    .children
                    .iter()
                    .find(|c| c.inbound() == spi)
                    .ok_or(IkeError::Unexpected("no Child SA with that SPI"))?;
                // Our side first: TSi is the requester's.
                if old.requested_by_us {
                    (old.sa.ts_i.clone(), old.sa.ts_r.clone())
                } else {
                    (old.sa.ts_r.clone(), old.sa.ts_i.clone())
                }
            }
        };
        if self.closed || self.pending.is_some() {
            return Err(if self.closed {
                IkeError::Unexpected("the IKE SA is deleted")
            } else {
                IkeError::Busy
            });
        }
        let share = if self.cfg.child.pfs {
            Some(key_share(self.cfg.group, rng)?)
        } else {
            None
        };
        let req = ChildRequest {
            rekey,
            spi: self.fresh_spi(rng),
            ni: random_vec(rng, NONCE_LEN),
            share,
            ts_i,
            ts_r,
        };
        self.request(Request::CreateChild(Box::new(req)), now, rng)
    }

    /// Builds a request rekeying the IKE SA (RFC 7296 §1.3.2): a new IKE SA with fresh
    /// SPIs, nonces and key exchange, keyed from this one's SK_d (§2.18). When it
    /// completes ([`Event::IkeRekeyed`]), delete this SA with [`Established::delete_ike`].
    ///
    /// # Errors
    /// As [`Established::check_liveness`].
    pub fn rekey_ike(&mut self, now: Instant, rng: &mut dyn Random) -> Result<Vec<u8>, IkeError> {
        if self.closed || self.pending.is_some() {
            return Err(if self.closed {
                IkeError::Unexpected("the IKE SA is deleted")
            } else {
                IkeError::Busy
            });
        }
        let req = IkeRekeyRequest {
            spi: spi8(rng),
            ni: random_vec(rng, NONCE_LEN),
            share: key_share(self.cfg.group, rng)?,
        };
        self.request(Request::RekeyIke(Box::new(req)), now, rng)
    }

    /// The IKE SA that replaces this one: new SPIs and keys (SKEYSEED from our SK_d,
    /// RFC 7296 §2.18), the Child SAs moved over, message IDs from 0. `initiator`: we
    /// asked for the rekey.
    #[allow(clippy::too_many_arguments)]
    fn successor(
        &mut self,
        initiator: bool,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        gir: &[u8],
        ni: &[u8],
        nr: &[u8],
    ) -> Result<Established, IkeError> {
        let prf = self.cfg.prf;
        let seed = crate::keys::skeyseed_rekey(prf, &self.keys.sk_d, gir, ni, nr);
        let sizes = self.cfg.suite.key_sizes()?;
        let keys = IkeKeys::from_skeyseed(prf, &seed, ni, nr, &spi_i, &spi_r, sizes)?;
        Ok(Established {
            cfg: self.cfg.clone(),
            nat: self.nat,
            initiator,
            spi_i,
            spi_r,
            ciphers: Ciphers::new(self.cfg.suite, &keys, initiator)?,
            keys,
            children: core::mem::take(&mut self.children),
            cached: None,
            peer_initial_contact: false,
            backoff: self.backoff,
            next_request_id: 0,
            expect_request_id: 0,
            pending: None,
            closed: false,
            _auth: self._auth,
        })
    }

    /// A new inbound SPI that no Child SA of ours uses.
    fn fresh_spi(&self, rng: &mut dyn Random) -> [u8; 4] {
        loop {
            let s = spi4(rng);
            if self.children.iter().all(|c| c.inbound() != s) {
                return s;
            }
        }
    }

    /// When [`Established::handle_timeout`] is next due, if a request is outstanding.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|(p, _)| p.next)
    }

    /// The retransmission of our outstanding request due at `now`, if any.
    ///
    /// # Errors
    /// [`IkeError::Timeout`] when the last retransmission went unanswered: the peer is
    /// dead, and the caller deletes the IKE SA and its Child SAs without telling it.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<Vec<u8>>, IkeError> {
        let Some((p, _)) = &mut self.pending else {
            return Ok(None);
        };
        match p.on_timeout(now, self.backoff) {
            Ok(r) => Ok(r.map(<[u8]>::to_vec)),
            Err(e) => {
                self.pending = None;
                Err(e)
            }
        }
    }

    /// Handles a datagram for this SA: a response to our request, a request of the peer,
    /// or a retransmission of the peer's last request (answered from the cache).
    ///
    /// # Errors
    /// Why the datagram was dropped (nothing changed): integrity failure, a message ID
    /// outside the window, a response nothing was asked for, an exchange not implemented.
    pub fn handle(&mut self, datagram: &[u8], rng: &mut dyn Random) -> Result<Output, IkeError> {
        if self.closed {
            return Err(IkeError::Unexpected("the IKE SA is deleted"));
        }
        if let Some((req, resp)) = &self.cached {
            if datagram == req.as_slice() {
                return Ok(Output {
                    reply: Some(resp.clone()),
                    event: None,
                    rekeyed: None,
                });
            }
        }
        let mut plain = Zeroizing::new(Vec::new());
        let (h, inner) = self.ciphers.inp.open(datagram, &mut plain)?;
        if h.spi_i != self.spi_i || h.spi_r != self.spi_r || h.is_initiator() == self.initiator {
            return Err(IkeError::Unexpected("SPIs or Initiator flag"));
        }
        if h.is_response() {
            return self.handle_response(&h, &inner);
        }
        if u64::from(h.message_id) != self.expect_request_id {
            return Err(IkeError::Unexpected("request outside the window"));
        }
        let ike_rekey = h.exchange == exchange::CREATE_CHILD_SA
            && matches!(inner.iter().find(|p| p.ty() == pt::SA),
                Some(Payload::Sa(props)) if props.iter().any(|p| p.protocol == protocol::IKE));
        let mut rekeyed = None;
        let (payloads_out, event) = match h.exchange {
            exchange::INFORMATIONAL => self.answer_informational(&inner),
            exchange::CREATE_CHILD_SA if ike_rekey => match self.answer_ike_rekey(&inner, rng) {
                Ok((out, new)) => {
                    rekeyed = Some(Box::new(new));
                    (out, Some(Event::IkeRekeyed))
                }
                Err((ty, data)) => (vec![OwnedPayload::Notify(ty, data)], None),
            },
            exchange::CREATE_CHILD_SA => self.answer_create_child(&inner, rng),
            _ => return Err(IkeError::Unexpected("exchange not implemented")),
        };
        let refs: Vec<Payload<'_>> = payloads_out
            .iter()
            .map(|p| p.as_payload(&self.cfg))
            .collect();
        let reply = self.message(h.exchange, true, h.message_id, &refs, rng)?;
        self.expect_request_id += 1;
        self.cached = Some((datagram.to_vec(), reply.clone()));
        if event == Some(Event::IkeDeleted) {
            self.closed = true;
            self.pending = None;
        }
        Ok(Output {
            reply: Some(reply),
            event,
            rekeyed,
        })
    }

    fn handle_response(&mut self, h: &Header, inner: &[Payload<'_>]) -> Result<Output, IkeError> {
        let Some((_, kind)) = &self.pending else {
            return Err(IkeError::Unexpected("response to no request"));
        };
        let want_ex = match kind {
            Request::CreateChild(_) | Request::RekeyIke(_) => exchange::CREATE_CHILD_SA,
            Request::Liveness | Request::DeleteChild(_) | Request::DeleteIke => {
                exchange::INFORMATIONAL
            }
        };
        if h.message_id.wrapping_add(1) != self.next_request_id || h.exchange != want_ex {
            return Err(IkeError::Unexpected("response to another request"));
        }
        let Some((_, kind)) = self.pending.take() else {
            return Err(IkeError::Unexpected("response to no request"));
        };
        let event = match kind {
            Request::Liveness => Event::Alive,
            Request::DeleteChild(inbound) => self.remove_child(inbound),
            Request::DeleteIke => {
                self.closed = true;
                Event::IkeDeleted
            }
            Request::CreateChild(req) => match self.accept_child(&req, inner) {
                Ok(ev) => ev,
                Err(e) => Event::ChildFailed(e),
            },
            Request::RekeyIke(req) => match self.accept_ike_rekey(&req, inner) {
                Ok(new) => {
                    return Ok(Output {
                        reply: None,
                        event: Some(Event::IkeRekeyed),
                        rekeyed: Some(Box::new(new)),
                    })
                }
                Err(e) => Event::IkeRekeyFailed(e),
            },
        };
        Ok(Output {
            reply: None,
            event: Some(event),
            rekeyed: None,
        })
    }

    /// The peer's answer to our IKE SA rekey.
    fn accept_ike_rekey(
        &mut self,
        req: &IkeRekeyRequest,
        inner: &[Payload<'_>],
    ) -> Result<Established, IkeError> {
        if let Some(n) = error_notify(inner) {
            return Err(IkeError::PeerNotify(n));
        }
        let Payload::Sa(props) = one(inner, pt::SA, "SA")? else {
            return Err(IkeError::MissingPayload("SA"));
        };
        let spi_r: [u8; 8] = match props.as_slice() {
            [p] if p.num == 1 && chosen_is(p, &ike_proposal(&self.cfg, 1)) => {
                p.spi.try_into().map_err(|_| IkeError::NoProposalChosen)?
            }
            _ => return Err(IkeError::NoProposalChosen),
        };
        let Payload::Nonce(nr) = one(inner, pt::NONCE, "Nonce")? else {
            return Err(IkeError::MissingPayload("Nonce"));
        };
        if !(16..=256).contains(&nr.len()) {
            return Err(IkeError::Unexpected("nonce length outside 16..=256"));
        }
        let Payload::Ke { group, data } = one(inner, pt::KE, "KE")? else {
            return Err(IkeError::MissingPayload("KE"));
        };
        if *group != req.share.group().id() {
            return Err(IkeError::InvalidKePayload(req.share.group().id()));
        }
        let gir = req.share.agree(data)?;
        self.successor(true, req.spi, spi_r, &gir, &req.ni, nr)
    }

    fn remove_child(&mut self, inbound: [u8; 4]) -> Event {
        let outbound = self
            .children
            .iter()
            .find(|c| c.inbound() == inbound)
            .map_or([0; 4], Child::outbound);
        self.children.retain(|c| c.inbound() != inbound);
        Event::ChildDeleted { inbound, outbound }
    }

    /// The peer's response to our CREATE_CHILD_SA request.
    fn accept_child(
        &mut self,
        req: &ChildRequest,
        inner: &[Payload<'_>],
    ) -> Result<Event, IkeError> {
        if let Some(n) = error_notify(inner) {
            return Err(IkeError::PeerNotify(n));
        }
        let cfg = &self.cfg;
        let answer = child_answer(
            cfg,
            inner,
            &ccsa_proposal(cfg, &[], 1),
            &req.ts_i,
            &req.ts_r,
        )?;
        let Payload::Nonce(nr) = one(inner, pt::NONCE, "Nonce")? else {
            return Err(IkeError::MissingPayload("Nonce"));
        };
        if !(16..=256).contains(&nr.len()) {
            return Err(IkeError::Unexpected("nonce length outside 16..=256"));
        }
        let gir = match &req.share {
            Some(k) => {
                let Payload::Ke { group, data } = one(inner, pt::KE, "KE")? else {
                    return Err(IkeError::MissingPayload("KE"));
                };
                if *group != k.group().id() {
                    return Err(IkeError::InvalidKePayload(k.group().id()));
                }
                Some(k.agree(data)?)
            }
            None => None,
        };
        let keys = child_keys(
            cfg.prf,
            &self.keys.sk_d,
            gir.as_deref().map(|g| &g[..]),
            &req.ni,
            nr,
            child_sizes(&cfg.child)?,
        )?;
        self.children.push(Child {
            requested_by_us: true,
            sa: ChildSa {
                spi_i: req.spi,
                spi_r: answer.spi,
                suite: cfg.child,
                keys,
                ts_i: answer.ts_i,
                ts_r: answer.ts_r,
                transport: answer.transport,
            },
        });
        Ok(match req.rekey {
            Some(old) => Event::ChildRekeyed { old, new: req.spi },
            None => Event::ChildCreated { inbound: req.spi },
        })
    }

    /// Our answer to an INFORMATIONAL request: deletes are answered with the other half
    /// of each deleted Child SA (§1.4.1), an IKE SA delete with an empty response.
    fn answer_informational(
        &mut self,
        inner: &[Payload<'_>],
    ) -> (Vec<OwnedPayload>, Option<Event>) {
        let mut ike = false;
        let mut gone = Vec::new();
        for p in inner {
            if let Payload::Delete(d) = p {
                if d.protocol == protocol::IKE {
                    ike = true;
                } else if d.protocol == protocol::ESP {
                    for spi in d.iter() {
                        if let Some(c) = self.children.iter().find(|c| c.outbound() == spi) {
                            gone.push(c.inbound());
                        }
                    }
                }
            }
        }
        if ike {
            return (vec![], Some(Event::IkeDeleted));
        }
        let mut event = Some(Event::PeerChecked);
        let mut out = Vec::new();
        for inbound in gone {
            event = Some(self.remove_child(inbound));
            out.push(OwnedPayload::EspDelete(inbound));
        }
        (out, event)
    }

    /// Our answer to the peer's IKE SA rekey: the response payloads and the new IKE SA
    /// (the peer is its initiator), or an error notification and no change.
    fn answer_ike_rekey(
        &mut self,
        inner: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<(Vec<OwnedPayload>, Established), Refusal> {
        let refuse = |ty: u16| (ty, Vec::new());
        let syntax = |_| refuse(notify::INVALID_SYNTAX);
        if self.pending.is_some() {
            // Our own request (a rekey or a Child SA change) is in flight (§2.25).
            return Err(refuse(notify::TEMPORARY_FAILURE));
        }
        let cfg = self.cfg.clone();
        let (num, spi_i, ni) = offered::<8>(inner, &ike_proposal(&cfg, 1))?;
        let data = peer_ke(inner, cfg.group)?;
        let share = key_share(cfg.group, rng).map_err(syntax)?;
        let gir = share
            .agree(data)
            .map_err(|_| refuse(notify::INVALID_SYNTAX))?;
        let spi_r = spi8(rng);
        let nr = random_vec(rng, NONCE_LEN);
        let new = self
            .successor(false, spi_i, spi_r, &gir, ni, &nr)
            .map_err(syntax)?;
        let out = vec![
            OwnedPayload::IkeSa(spi_r, num),
            OwnedPayload::Nonce(nr),
            OwnedPayload::Ke(share.group().id(), share.public().to_vec()),
        ];
        Ok((out, new))
    }

    /// Our answer to a CREATE_CHILD_SA request: the new pair, or an error notification
    /// (type and data) and no change.
    fn answer_create_child(
        &mut self,
        inner: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> (Vec<OwnedPayload>, Option<Event>) {
        match self.create_child_for_peer(inner, rng) {
            Ok(x) => x,
            Err((ty, data)) => (vec![OwnedPayload::Notify(ty, data)], None),
        }
    }

    fn create_child_for_peer(
        &mut self,
        inner: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<(Vec<OwnedPayload>, Option<Event>), Refusal> {
        let refuse = |ty: u16| (ty, Vec::new());
        let syntax = |_| refuse(notify::INVALID_SYNTAX);
        let cfg = self.cfg.clone();
        // Which pair is rekeyed: the notify carries the peer's inbound SPI, our outbound.
        let rekey = inner.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == notify::REKEY_SA => Some(n.spi),
            _ => None,
        });
        let old = match rekey {
            None => None,
            Some(spi) => {
                let c = self
                    .children
                    .iter()
                    .find(|c| c.outbound() == spi)
                    .ok_or(refuse(notify::CHILD_SA_NOT_FOUND))?;
                let old = c.inbound();
                let ours = matches!(
                    &self.pending,
                    Some((_, Request::CreateChild(r))) if r.rekey == Some(old)
                );
                if ours {
                    // Both sides rekeying the same pair at once (RFC 7296 §2.25).
                    return Err(refuse(notify::TEMPORARY_FAILURE));
                }
                Some(old)
            }
        };
        let (num, spi_i, ni) = offered::<4>(inner, &ccsa_proposal(&cfg, &[], 1))?;
        let (share, gir) = if cfg.child.pfs {
            let data = peer_ke(inner, cfg.group)?;
            let share = key_share(cfg.group, rng).map_err(syntax)?;
            let gir = share
                .agree(data)
                .map_err(|_| refuse(notify::INVALID_SYNTAX))?;
            (Some(share), Some(gir))
        } else {
            (None, None)
        };
        let (tsi, tsr) = selectors(inner).map_err(syntax)?;
        let tsi = ts::narrow(tsi, &cfg.ts_remote);
        let tsr = ts::narrow(tsr, &cfg.ts_local);
        if tsi.is_empty() || tsr.is_empty() {
            return Err(refuse(notify::TS_UNACCEPTABLE));
        }
        let transport = cfg.child.transport && has_notify(inner, notify::USE_TRANSPORT_MODE);
        let spi_r = self.fresh_spi(rng);
        let nr = random_vec(rng, NONCE_LEN);
        let sizes = child_sizes(&cfg.child).map_err(syntax)?;
        let gir_ref = gir.as_deref().map(|g| &g[..]);
        let keys = child_keys(cfg.prf, &self.keys.sk_d, gir_ref, ni, &nr, sizes)
            .map_err(|_| refuse(notify::INVALID_SYNTAX))?;
        let mut out = Vec::with_capacity(6);
        if transport {
            out.push(OwnedPayload::Notify(notify::USE_TRANSPORT_MODE, Vec::new()));
        }
        out.push(OwnedPayload::ChildSa(spi_r, num));
        out.push(OwnedPayload::Nonce(nr));
        if let Some(k) = &share {
            out.push(OwnedPayload::Ke(k.group().id(), k.public().to_vec()));
        }
        out.push(OwnedPayload::Ts(false, tsi.clone()));
        out.push(OwnedPayload::Ts(true, tsr.clone()));
        self.children.push(Child {
            requested_by_us: false,
            sa: ChildSa {
                spi_i,
                spi_r,
                suite: cfg.child,
                keys,
                ts_i: tsi,
                ts_r: tsr,
                transport,
            },
        });
        let event = match old {
            Some(old) => Event::ChildRekeyed { old, new: spi_r },
            None => Event::ChildCreated { inbound: spi_r },
        };
        Ok((out, Some(event)))
    }
}

/// A refusal: the error notification type and its data.
type Refusal = (u16, Vec<u8>);

/// In a CREATE_CHILD_SA request: the first proposal of `wanted`'s protocol offering our
/// transforms with an `N`-byte SPI, and the nonce. Returns the proposal number, the SPI and
/// the nonce.
fn offered<'m, const N: usize>(
    inner: &'m [Payload<'_>],
    wanted: &Proposal<'_>,
) -> Result<(u8, [u8; N], &'m [u8]), Refusal> {
    let syntax = (notify::INVALID_SYNTAX, Vec::new());
    let Ok(Payload::Sa(props)) = one(inner, pt::SA, "SA") else {
        return Err(syntax);
    };
    let (num, spi) = props
        .iter()
        .filter(|p| p.protocol == wanted.protocol && offers(p, &wanted.transforms))
        .find_map(|p| Some((p.num, <[u8; N]>::try_from(p.spi).ok()?)))
        .ok_or((notify::NO_PROPOSAL_CHOSEN, Vec::new()))?;
    match one(inner, pt::NONCE, "Nonce") {
        Ok(Payload::Nonce(n)) if (16..=256).contains(&n.len()) => Ok((num, spi, n)),
        _ => Err(syntax),
    }
}

/// In a CREATE_CHILD_SA request: the KE payload's public value, which must be of `group`
/// (else INVALID_KE_PAYLOAD naming it, RFC 7296 §1.3).
fn peer_ke<'m>(inner: &'m [Payload<'_>], group: Group) -> Result<&'m [u8], Refusal> {
    match one(inner, pt::KE, "KE") {
        Ok(Payload::Ke { group: g, data }) if *g == group.id() => Ok(data),
        Ok(Payload::Ke { .. }) => Err((
            notify::INVALID_KE_PAYLOAD,
            group.id().to_be_bytes().to_vec(),
        )),
        _ => Err((notify::INVALID_SYNTAX, Vec::new())),
    }
}

/// Payloads of a response, owned until they are sealed.
#[derive(Debug)]
enum OwnedPayload {
    EspDelete([u8; 4]),
    Notify(u16, Vec<u8>),
    /// Our ESP proposal with this SPI and proposal number.
    ChildSa([u8; 4], u8),
    /// Our IKE proposal with this (new IKE SA) SPI and proposal number.
    IkeSa([u8; 8], u8),
    Nonce(Zeroizing<Vec<u8>>),
    Ke(u16, Vec<u8>),
    /// TSi (false) or TSr (true).
    Ts(bool, Vec<TrafficSelector>),
}

impl OwnedPayload {
    fn as_payload<'a>(&'a self, cfg: &IkeConfig) -> Payload<'a> {
        match self {
            Self::EspDelete(spi) => esp_delete(spi),
            Self::Notify(ty, data) => notify_payload(*ty, data),
            Self::ChildSa(spi, num) => Payload::Sa(vec![ccsa_proposal(cfg, spi, *num)]),
            Self::IkeSa(spi, num) => Payload::Sa(vec![ike_proposal_with_spi(cfg, *num, spi)]),
            Self::Nonce(n) => Payload::Nonce(n),
            Self::Ke(group, data) => Payload::Ke {
                group: *group,
                data,
            },
            Self::Ts(false, s) => Payload::TsI(s.clone()),
            Self::Ts(true, s) => Payload::TsR(s.clone()),
        }
    }
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    struct Counter(u64);

    impl Random for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                *b = (self.0 >> 56) as u8;
            }
        }
    }

    fn established() -> (Established, Established) {
        let cfg = crate::fuzz_support::fuzz_config();
        let path = crate::fuzz_support::fuzz_path().reversed();
        let jar = CookieJar::new(&[1; 32]);
        let ctx = InitContext {
            path: path.reversed(),
            cookies: &jar,
            require_cookie: false,
        };
        let (mut ri, mut rr) = (Counter(1), Counter(2));
        let now = Instant::now();
        let i1 = ExpectSaInitResp::start(cfg.clone(), path, now, &mut ri).unwrap();
        let (r1, m2) = respond_sa_init(&cfg, i1.request(), &ctx, &mut rr).unwrap();
        let Step::Next {
            state: i2,
            reply: Some(m3),
        } = i1.handle(&m2, now, &mut ri)
        else {
            panic!()
        };
        let Step::Next {
            state: r2,
            reply: Some(m4),
        } = r1.handle(&m3, &mut rr)
        else {
            panic!()
        };
        let Step::Next { state: i3, .. } = i2.handle(&m4) else {
            panic!()
        };
        (i3, r2)
    }

    #[test]
    fn message_id_wrap_forces_rekey() {
        let (mut i, mut r) = established();
        let mut rng = Counter(9);
        let now = Instant::now();
        // Both sides jump to the last two message IDs.
        i.next_request_id = u32::MAX - 1;
        r.expect_request_id = u64::from(u32::MAX - 1);
        let req = i.check_liveness(now, &mut rng).unwrap();
        let out = r.handle(&req, &mut rng).unwrap();
        assert_eq!(
            i.handle(&out.reply.unwrap(), &mut rng).unwrap().event,
            Some(Event::Alive)
        );
        // u32::MAX is never used: the SA must be rekeyed.
        assert_eq!(i.next_message_id(), u32::MAX);
        assert_eq!(i.check_liveness(now, &mut rng), Err(IkeError::NeedsRekey));
        assert_eq!(i.delete_ike(now, &mut rng), Err(IkeError::NeedsRekey));
        // A peer that used 0xffffffff cannot go on with 0.
        r.expect_request_id = u64::from(u32::MAX);
        let k = i.ike_keys();
        let suite = SkSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
        };
        let to_r = SkCipher::new(suite, &k.sk_ei, &k.sk_ai).unwrap();
        let forge = |id: u32| {
            let h = header(
                i.spi_i,
                i.spi_r,
                exchange::INFORMATIONAL,
                flags::INITIATOR,
                id,
            );
            to_r.seal(&h, &[], &[5; 8]).unwrap()
        };
        assert!(r.handle(&forge(u32::MAX), &mut rng).is_ok());
        assert!(r.handle(&forge(0), &mut rng).is_err(), "message ID wrapped");
    }
}
