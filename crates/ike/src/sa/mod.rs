//! The IKEv2 exchanges (RFC 7296): IKE_SA_INIT and IKE_AUTH with pre-shared-key
//! authentication (§1.2, §2.15), one type per exchange state, then INFORMATIONAL and
//! CREATE_CHILD_SA on the established SA.
//!
//! Layout: this module holds the configuration, the shared types and the payload helpers;
//! `initiator`, `responder` and `established` hold the states of each role and of the
//! established SA.
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
//! A configuration may hold several IKE proposals ([`IkeConfig::more_proposals`]): the
//! responder takes the first acceptable one in the initiator's order and answers a KE
//! payload of another group with INVALID_KE_PAYLOAD, which the initiator follows once
//! (`proposals`).
//!
//! With [`IkeConfig::cert`] both sides authenticate with certificates instead of the
//! PSK ([`crate::cert`]): SIGNATURE_HASH_ALGORITHMS both ways and CERTREQ in
//! IKE_SA_INIT, CERT payloads and an RFC 7427 signature in IKE_AUTH; the peer's chain,
//! identity binding and signature are checked before [`AuthVerified`] exists.
//!
//! IKE fragmentation (RFC 7383, [`IkeConfig::fragment_len`]): IKEV2_FRAGMENTATION_SUPPORTED
//! both ways in IKE_SA_INIT; when both sides announce it, every protected message longer
//! than the limit goes out as Encrypted Fragment messages (`datagrams` on
//! [`ExpectAuthResp`] and [`Established`]; a retransmission resends the same fragments),
//! and fragments coming in are authenticated one by one, then reassembled within bounds
//! and handled as the whole message (see `fragments`). A retransmitted first fragment of
//! a request already answered brings the whole cached response again.
//!
//! A Child SA that cannot be made in IKE_AUTH (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE...)
//! does not undo the authenticated IKE SA (RFC 7296 §1.2, §2.21.2): both sides reach
//! [`Established`] without a Child SA ([`Established::ike_auth_child_error`]).
//!
//! Simultaneous rekeys of one Child SA pair are resolved by the lowest-nonce rule of
//! §2.8.1, and simultaneous IKE SA rekeys by that of §2.8.2
//! ([`Event::IkeRekeyCollision`]). Other requests that meet an IKE SA rekey in flight
//! are refused with TEMPORARY_FAILURE (§2.25.2).
//!
//! Time and randomness are inputs (`now`, [`Random`]). Not here yet: more than one
//! Child SA proposal, EAP and configuration payloads.

use core::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::cert::{CertAuth, CertError};
use crate::consts::{exchange, flags, notify, payload as pt, protocol, transform};
use crate::dh::{Group, KeyShare};
use crate::error::{CryptoError, ParseError};
use crate::keys::{child_keys, ChildKeys, IkeKeys};
use crate::prf::PrfAlg;
use crate::sk::{SkCipher, SkSuite};
use crate::ts;
use crate::wire::{
    Attribute, Auth, CertData, Header, Id, Message, Notify, Payload, Proposal, TrafficSelector,
    Transform,
};

pub use crate::Random;

mod child_policy;
mod established;
mod fragments;
mod initiator;
mod proposals;
mod responder;

pub use child_policy::PeerChildRequest;
use child_policy::{child_proposals, choose_child, peer_child_request};

use established::Request;
pub use established::{Event, Output};
pub use fragments::REASSEMBLY_TIMEOUT;
use fragments::{Frag, Opened, Verdict};
pub use initiator::{ExpectAuthResp, ExpectSaInitResp};
pub use proposals::IkeProposal;
pub use responder::{respond_sa_init, CookieJar, ExpectAuthReq, InitContext, InitRejected};

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

/// A default for [`IkeConfig::max_child_sas`].
pub const DEFAULT_MAX_CHILD_SAS: usize = 64;

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
    /// Child SA transforms offered (initiator) or accepted (responder) after `child`, in
    /// order of preference: one ESP proposal each ([`IkeConfig::child_suites`]). A
    /// responder's IPsec policy can replace the accepted list per exchange
    /// ([`ExpectAuthReq::set_child_policy`], [`Established::set_child_policy`]).
    pub child_more: Vec<ChildSuite>,
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
    /// Responder: a peer's Child SA request is refused (NO_PROPOSAL_CHOSEN) unless the
    /// caller set the policy's answer for it (`set_child_policy`); `child` and
    /// `child_more` are then never accepted on their own (a daemon that asks IPsec
    /// policy about every request sets this).
    pub child_policy_required: bool,
    /// The most Child SA pairs the IKE SA holds: a peer's request for another is refused
    /// with NO_ADDITIONAL_SAS (a rekey may add one pair beyond it while the old one is
    /// being deleted). [`DEFAULT_MAX_CHILD_SAS`] is a sensible value.
    pub max_child_sas: usize,
    /// Initiator: send INITIAL_CONTACT in IKE_AUTH (RFC 7296 §2.4), telling the peer to
    /// drop any older IKE SA with us (set for the first SA after a restart).
    pub initial_contact: bool,
    /// IKE proposals offered or accepted after the one made of `suite`, `prf` and
    /// `group`, in order of preference ([`IkeProposal`]).
    pub more_proposals: Vec<IkeProposal>,
    /// Certificate authentication (RFC 7427) both ways instead of the PSK: our key and
    /// certificates, the trust anchors for the peer's ([`crate::cert`]).
    pub cert: Option<CertAuth>,
    /// IKE fragmentation (RFC 7383): `Some(n)` announces support in IKE_SA_INIT and,
    /// when the peer announces it too, sends every protected message longer than `n`
    /// bytes (the IKE message, without IP and UDP headers) as fragments of at most `n`
    /// bytes. `None`: no support announced, fragments are refused.
    pub fragment_len: Option<usize>,
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
            .field("cert", &self.cert)
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
    /// Certificate authentication failed (answered with AUTHENTICATION_FAILED), or our
    /// own credentials cannot sign for this peer.
    Certificate(CertError),
    /// An authenticated fragment could not be reassembled (RFC 7383 limits).
    Fragment(crate::sk::FragmentError),
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
            Self::Certificate(e) => write!(f, "certificate authentication: {e}"),
            Self::Fragment(e) => write!(f, "IKE fragment: {e}"),
        }
    }
}

impl std::error::Error for IkeError {}

impl From<ParseError> for IkeError {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

impl From<CertError> for IkeError {
    fn from(e: CertError) -> Self {
        Self::Certificate(e)
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

/// Proof that the peer's AUTH payload verified. Only [`verify_psk_auth`] and the
/// certificate check of the exchanges make one.
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
    if let Some(s) = rng.reserved_spi().filter(|s| u32::from_be_bytes(*s) >= 256) {
        return s;
    }
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
    let p = IkeProposal {
        suite: cfg.suite,
        prf: cfg.prf,
        group: cfg.group,
    };
    proposals::proposal_of(&p, num, spi)
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

/// The octets an AUTH payload covers (RFC 7296 §2.15):
/// `RealMessage | Nonce | prf(SK_p, ID body)`.
fn signed_octets(
    prf: PrfAlg,
    real_message: &[u8],
    nonce: &[u8],
    sk_p: &[u8],
    id: &Id<'_>,
) -> Vec<u8> {
    let maced_id = prf.prf(sk_p, &[&[id.id_type, 0, 0, 0], id.data]);
    [real_message, nonce, &maced_id].concat()
}

/// Our AUTH payload value (method, data) with the configured method: a signature
/// ([`IkeConfig::cert`]) for the hashes the peer announced, or the PSK MAC.
fn own_auth(
    cfg: &IkeConfig,
    peer_hashes: &[u16],
    real_message: &[u8],
    nonce: &[u8],
    sk_p: &[u8],
    id: &Id<'_>,
) -> Result<(u8, Zeroizing<Vec<u8>>), IkeError> {
    match &cfg.cert {
        Some(c) => {
            let octets = signed_octets(cfg.prf, real_message, nonce, sk_p, id);
            let (m, d) = c.sign_auth(peer_hashes, &octets)?;
            Ok((m, Zeroizing::new(d)))
        }
        None => Ok((
            crate::consts::auth::SHARED_KEY_MIC,
            psk_auth(cfg.prf, &cfg.psk, real_message, nonce, sk_p, id),
        )),
    }
}

/// Our CERT payloads (end entity first, then intermediates), none with a PSK.
fn cert_payloads(cfg: &IkeConfig) -> Vec<Payload<'_>> {
    cfg.cert
        .iter()
        .flat_map(CertAuth::chain_der)
        .map(|data| {
            Payload::Cert(CertData {
                encoding: crate::cert::ENCODING_X509_SIGNATURE,
                data,
            })
        })
        .collect()
}

/// The SIGNATURE_HASH_ALGORITHMS numbers the peer announced (none: empty).
fn peer_sig_hashes(payloads: &[Payload<'_>]) -> Vec<u16> {
    payloads
        .iter()
        .find_map(|p| match p {
            Payload::Notify(n) if n.ty == notify::SIGNATURE_HASH_ALGORITHMS => {
                Some(crate::cert::parse_hash_notify(n.data))
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// Finds the peer's ID payload (`id_ty`: IDi or IDr) and AUTH payload, verifies the AUTH
/// value over `real_message | nonce | prf(sk_p, ID)` (PSK MAC, or with certificates
/// the chain, the identity binding and the signature) and checks the identity against
/// the configuration.
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
    if let Some(want) = &cfg.remote_id {
        // A DN matches by its attributes, not its encoding (the peer's CA chose the
        // string types, the configuration could not).
        let same = if want.id_type == crate::consts::id::DER_ASN1_DN
            && id.id_type == crate::consts::id::DER_ASN1_DN
        {
            crate::cert::dn_equal(&want.data, id.data)
        } else {
            want.as_id() == *id
        };
        if !same {
            return Err(IkeError::AuthenticationFailed);
        }
    }
    match &cfg.cert {
        None => verify_psk_auth(cfg.prf, &cfg.psk, real_message, nonce, sk_p, id, auth),
        Some(c) => {
            let certs: Vec<&[u8]> = inner
                .iter()
                .filter_map(|p| match p {
                    Payload::Cert(d) if d.encoding == crate::cert::ENCODING_X509_SIGNATURE => {
                        Some(d.data)
                    }
                    _ => None,
                })
                .collect();
            let ee = c.verify_chain(&certs)?;
            if !crate::cert::id_matches(id, &ee) {
                return Err(CertError::IdentityMismatch.into());
            }
            let key = ee.key.as_ref().ok_or(CertError::Unsupported)?;
            // The configured method constrains the peer too (method and key type).
            c.peer.permits(key, auth.method, auth.data)?;
            let octets = signed_octets(cfg.prf, real_message, nonce, sk_p, id);
            crate::cert::verify_auth(key, auth.method, auth.data, &octets)?;
            Ok(AuthVerified(()))
        }
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
    /// The index in `wanted` of the proposal the responder chose.
    chosen: usize,
    spi: [u8; 4],
    ts_i: Vec<TrafficSelector>,
    ts_r: Vec<TrafficSelector>,
    transport: bool,
}

/// Checks the responder's answer to our Child SA proposals `wanted` (numbered from 1;
/// RFC 7296 §1.3, §2.9): one proposal, one of ours with its number, with a 4-byte SPI;
/// selectors inside the ones we proposed (narrowed, never widened); the mode our policy
/// asked for.
fn child_answer(
    cfg: &IkeConfig,
    inner: &[Payload<'_>],
    wanted: &[Proposal<'_>],
    ts_i: &[TrafficSelector],
    ts_r: &[TrafficSelector],
) -> Result<ChildAnswer, IkeError> {
    let Payload::Sa(props) = one(inner, pt::SA, "SA")? else {
        return Err(IkeError::MissingPayload("SA"));
    };
    let (chosen, spi): (usize, [u8; 4]) = match props.as_slice() {
        [p] => {
            let k = usize::from(p.num)
                .checked_sub(1)
                .filter(|&k| wanted.get(k).is_some_and(|w| chosen_is(p, w)))
                .ok_or(IkeError::NoProposalChosen)?;
            (k, p.spi.try_into().map_err(|_| IkeError::NoProposalChosen)?)
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
        chosen,
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

fn has_auth(ps: &[Payload<'_>]) -> bool {
    ps.iter().any(|p| p.ty() == pt::AUTH)
}

fn error_notify(ps: &[Payload<'_>]) -> Option<u16> {
    ps.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty < 16384 => Some(n.ty),
        _ => None,
    })
}

/// The error notification that refuses a Child SA for `e`.
fn child_error_notify(e: IkeError) -> u16 {
    match e {
        IkeError::TsUnacceptable => notify::TS_UNACCEPTABLE,
        _ => notify::NO_PROPOSAL_CHOSEN,
    }
}

/// Error notifications about the Child SA of IKE_AUTH that leave the IKE SA up (RFC 7296
/// §1.2, §2.21.2): the Child SA error types other than the authentication failures.
fn child_only_error(n: u16) -> bool {
    matches!(
        n,
        notify::NO_PROPOSAL_CHOSEN
            | notify::TS_UNACCEPTABLE
            | notify::SINGLE_PAIR_REQUIRED
            | notify::INTERNAL_ADDRESS_FAILURE
            | notify::FAILED_CP_REQUIRED
    )
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

/// The keys of the Child SA made by IKE_AUTH: from SK_d and the IKE_SA_INIT nonces, with
/// no key exchange of its own (RFC 7296 §2.17).
fn auth_child_keys(
    cfg: &IkeConfig,
    k: &IkeKeys,
    ni: &[u8],
    nr: &[u8],
    suite: &ChildSuite,
) -> Result<ChildKeys, IkeError> {
    Ok(child_keys(
        cfg.prf,
        &k.sk_d,
        None,
        ni,
        nr,
        child_sizes(suite)?,
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
/// rekeying ourselves is answered as usual; when both exchanges are done the nonce rule
/// of RFC 7296 §2.8.1 names the redundant pair ([`Event::ChildRekeyCollision`]).
#[derive(Debug)]
pub struct Established {
    cfg: IkeConfig,
    nat: Option<NatStatus>,
    initiator: bool,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    keys: IkeKeys,
    children: Vec<Child>,
    /// The Child SA of IKE_AUTH was refused (by us as responder, or by the peer) while
    /// the IKE SA was made (RFC 7296 §1.2): why.
    child_refused: Option<IkeError>,
    /// Initiator, with `child_refused`: the inbound SPI our IKE_AUTH request offered,
    /// which no Child SA uses.
    unused_spi: Option<[u8; 4]>,
    /// Completed rekeys whose old pair still exists, to resolve simultaneous rekeys of
    /// one pair (RFC 7296 §2.8.1).
    rekeys: Vec<RekeyRecord>,
    /// ESP SPIs the peer deleted while our CREATE_CHILD_SA was in flight and that we did
    /// not know yet: the pair our request makes, if it has one of them, is born deleted.
    orphan_deletes: Vec<[u8; 4]>,
    /// The peer's last request and our response to it, for retransmitted requests.
    cached: Option<(Vec<u8>, Vec<u8>)>,
    peer_initial_contact: bool,
    ciphers: Ciphers,
    /// IKE fragmentation (RFC 7383).
    frag: Frag,
    /// A simultaneous IKE SA rekey of the peer's that we answered while ours was in
    /// flight: its new SA and the lower nonce of its exchange (RFC 7296 §2.8.2).
    collision: Option<(Box<Established>, Vec<u8>)>,
    /// A successor has taken over (our rekey or the peer's completed): no more rekeys.
    rekeyed_away: bool,
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
    /// What policy allows the peer's next Child SA request (`set_child_policy`).
    child_policy: Option<Vec<ChildSuite>>,
    _auth: AuthVerified,
}

/// A Child SA pair and which side requested it.
#[derive(Debug)]
struct Child {
    sa: ChildSa,
    /// We sent the request that created it (so `sa.spi_i` is ours).
    requested_by_us: bool,
}

/// One completed Child SA rekey, kept until the old pair is deleted.
#[derive(Debug)]
struct RekeyRecord {
    /// Our inbound SPI of the old pair.
    old: [u8; 4],
    /// Our inbound SPI of the new pair.
    new: [u8; 4],
    /// The lower of the exchange's two nonces.
    lowest_nonce: Vec<u8>,
    /// We requested the exchange.
    by_us: bool,
}

/// Nonces compared as unsigned big-endian numbers (RFC 7296 §2.8.1 "lowest nonce").
fn nonce_lt(a: &[u8], b: &[u8]) -> bool {
    let strip = |x: &[u8]| -> Vec<u8> { x.iter().copied().skip_while(|&v| v == 0).collect() };
    let (a, b) = (strip(a), strip(b));
    (a.len(), &a) < (b.len(), &b)
}

/// The lower of two nonces.
fn lowest<'n>(a: &'n [u8], b: &'n [u8]) -> &'n [u8] {
    if nonce_lt(b, a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod nonce_test {
    use super::{lowest, nonce_lt};

    #[test]
    fn nonces_compare_as_numbers() {
        assert!(nonce_lt(&[1, 2], &[1, 3]));
        assert!(!nonce_lt(&[1, 3], &[1, 2]));
        assert!(!nonce_lt(&[1, 2], &[1, 2]));
        // Leading zeros do not count; a longer number is larger.
        assert!(nonce_lt(&[0, 0, 9], &[1, 0]));
        assert!(nonce_lt(&[0xff], &[0, 1, 0]));
        assert_eq!(lowest(&[5, 0], &[4, 9]), &[4, 9]);
        assert_eq!(lowest(&[4, 9], &[5, 0]), &[4, 9]);
    }
}
