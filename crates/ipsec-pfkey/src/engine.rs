//! The sans-IO PF_KEY key engine: PF_KEY requests in, SADB operations, replies and
//! broadcasts out.
//!
//! ```text
//!   client bytes ──handle(now, client, bytes)──► parse ─► SA-type gate ─► validate ─► operation
//!                                                   │ error: base header + errno + diagnostic
//!                                                   ▼
//!   Sadb (ipsec-core) ◄── add / mature / update lifetimes / delete / flush / dump
//!                                                   │
//!   poll_output() ──► Output { dest, to: [ClientId], bytes }   (replies, broadcasts, errors)
//!   poll_dump(client) ──► Output                (that client's DUMP records, then seq 0)
//!   poll_event()  ──► EngineEvent (larval timeouts, acquire outcomes, expiries)
//!   handle_timeout(now): larval timeout, acquire-suppression timeout, SA lifetimes (EXPIRE)
//!   acquire(now, request): the data plane needs an SA ─► ACQUIRE to registered key managers
//! ```
//!
//! # Polling order
//!
//! After each [`KeyEngine::handle`], [`KeyEngine::acquire`] or [`KeyEngine::handle_timeout`],
//! drain [`KeyEngine::poll_output`] (deliver each output to its `to` clients) and
//! [`KeyEngine::poll_event`]; then sleep until [`KeyEngine::poll_timeout`]. Spurious
//! `handle_timeout` calls do nothing. Time is seconds (the daemon passes UNIX time, which
//! then appears in the CURRENT lifetimes of GET, DUMP and EXPIRE). `poll_timeout` costs
//! O(log n) and `handle_timeout` O(log n) plus the work that is due: larval and acquire
//! timeouts are kept in ordered indexes, and the once-per-`age_interval` lifetime check
//! looks only at the SAs that can have reached a limit ([`Sadb::age_due`]: those used or
//! changed since their last check, and those whose next time limit has come).
//!
//! # DUMP and flow control
//!
//! A DUMP may report a million SAs, more than any client socket (or the daemon's queue for
//! it) holds at once. So DUMP records do not come out of `poll_output`: each client's DUMPs
//! wait in the engine (oldest first), and the caller pulls the next record with
//! [`KeyEngine::poll_dump`] *only while that client can take more* — the daemon pulls while
//! the client's queue is below its high-water mark and resumes when the socket drains.
//! [`KeyEngine::dump_clients`] lists the clients with a DUMP in progress. A slow reader
//! thus delays only its own dump; nothing is dropped, and other clients are not held up.
//! Each record is built when it is pulled: an SA removed after the request is skipped, and
//! SAs added after it are not reported.
//!
//! As in Solaris, a DUMP's records come in SADB order with the request's seq and pid, and
//! the DUMP ends with a message of seq 0 (errno 0: Ironswan never cuts a dump short, so it
//! never ends one with ENOBUFS). The only way to abandon a dump is to go away
//! ([`KeyEngine::close`] drops it). A pending dump costs 8 bytes per SA of its snapshot;
//! the daemon bounds how many a client can have, since it stops reading requests from a
//! client whose queue is above the high-water mark. Messages from `poll_output` (replies
//! to later requests, broadcasts) are a separate stream and may reach the client between
//! the records of its dump; PF_KEY readers match DUMP records by type, seq and pid.
//!
//! # Delivery (Solaris keysock rules)
//!
//! | message | goes to |
//! |---|---|
//! | replies to GETSPI, ADD, UPDATE, X_UPDATEPAIR, DELETE, X_DELPAIR, X_DELPAIR_STATE, FLUSH; EXPIRE | every client |
//! | REGISTER reply | clients registered for that SA type (the sender now is one) |
//! | extended REGISTER replies, extended ACQUIRE | clients that registered with X_EREG |
//! | ACQUIRE | clients registered (not extended) for the SA type |
//! | GET, DUMP (from `poll_dump`), X_PROMISC, X_INVERSE_ACQUIRE replies; every error reply | the sender |
//!
//! and every promiscuous client (SADB_X_PROMISC with a non-zero SA type) gets every one of
//! them. Solaris also broadcasts errors of the "to everyone" types; Ironswan sends errors
//! to their sender (and the promiscuous clients) only.
//!
//! # Refused messages change nothing
//!
//! Every operation checks everything first and changes state only when it succeeds; the
//! tests compare full SADB dumps before and after each refused message. (Solaris deletes
//! the SA of an X_DELPAIR whose pair is missing before refusing; Ironswan refuses first.)

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use ipsec_core::{Direction, Expiry, Proto, Sa, SaEventKind, SaId, SaKey, SaState, Sadb};
use ipsec_crypto::{auth_info, auth_table, encr_info, encr_table, AuthAlg};

use crate::consts::*;
use crate::convert::{
    check_lifetimes, config_flags, from_wire_lifetime, message_to_config, proto_of, proto_or_all,
    put_config, replay_value, sa_error, OPAQUE_FLAGS, UPDATE_FLAGS,
};
use crate::diag::Diagnostic as D;
use crate::rng::{SeededRng, SpiRng};
use crate::wire::{
    Address, Alg, AlgDesc, EComb, EProp, Flow, Identity, KmCookie, Lifetime, Message, Pair,
    PfkeyError, Proposal, SaExt, Supported,
};

/// A PF_KEY client (one connected socket), named by the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// To whom an output goes (the concrete list is [`Output::to`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The client that sent the request.
    Sender(ClientId),
    /// Clients registered (regular REGISTER) for this SA type.
    Registered(u8),
    /// Clients that registered with X_EREG.
    ExtendedRegistered,
    /// Every client.
    All,
}

/// One message to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The delivery rule.
    pub dest: Destination,
    /// The clients it resolves to (promiscuous clients included), in `ClientId` order.
    pub to: Vec<ClientId>,
    /// The PF_KEY message.
    pub bytes: Vec<u8>,
}

/// Timers of the engine, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long a larval SA (GETSPI) lives without an UPDATE (Solaris `larval-timeout`, 90).
    pub larval_timeout: u64,
    /// How long an ACQUIRE suppresses another for the same need (Solaris
    /// `acquire-timeout`, 15).
    pub acquire_timeout: u64,
    /// How often SA lifetimes are checked (1).
    pub age_interval: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            larval_timeout: 90,
            acquire_timeout: 15,
            age_interval: 1,
        }
    }
}

/// Things the daemon may want to log or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A larval SA was not updated in time and was removed (silently, as Solaris does).
    LarvalExpired {
        /// Which SA.
        key: SaKey,
    },
    /// An SA reached a lifetime limit (an EXPIRE was broadcast).
    Expired {
        /// Which SA.
        key: SaKey,
        /// Soft, hard or idle (sequence-number exhaustion reports as hard).
        kind: Expiry,
        /// Whether the SA was removed.
        deleted: bool,
    },
    /// A key manager answered an ACQUIRE (ADD or UPDATE with its sequence number).
    AcquireResolved {
        /// The ACQUIRE's sequence number.
        seq: u32,
    },
    /// A key manager reported failure (ACQUIRE with an errno).
    AcquireFailed {
        /// The ACQUIRE's sequence number.
        seq: u32,
        /// The errno it sent.
        errno: u8,
    },
    /// Nobody answered an ACQUIRE within the acquire timeout; the need may be asked again.
    AcquireExpired {
        /// The ACQUIRE's sequence number.
        seq: u32,
    },
}

/// What outbound policy needs: the selectors of an ACQUIRE. Two requests with equal needs
/// are the same need (suppressed while the first is pending).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AcquireNeed {
    /// AH or ESP.
    pub proto: Proto,
    /// Source address, port and protocol (ports for unique SAs, else 0).
    pub src: Address,
    /// Destination address, port and protocol.
    pub dst: Address,
    /// Inner source (tunnel mode).
    pub inner_src: Option<Address>,
    /// Inner destination (tunnel mode).
    pub inner_dst: Option<Address>,
}

/// An ACQUIRE request from the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcquireRequest {
    /// The selectors.
    pub need: AcquireNeed,
    /// The policy's proposal (for regular key managers).
    pub proposal: Proposal,
    /// The extended proposal for X_EREG key managers (derived from `proposal` when absent).
    pub eprop: Option<EProp>,
    /// The policy's key management cookie.
    pub kmc: Option<KmCookie>,
    /// Source identity.
    pub ident_src: Option<Identity>,
    /// Destination identity.
    pub ident_dst: Option<Identity>,
}

/// What [`KeyEngine::acquire`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// An ACQUIRE went out with this sequence number to this many key managers (0: nobody
    /// is registered; the need is still remembered for the acquire timeout).
    Sent {
        /// Its sequence number.
        seq: u32,
        /// Registered key managers reached.
        key_managers: usize,
    },
    /// An ACQUIRE for the same need is pending; nothing was sent.
    Suppressed {
        /// The pending ACQUIRE's sequence number.
        seq: u32,
    },
}

/// The selectors of an X_INVERSE_ACQUIRE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InverseQuery {
    /// Source.
    pub src: Address,
    /// Destination.
    pub dst: Address,
    /// Inner source.
    pub inner_src: Option<Address>,
    /// Inner destination.
    pub inner_dst: Option<Address>,
}

/// The SPD's answer to X_INVERSE_ACQUIRE (what policy would demand for these selectors).
pub trait PolicyQuery {
    /// The extended proposal, or an errno (`ENOENT`: no policy).
    fn inverse_acquire(&self, q: &InverseQuery) -> Result<EProp, u8>;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Meta {
    larval_expires: Option<u64>,
    pair: Option<u32>,
    kmc: Option<KmCookie>,
    opaque: u32,
}

impl Meta {
    fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Client {
    regs: u16,
    extended: bool,
    promisc: bool,
}

#[derive(Clone, Copy, Debug)]
struct AcqRecord {
    seq: u32,
    expires: u64,
}

/// One DUMP in progress: the SAs it will report (a snapshot of the SADB's handles taken
/// when the request arrived; SAs removed since are skipped) and where it is.
#[derive(Debug)]
struct DumpJob {
    satype: u8,
    seq: u32,
    pid: u32,
    ids: Vec<SaId>,
    pos: usize,
    idle_min: Option<u64>,
    now: u64,
}

/// The PF_KEY engine. Owns the SADB; generic over the SPI random source.
pub struct KeyEngine<R: SpiRng = SeededRng> {
    sadb: Sadb,
    rng: R,
    cfg: EngineConfig,
    clients: BTreeMap<ClientId, Client>,
    meta: HashMap<SaId, Meta>,
    acquires: HashMap<AcquireNeed, AcqRecord>,
    acq_by_seq: BTreeMap<u32, AcquireNeed>,
    /// `(expires, seq)` of every pending ACQUIRE (the acquire timeouts, in order).
    acq_timers: BTreeSet<(u64, u32)>,
    /// `(expires, id)` of every larval SA (`Meta::larval_expires`, in order).
    larval: BTreeSet<(u64, SaId)>,
    next_acq_seq: u32,
    out: VecDeque<Output>,
    /// DUMPs in progress, per requesting client, oldest first.
    dumps: BTreeMap<ClientId, VecDeque<DumpJob>>,
    events: VecDeque<EngineEvent>,
    next_age: u64,
    generation: u64,
    policy: Option<Box<dyn PolicyQuery + Send>>,
    /// The algorithms an administrator synced (ipsecalgs -s); `None`: the whole built-in table.
    alg_filter: Option<AlgFilter>,
}

/// The algorithms (PF_KEY numbers) and key sizes an ADD or UPDATE may use, from a synced
/// ipsecalgs(8) table: an algorithm absent from it, or a key size it does not list, is
/// refused with `SADB_X_DIAGNOSTIC_BAD_AALG`/`BAD_EALG` (or `BAD_AKEYBITS`/`BAD_EKEYBITS`),
/// and REGISTER replies list only its algorithms and sizes.
/// It narrows the built-in table; it cannot add what ipsec-crypto does not implement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlgFilter {
    /// Authentication algorithms by `sadb_sa_auth` number: the accepted key sizes in bits.
    pub auth: BTreeMap<u8, Vec<u16>>,
    /// Encryption algorithms by `sadb_sa_encrypt` number: the accepted key sizes in bits
    /// (salt excluded).
    pub encr: BTreeMap<u8, Vec<u16>>,
}

impl AlgFilter {
    /// Keeps the algorithms of `list` that `allowed` has, with their key-size range narrowed
    /// to the allowed sizes (a PF_KEY `sadb_alg` holds a range: the smallest and largest
    /// allowed size, with the built-in increment, or none when only one size is left).
    fn narrow(list: &mut Supported, allowed: &BTreeMap<u8, Vec<u16>>) {
        list.algs.retain_mut(|a| {
            let Some(sizes) = allowed.get(&a.id) else {
                return false;
            };
            if let (Some(min), Some(max)) = (sizes.iter().min(), sizes.iter().max()) {
                a.minbits = *min;
                a.maxbits = *max;
                if min == max {
                    a.increment = 0;
                }
            }
            true
        });
    }

    /// Whether an SA's algorithms and key sizes are in the table.
    pub fn check(&self, cfg: &ipsec_core::SaConfig) -> Result<(), PfkeyError> {
        if let Some(a) = cfg.auth_alg.filter(|a| *a != AuthAlg::None) {
            let sizes = self
                .auth
                .get(&auth_info(a).pfkey)
                .ok_or(PfkeyError::invalid(
                    D::BadAalg,
                    "authentication algorithm removed from the ipsecalgs table",
                ))?;
            if !cfg.auth_key.is_empty()
                && !sizes.iter().any(|b| usize::from(*b) == cfg.auth_key.bits())
            {
                return Err(PfkeyError::invalid(
                    D::BadAkeybits,
                    "authentication key size not in the ipsecalgs table",
                ));
            }
        }
        if let Some(e) = cfg.encr_alg {
            let info = encr_info(e);
            let sizes = self.encr.get(&info.pfkey).ok_or(PfkeyError::invalid(
                D::BadEalg,
                "encryption algorithm removed from the ipsecalgs table",
            ))?;
            let bits = cfg.encr_key.bits().saturating_sub(info.salt_bytes * 8);
            if !cfg.encr_key.is_empty() && !sizes.iter().any(|b| usize::from(*b) == bits) {
                return Err(PfkeyError::invalid(
                    D::BadEkeybits,
                    "encryption key size not in the ipsecalgs table",
                ));
            }
        }
        Ok(())
    }
}

impl<R: SpiRng> core::fmt::Debug for KeyEngine<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyEngine")
            .field("sadb", &self.sadb)
            .field("clients", &self.clients)
            .field("pending_outputs", &self.out.len())
            .field("dumps", &self.dumps.len())
            .finish()
    }
}

fn satype_bit(t: u8) -> u16 {
    1u16.checked_shl(u32::from(t)).unwrap_or(0)
}

fn recipients(clients: &BTreeMap<ClientId, Client>, dest: Destination) -> Vec<ClientId> {
    clients
        .iter()
        .filter(|(id, c)| {
            c.promisc
                || match dest {
                    Destination::Sender(s) => **id == s,
                    Destination::Registered(t) => !c.extended && c.regs & satype_bit(t) != 0,
                    Destination::ExtendedRegistered => c.extended,
                    Destination::All => true,
                }
        })
        .map(|(id, _)| *id)
        .collect()
}

fn sat32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn specified(a: IpAddr) -> Option<IpAddr> {
    (!a.is_unspecified()).then_some(a)
}

fn missing(d: D) -> PfkeyError {
    PfkeyError::invalid(d, "required extension absent")
}

fn not_found() -> PfkeyError {
    PfkeyError::new(ESRCH, D::SaNotfound, "no such SA")
}

/// The SUPPORTED lists for an SA type: authentication (AH: those valid for AH; ESP: those
/// valid for ESP, no "none") and, for ESP, encryption. `ivlen` and `saltbits` in bits,
/// `minbits`/`maxbits` exclude the salt, `increment` is the key size step.
pub fn supported_algs(proto: Proto) -> (Supported, Option<Supported>) {
    let ah = proto == Proto::Ah;
    let auth = auth_table()
        .iter()
        .filter(|a| a.alg != AuthAlg::None)
        .filter(|a| {
            ah || !matches!(
                a.alg,
                AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256
            )
        })
        .map(|a| Alg {
            id: a.pfkey,
            ivlen: u8::try_from(a.iv_bytes * 8).unwrap_or(0),
            minbits: a.key_bits.min,
            maxbits: a.key_bits.max,
            increment: u8::try_from(a.key_bits.step).unwrap_or(0),
            saltbits: u8::try_from(a.salt_bytes * 8).unwrap_or(0),
        })
        .collect();
    let encr = (!ah).then(|| Supported {
        algs: encr_table()
            .iter()
            .map(|e| Alg {
                id: e.pfkey,
                ivlen: u8::try_from(e.iv_bytes * 8).unwrap_or(0),
                minbits: e.key_bits.min,
                maxbits: e.key_bits.max,
                increment: u8::try_from(e.key_bits.step).unwrap_or(0),
                saltbits: u8::try_from(e.salt_bytes * 8).unwrap_or(0),
            })
            .collect(),
    });
    (Supported { algs: auth }, encr)
}

/// The extended proposal equivalent to a regular one for `proto`.
pub fn eprop_from_proposal(proto: Proto, p: &Proposal) -> EProp {
    let satype = proto.satype();
    EProp {
        replay: p.replay,
        ecombs: p
            .combs
            .iter()
            .map(|c| {
                let mut algs = Vec::new();
                if proto == Proto::Esp {
                    algs.push(AlgDesc {
                        satype,
                        algtype: SADB_X_ALGTYPE_CRYPT,
                        alg: c.encrypt,
                        saltbits: c.encrypt_saltbits,
                        minbits: c.encrypt_minbits,
                        maxbits: c.encrypt_maxbits,
                    });
                }
                if c.auth != SADB_AALG_NONE {
                    algs.push(AlgDesc {
                        satype,
                        algtype: SADB_X_ALGTYPE_AUTH,
                        alg: c.auth,
                        saltbits: 0,
                        minbits: c.auth_minbits,
                        maxbits: c.auth_maxbits,
                    });
                }
                EComb {
                    flags: c.flags,
                    soft_allocations: c.soft_allocations,
                    hard_allocations: c.hard_allocations,
                    soft_bytes: c.soft_bytes,
                    hard_bytes: c.hard_bytes,
                    soft_addtime: c.soft_addtime,
                    hard_addtime: c.hard_addtime,
                    soft_usetime: c.soft_usetime,
                    hard_usetime: c.hard_usetime,
                    algs,
                }
            })
            .collect(),
    }
}

fn merge_lifetime(old: ipsec_core::Lifetime, new: Option<&Lifetime>) -> ipsec_core::Lifetime {
    let Some(n) = new else { return old };
    let n = from_wire_lifetime(n);
    let pick = |o: u64, v: u64| if v != 0 { v } else { o };
    ipsec_core::Lifetime {
        packets: pick(old.packets, n.packets),
        bytes: pick(old.bytes, n.bytes),
        addtime: pick(old.addtime, n.addtime),
        usetime: pick(old.usetime, n.usetime),
    }
}

impl KeyEngine<SeededRng> {
    /// An engine with an empty SADB, default timers and a generator seeded with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::new(Sadb::new(), EngineConfig::default(), SeededRng::new(seed))
    }
}

impl<R: SpiRng> KeyEngine<R> {
    /// An engine over `sadb`.
    pub fn new(sadb: Sadb, cfg: EngineConfig, rng: R) -> Self {
        Self {
            sadb,
            rng,
            cfg,
            clients: BTreeMap::new(),
            meta: HashMap::new(),
            acquires: HashMap::new(),
            acq_by_seq: BTreeMap::new(),
            acq_timers: BTreeSet::new(),
            larval: BTreeSet::new(),
            next_acq_seq: u32::MAX,
            out: VecDeque::new(),
            dumps: BTreeMap::new(),
            events: VecDeque::new(),
            next_age: 0,
            generation: 0,
            policy: None,
            alg_filter: None,
        }
    }

    /// The configuration, to change at run time (the daemon's `larval-timeout` and
    /// `acquire-timeout` properties); new larval SAs and ACQUIREs use the new values.
    pub fn config_mut(&mut self) -> &mut EngineConfig {
        &mut self.cfg
    }

    /// The SADB.
    pub fn sadb(&self) -> &Sadb {
        &self.sadb
    }

    /// The SADB, for the data plane (counters, sequence numbers). SAs removed here keep
    /// their PF_KEY side data (pairing, cookies) until a later `handle_timeout` sweeps it
    /// (handles of removed SAs never match a live SA, so it is only memory).
    pub fn sadb_mut(&mut self) -> &mut Sadb {
        &mut self.sadb
    }

    /// Incremented on every change to the SADB made through the engine (for data-plane
    /// snapshot refreshes).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Installs the algorithms a synced ipsecalgs table allows (`None`: the built-in table).
    /// SAs already in the SADB are kept; later ADDs and UPDATEs are checked.
    pub fn set_alg_filter(&mut self, filter: Option<AlgFilter>) {
        self.alg_filter = filter;
    }

    /// The synced algorithm filter, if any.
    pub fn alg_filter(&self) -> Option<&AlgFilter> {
        self.alg_filter.as_ref()
    }

    /// Installs the SPD's answer to X_INVERSE_ACQUIRE (without one, such requests get
    /// `ENOENT`).
    pub fn set_policy(&mut self, p: Box<dyn PolicyQuery + Send>) {
        self.policy = Some(p);
    }

    /// A client connected. (Also done implicitly by [`handle`](Self::handle).)
    pub fn open(&mut self, client: ClientId) {
        self.clients.entry(client).or_default();
    }

    /// A client went away: its registrations and promiscuous mode end, and its DUMPs in
    /// progress are abandoned.
    pub fn close(&mut self, client: ClientId) {
        self.clients.remove(&client);
        self.dumps.remove(&client);
    }

    /// Whether `client` is in promiscuous mode.
    pub fn is_promisc(&self, client: ClientId) -> bool {
        self.clients.get(&client).is_some_and(|c| c.promisc)
    }

    /// Whether `client` is registered (either way) for `satype`.
    pub fn is_registered(&self, client: ClientId, satype: u8) -> bool {
        self.clients
            .get(&client)
            .is_some_and(|c| c.regs & satype_bit(satype) != 0)
    }

    /// The pair SPI recorded for an SA.
    pub fn pair_of(&self, id: SaId) -> Option<u32> {
        self.meta.get(&id).and_then(|m| m.pair)
    }

    /// A canonical description of everything PF_KEY-visible: every SA (as its DUMP record,
    /// keys included, in SADB order), registrations, promiscuous flags and pending
    /// ACQUIREs. Equal digests mean nothing observable changed; tests and the fuzz target
    /// compare digests around refused messages.
    pub fn state_digest(&self) -> Vec<u8> {
        let mut d = Vec::new();
        for (id, sa) in self.sadb.iter() {
            let meta = self.meta.get(&id).copied().unwrap_or_default();
            if let Ok(b) = sa_message(SADB_DUMP, sa, &meta, true).and_then(|m| m.emit()) {
                d.extend_from_slice(&b);
            }
            d.extend_from_slice(&format!("{:?}{:?}", sa.state(), meta).into_bytes());
        }
        for (id, c) in &self.clients {
            if c.regs != 0 || c.extended || c.promisc {
                d.extend_from_slice(&format!("{id:?}{c:?}").into_bytes());
            }
        }
        let mut acq: Vec<_> = self
            .acquires
            .iter()
            .map(|(n, r)| format!("{n:?}{}{}", r.seq, r.expires))
            .collect();
        acq.sort();
        d.extend_from_slice(acq.concat().as_bytes());
        d
    }

    /// Handles one PF_KEY message from `client` at time `now`. Replies and broadcasts are
    /// queued for [`poll_output`](Self::poll_output); a refused message gets an error
    /// reply (base header, errno, diagnostic) and changes nothing.
    pub fn handle(&mut self, now: u64, client: ClientId, bytes: &[u8]) {
        self.open(client);
        if let Err(e) = self.dispatch(now, client, bytes) {
            let m = Message::error_reply(bytes, &e);
            self.queue(Destination::Sender(client), &m);
        }
    }

    /// Takes the next message to deliver: replies, broadcasts and error replies, in the
    /// order they were produced. DUMP records are not among them: they come from
    /// [`poll_dump`](Self::poll_dump), per client.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Takes the next DUMP record of `client` (the oldest of its DUMPs in progress), or the
    /// final seq-0 message that ends a DUMP. One record per call, produced from the SADB
    /// as it is then (SAs removed since the request are skipped), so a dump of a large
    /// SADB neither builds up in memory nor floods a slow reader: call this only while
    /// `client` can take more (see the module docs on flow control). `None` when `client`
    /// has no DUMP in progress.
    pub fn poll_dump(&mut self, client: ClientId) -> Option<Output> {
        let jobs = self.dumps.get_mut(&client)?;
        let bytes = loop {
            let Some(job) = jobs.front_mut() else {
                break None;
            };
            if let Some(b) = next_record(job, &self.sadb, &self.meta) {
                break Some(b);
            }
            let mut end = Message::new(SADB_DUMP, job.satype);
            end.pid = job.pid;
            jobs.pop_front();
            if let Ok(b) = end.emit() {
                break Some(b);
            }
        };
        if jobs.is_empty() {
            self.dumps.remove(&client);
        }
        let dest = Destination::Sender(client);
        let to = recipients(&self.clients, dest);
        bytes.map(|bytes| Output { dest, to, bytes })
    }

    /// The clients with a DUMP in progress (in `ClientId` order).
    pub fn dump_clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.dumps.keys().copied()
    }

    /// Whether `client` has a DUMP in progress.
    pub fn has_dump(&self, client: ClientId) -> bool {
        self.dumps.contains_key(&client)
    }

    /// Takes the next event.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work: the earliest larval
    /// timeout, acquire timeout or lifetime check.
    pub fn poll_timeout(&self) -> Option<u64> {
        let larval = self.larval.first().map(|(t, _)| *t);
        let acq = self.acq_timers.first().map(|(t, _)| *t);
        let age = (!self.sadb.is_empty()).then_some(self.next_age);
        [larval, acq, age].into_iter().flatten().min()
    }

    /// Runs the timers due at `now`: removes larval SAs past the larval timeout, forgets
    /// ACQUIREs past the acquire timeout, and (every `age_interval`) ages SA lifetimes,
    /// broadcasting EXPIRE: soft moves an SA to DYING, hard and idle delete it. Also turns
    /// the data plane's sequence-exhaustion events into hard expiries.
    pub fn handle_timeout(&mut self, now: u64) {
        while let Some(&(t, id)) = self.larval.first() {
            if t > now {
                break;
            }
            self.larval.remove(&(t, id));
            let key = match self.sadb.get(id) {
                Some(sa) if sa.state() == SaState::Larval => SaKey {
                    proto: sa.proto(),
                    dst: sa.config().dst,
                    spi: sa.spi(),
                },
                Some(_) => {
                    self.update_meta(id, |m| m.larval_expires = None);
                    continue;
                }
                None => {
                    self.remove_meta(id);
                    continue;
                }
            };
            self.remove_sa(id);
            self.events.push_back(EngineEvent::LarvalExpired { key });
        }
        while let Some(&(t, seq)) = self.acq_timers.first() {
            if t > now {
                break;
            }
            self.acq_timers.remove(&(t, seq));
            if let Some(need) = self.acq_by_seq.remove(&seq) {
                self.acquires.remove(&need);
                self.events.push_back(EngineEvent::AcquireExpired { seq });
            }
        }
        if now >= self.next_age {
            self.age(now);
            self.next_age = now.saturating_add(self.cfg.age_interval.max(1));
        }
    }

    fn age(&mut self, now: u64) {
        // Side data of SAs removed through `sadb_mut` (the engine removes its own with the
        // SA): swept when it could be as large as the live SAs' (amortized O(1) per SA).
        if self.meta.len() > 2 * self.sadb.len() + 1024 {
            let gone: Vec<SaId> = self
                .meta
                .keys()
                .filter(|id| self.sadb.get(**id).is_none())
                .copied()
                .collect();
            for id in gone {
                self.remove_meta(id);
            }
        }
        // Only the SAs that can have reached a limit (Sadb::age_due), in SADB order.
        for (id, exp) in self.sadb.age_due(now) {
            self.generation += 1;
            self.expire(id, exp);
        }
        while let Some(ev) = self.sadb.poll_event() {
            let id = self
                .sadb
                .lookup(ev.key.proto, ev.key.dst, ev.key.spi, ev.src)
                .filter(|id| {
                    self.sadb
                        .get(*id)
                        .is_some_and(|sa| sa.config().src == ev.src)
                });
            match (ev.kind, id) {
                (SaEventKind::SeqExhausted, Some(id)) => {
                    if let Some(sa) = self.sadb.get_mut(id) {
                        sa.set_state(SaState::Dead);
                    }
                    self.expire(id, Expiry::Hard);
                }
                (SaEventKind::Expired(kind), Some(id)) if !ev.deleted => self.expire(id, kind),
                (SaEventKind::Expired(kind), _) if ev.deleted => {
                    // Aged by someone else and already gone: a minimal EXPIRE.
                    let mut m = Message::new(SADB_EXPIRE, ev.key.proto.satype());
                    m.sa = Some(SaExt {
                        spi: ev.key.spi,
                        state: SADB_SASTATE_DEAD,
                        ..SaExt::default()
                    });
                    m.lifetime_current = Some(Lifetime {
                        allocations: sat32(ev.packets),
                        bytes: ev.bytes,
                        addtime: ev.add_time,
                        usetime: ev.first_use.unwrap_or(0),
                    });
                    m.lifetime_hard = Some(Lifetime::default());
                    let src = ev
                        .src
                        .unwrap_or_else(|| crate::convert::unspecified_like(ev.key.dst));
                    m.src = Some(Address::new(std::net::SocketAddr::new(src, 0)));
                    m.dst = Some(Address::new(std::net::SocketAddr::new(ev.key.dst, 0)));
                    self.queue(Destination::All, &m);
                    self.events.push_back(EngineEvent::Expired {
                        key: ev.key,
                        kind,
                        deleted: true,
                    });
                }
                _ => {}
            }
        }
    }

    /// Broadcasts the EXPIRE of SA `id` (after its state moved) and removes it for hard
    /// and idle expiry.
    fn expire(&mut self, id: SaId, kind: Expiry) {
        let meta = self.meta.get(&id).copied().unwrap_or_default();
        let Some(sa) = self.sadb.get(id) else { return };
        let key = SaKey {
            proto: sa.proto(),
            dst: sa.config().dst,
            spi: sa.spi(),
        };
        let msg = expire_message(sa, &meta, kind);
        let deleted = kind != Expiry::Soft;
        if deleted {
            self.remove_sa(id);
        }
        if let Ok(m) = msg {
            self.queue(Destination::All, &m);
        }
        self.events
            .push_back(EngineEvent::Expired { key, kind, deleted });
    }

    /// Asks the registered key managers for an SA (SADB_ACQUIRE with the policy's
    /// proposal), unless an ACQUIRE for the same need is pending (then nothing is sent
    /// until the acquire timeout passes or a key manager answers).
    pub fn acquire(&mut self, now: u64, req: &AcquireRequest) -> AcquireOutcome {
        if let Some(r) = self.acquires.get(&req.need) {
            if r.expires > now {
                return AcquireOutcome::Suppressed { seq: r.seq };
            }
            self.acq_by_seq.remove(&r.seq);
            self.acq_timers.remove(&(r.expires, r.seq));
        }
        let seq = self.next_acq_seq;
        self.next_acq_seq = match self.next_acq_seq.wrapping_sub(1) {
            0 => u32::MAX,
            s => s,
        };
        let satype = req.need.proto.satype();
        let mut m = Message::new(SADB_ACQUIRE, satype);
        m.seq = seq;
        m.src = Some(req.need.src);
        m.dst = Some(req.need.dst);
        m.inner_src = req.need.inner_src;
        m.inner_dst = req.need.inner_dst;
        m.ident_src = req.ident_src.clone();
        m.ident_dst = req.ident_dst.clone();
        m.kmc = req.kmc;
        let regular = self
            .clients
            .values()
            .filter(|c| !c.extended && c.regs & satype_bit(satype) != 0)
            .count();
        let extended = self.clients.values().filter(|c| c.extended).count();
        let mut em = m.clone();
        m.proposal = Some(req.proposal.clone());
        self.queue(Destination::Registered(satype), &m);
        if extended > 0 {
            em.satype = SADB_SATYPE_UNSPEC;
            em.eprop = Some(
                req.eprop
                    .clone()
                    .unwrap_or_else(|| eprop_from_proposal(req.need.proto, &req.proposal)),
            );
            self.queue(Destination::ExtendedRegistered, &em);
        }
        let expires = now.saturating_add(self.cfg.acquire_timeout);
        self.acquires.insert(req.need, AcqRecord { seq, expires });
        self.acq_by_seq.insert(seq, req.need);
        self.acq_timers.insert((expires, seq));
        AcquireOutcome::Sent {
            seq,
            key_managers: regular + extended,
        }
    }

    // -----------------------------------------------------------------------------------

    fn queue(&mut self, dest: Destination, m: &Message) {
        let to = recipients(&self.clients, dest);
        if to.is_empty() {
            return;
        }
        let bytes = m.emit().or_else(|e| {
            let mut r = Message::new(m.msg_type, m.satype);
            r.errno = e.errno;
            r.diagnostic = e.diagnostic.code();
            r.seq = m.seq;
            r.pid = m.pid;
            r.emit()
        });
        if let Ok(bytes) = bytes {
            self.out.push_back(Output { dest, to, bytes });
        }
    }

    fn dispatch(&mut self, now: u64, client: ClientId, bytes: &[u8]) -> Result<(), PfkeyError> {
        let m = Message::parse(bytes)?;
        // keysock's SA-type gate comes before the consumers' extension checks.
        match m.msg_type {
            SADB_GETSPI | SADB_UPDATE | SADB_ADD | SADB_DELETE | SADB_GET | SADB_X_UPDATEPAIR
            | SADB_X_DELPAIR => {
                proto_of(m.satype)?;
            }
            SADB_REGISTER if m.satype != SADB_SATYPE_UNSPEC => {
                proto_of(m.satype)?;
            }
            SADB_FLUSH | SADB_DUMP | SADB_X_DELPAIR_STATE => {
                proto_or_all(m.satype)?;
            }
            _ => {}
        }
        m.validate(Flow::ToKernel)?;
        match m.msg_type {
            SADB_GETSPI => self.getspi(now, &m),
            SADB_ADD => self.add(now, &m),
            SADB_UPDATE => self.update(now, &m, false),
            SADB_X_UPDATEPAIR => self.update(now, &m, true),
            SADB_DELETE => self.delete(&m, false),
            SADB_X_DELPAIR => self.delete(&m, true),
            SADB_X_DELPAIR_STATE => self.delpair_state(&m),
            SADB_GET => self.get(client, &m),
            SADB_FLUSH => self.flush(&m),
            SADB_DUMP => self.dump(now, client, &m),
            SADB_REGISTER => self.register(client, &m),
            SADB_ACQUIRE => self.acquire_from_client(client, &m),
            SADB_X_PROMISC => self.promisc(client, &m),
            SADB_X_INVERSE_ACQUIRE => self.inverse_acquire(client, &m),
            SADB_EXPIRE => Err(PfkeyError::new(
                EOPNOTSUPP,
                D::None,
                "EXPIRE from a client is not supported",
            )),
            _ => Err(PfkeyError::invalid(D::UnknownMsg, "unknown message type")),
        }
    }

    /// The SA named by `<proto, dst, spi>` and, when specified, the source.
    fn find(&self, proto: Proto, dst: IpAddr, spi: u32, src: Option<IpAddr>) -> Option<SaId> {
        self.sadb.lookup(proto, dst, spi, src.and_then(specified))
    }

    fn find_msg(&self, m: &Message) -> Result<SaId, PfkeyError> {
        let proto = proto_of(m.satype)?;
        let sa = m.sa.ok_or_else(|| missing(D::MissingSa))?;
        let dst = m.dst.ok_or_else(|| missing(D::MissingDst))?;
        self.find(proto, dst.ip(), sa.spi, m.src.map(|a| a.ip()))
            .ok_or_else(not_found)
    }

    /// The pair partner of `id`, if linked both ways.
    fn partner(&self, id: SaId) -> Option<SaId> {
        let sa = self.sadb.get(id)?;
        let p = self.meta.get(&id)?.pair?;
        let c = sa.config();
        let pid = self.sadb.lookup(c.proto, c.src?, p, Some(c.dst))?;
        (self.meta.get(&pid)?.pair == Some(c.spi)).then_some(pid)
    }

    /// Checks that the SA described by `cfg` may pair with the SA of SPI `pair_spi`.
    fn check_pair(
        &self,
        cfg: &ipsec_core::SaConfig,
        own: Option<SaId>,
        pair_spi: u32,
    ) -> Result<SaId, PfkeyError> {
        let bad = |d, w| Err(PfkeyError::invalid(d, w));
        if pair_spi == 0 || pair_spi == cfg.spi {
            return bad(D::PairInappropriate, "pair SPI is 0 or the SA's own");
        }
        if let Some(cur) = own.and_then(|i| self.meta.get(&i)).and_then(|m| m.pair) {
            if cur != pair_spi {
                return bad(D::PairAlready, "SA already paired with another SA");
            }
        }
        let Some(src) = cfg.src else {
            return bad(
                D::PairInappropriate,
                "an SA with an unspecified source cannot be paired",
            );
        };
        let found = self
            .sadb
            .lookup(cfg.proto, src, pair_spi, Some(cfg.dst))
            .or_else(|| self.sadb.lookup(cfg.proto, src, pair_spi, None));
        let Some(pid) = found else {
            return bad(D::PairInappropriate, "pair SA not found");
        };
        let Some(p) = self.sadb.get(pid) else {
            return bad(D::PairInappropriate, "pair SA not found");
        };
        if p.config().src != Some(cfg.dst) {
            return bad(D::PairAddMismatch, "pair SA addresses are not the reverse");
        }
        if matches!(p.state(), SaState::Dying | SaState::Dead) {
            return bad(D::PairInappropriate, "pair SA is dying or dead");
        }
        if self
            .meta
            .get(&pid)
            .and_then(|m| m.pair)
            .is_some_and(|x| x != cfg.spi)
        {
            return bad(D::PairAlready, "pair SA already paired with another SA");
        }
        Ok(pid)
    }

    fn check_kmc(&self, id: SaId, kmc: Option<KmCookie>) -> Result<(), PfkeyError> {
        let (Some(new), Some(old)) = (kmc, self.meta.get(&id).and_then(|m| m.kmc)) else {
            return Ok(());
        };
        if new.proto != 0 && old.proto != 0 && new.proto != old.proto {
            return Err(PfkeyError::invalid(
                D::DuplicateKmp,
                "SA belongs to another KM protocol",
            ));
        }
        if new.cookie != 0 && old.cookie != 0 && new.cookie != old.cookie {
            return Err(PfkeyError::invalid(
                D::DuplicateKmc,
                "SA carries another KM cookie",
            ));
        }
        Ok(())
    }

    /// Changes the side data of `id`, keeping the larval-timeout index in step.
    fn update_meta(&mut self, id: SaId, f: impl FnOnce(&mut Meta)) {
        let m = self.meta.entry(id).or_default();
        let before = m.larval_expires;
        f(m);
        let after = m.larval_expires;
        if m.is_empty() {
            self.meta.remove(&id);
        }
        if before != after {
            if let Some(t) = before {
                self.larval.remove(&(t, id));
            }
            if let Some(t) = after {
                self.larval.insert((t, id));
            }
        }
    }

    /// Drops the side data of `id` (and its larval timeout).
    fn remove_meta(&mut self, id: SaId) {
        if let Some(t) = self.meta.remove(&id).and_then(|m| m.larval_expires) {
            self.larval.remove(&(t, id));
        }
    }

    fn set_kmc(&mut self, id: SaId, kmc: Option<KmCookie>) {
        if let Some(k) = kmc {
            self.update_meta(id, |m| {
                let old = m.kmc.unwrap_or_default();
                m.kmc = Some(KmCookie {
                    proto: if k.proto != 0 { k.proto } else { old.proto },
                    cookie: if k.cookie != 0 { k.cookie } else { old.cookie },
                });
            });
        }
    }

    fn link_pair(&mut self, a: SaId, a_spi: u32, b: SaId, b_spi: u32) {
        self.update_meta(a, |m| m.pair = Some(b_spi));
        self.update_meta(b, |m| m.pair = Some(a_spi));
    }

    /// Removes an SA, its side data, and the back link of its pair partner.
    fn remove_sa(&mut self, id: SaId) -> Option<Sa> {
        let partner = self.partner(id);
        let sa = self.sadb.remove(id)?;
        self.remove_meta(id);
        if let Some(p) = partner {
            self.update_meta(p, |m| m.pair = None);
        }
        self.generation += 1;
        Some(sa)
    }

    fn resolve_acquire(&mut self, seq: u32) {
        if self.forget_acquire(seq) {
            self.events.push_back(EngineEvent::AcquireResolved { seq });
        }
    }

    /// Forgets the pending ACQUIRE `seq` (and its timer); whether there was one.
    fn forget_acquire(&mut self, seq: u32) -> bool {
        let Some(need) = self.acq_by_seq.remove(&seq) else {
            return false;
        };
        if let Some(r) = self.acquires.remove(&need) {
            self.acq_timers.remove(&(r.expires, r.seq));
        }
        true
    }

    /// The echo of a request (keys removed), as Solaris' `sadb_pfkey_echo` sends it.
    fn echo(m: &Message) -> Message {
        let mut r = m.clone();
        r.errno = 0;
        r.diagnostic = 0;
        r.key_auth = None;
        r.key_encrypt = None;
        r
    }

    fn echo_with_flags(&self, m: &Message, id: SaId) -> Message {
        let mut r = Self::echo(m);
        if let (Some(e), Some(sa)) = (r.sa.as_mut(), self.sadb.get(id)) {
            let meta = self.meta.get(&id).copied().unwrap_or_default();
            e.flags = sa_flags(sa, &meta);
            e.state = sa.state().number();
        }
        r
    }

    fn alloc_spi(&mut self, proto: Proto, dst: IpAddr, lo: u32, hi: u32) -> Option<u32> {
        let size = u64::from(hi - lo) + 1;
        let pick = |r: u32| lo + ((u64::from(r) * size) >> 32) as u32;
        for _ in 0..8 {
            let spi = pick(self.rng.next_u32());
            if self.sadb.lookup(proto, dst, spi, None).is_none() {
                return Some(spi);
            }
        }
        // Nearly full: scan from a random point. At most `len + 1` values can be needed
        // before a free one, unless the whole range is taken.
        let start = u64::from(pick(self.rng.next_u32()) - lo);
        let n = size.min(self.sadb.len() as u64 + 1);
        (0..n)
            .map(|i| lo + ((start + i) % size) as u32)
            .find(|spi| self.sadb.lookup(proto, dst, *spi, None).is_none())
    }

    fn getspi(&mut self, now: u64, m: &Message) -> Result<(), PfkeyError> {
        let proto = proto_of(m.satype)?;
        let src = m.src.ok_or_else(|| missing(D::MissingSrc))?;
        let dst = m.dst.ok_or_else(|| missing(D::MissingDst))?;
        let range = m.spirange.ok_or_else(|| missing(D::MissingRange))?;
        if src.ip().is_ipv4() != dst.ip().is_ipv4() {
            return Err(PfkeyError::invalid(
                D::AfMismatch,
                "address families differ",
            ));
        }
        if dst.ip().is_unspecified() {
            return Err(PfkeyError::invalid(D::BadDst, "unspecified destination"));
        }
        if src.ip().is_multicast() {
            return Err(PfkeyError::invalid(D::BadSrc, "multicast source"));
        }
        if src.proto != dst.proto {
            return Err(PfkeyError::invalid(D::ProtoMismatch, "protocols differ"));
        }
        let lo = range.min.max(256);
        if lo > range.max {
            return Err(PfkeyError::invalid(
                D::MalformedRange,
                "SPI range lies within 0..=255",
            ));
        }
        let spi = self
            .alloc_spi(proto, dst.ip(), lo, range.max)
            .ok_or(PfkeyError::new(
                EEXIST,
                D::None,
                "every SPI of the range is in use",
            ))?;
        let mut cfg = ipsec_core::SaConfig::new(proto, spi, specified(src.ip()), dst.ip());
        cfg.state = SaState::Larval;
        cfg.ulp = dst.proto;
        cfg.sport = src.port();
        cfg.dport = dst.port();
        let id = self.sadb.add(cfg, now).map_err(|e| sa_error(&e))?;
        self.generation += 1;
        let expires = now.saturating_add(self.cfg.larval_timeout);
        self.update_meta(id, |x| {
            x.larval_expires = Some(expires);
            x.kmc = m.kmc;
        });
        let mut r = Message::reply_to(m);
        r.sa = Some(SaExt {
            spi,
            state: SADB_SASTATE_LARVAL,
            ..SaExt::default()
        });
        r.src = m.src;
        r.dst = m.dst;
        r.kmc = m.kmc;
        self.queue(Destination::All, &r);
        Ok(())
    }

    fn add(&mut self, now: u64, m: &Message) -> Result<(), PfkeyError> {
        let cfg = message_to_config(m, true, now)?;
        self.check_algs(&cfg)?;
        if self
            .sadb
            .lookup(cfg.proto, cfg.dst, cfg.spi, cfg.src)
            .and_then(|id| self.sadb.get(id))
            .is_some_and(|sa| sa.config().src == cfg.src)
        {
            return Err(PfkeyError::new(EEXIST, D::None, "SA already exists"));
        }
        let partner = m
            .pair
            .map(|p| self.check_pair(&cfg, None, p.spi))
            .transpose()?;
        let (spi, larval) = (cfg.spi, cfg.state == SaState::Larval);
        let id = self.sadb.add(cfg, now).map_err(|e| sa_error(&e))?;
        self.generation += 1;
        let opaque = m.sa.map_or(0, |s| s.flags & OPAQUE_FLAGS);
        let expires = now.saturating_add(self.cfg.larval_timeout);
        self.update_meta(id, |x| {
            x.opaque = opaque;
            x.larval_expires = larval.then_some(expires);
        });
        self.set_kmc(id, m.kmc);
        if let (Some(pid), Some(p)) = (partner, m.pair) {
            self.link_pair(id, spi, pid, p.spi);
        }
        self.resolve_acquire(m.seq);
        let r = self.echo_with_flags(m, id);
        self.queue(Destination::All, &r);
        Ok(())
    }

    /// [`supported_algs`] narrowed to the synced algorithm table, if any.
    fn supported(&self, proto: Proto) -> (Supported, Option<Supported>) {
        let (mut auth, mut encr) = supported_algs(proto);
        if let Some(f) = &self.alg_filter {
            AlgFilter::narrow(&mut auth, &f.auth);
            if let Some(e) = encr.as_mut() {
                AlgFilter::narrow(e, &f.encr);
            }
        }
        (auth, encr)
    }

    fn check_algs(&self, cfg: &ipsec_core::SaConfig) -> Result<(), PfkeyError> {
        self.alg_filter.as_ref().map_or(Ok(()), |f| f.check(cfg))
    }

    fn update(&mut self, now: u64, m: &Message, both: bool) -> Result<(), PfkeyError> {
        let id = self.find_msg(m)?;
        let sa_ext = m.sa.ok_or_else(|| missing(D::MissingSa))?;
        let (state, cfg_now) = match self.sadb.get(id) {
            Some(sa) => (sa.state(), sa.config().clone()),
            None => return Err(not_found()),
        };
        self.check_kmc(id, m.kmc)?;
        if state == SaState::Larval {
            if both {
                return Err(PfkeyError::invalid(
                    D::BadSastate,
                    "UPDATEPAIR of a larval SA",
                ));
            }
            let cfg = message_to_config(m, false, now)?;
            self.check_algs(&cfg)?;
            let partner = m
                .pair
                .map(|p| self.check_pair(&cfg, Some(id), p.spi))
                .transpose()?;
            let spi = cfg.spi;
            let Some(sa) = self.sadb.get_mut(id) else {
                return Err(not_found());
            };
            sa.mature(cfg, now).map_err(|e| sa_error(&e))?;
            self.generation += 1;
            let opaque = sa_ext.flags & OPAQUE_FLAGS;
            self.update_meta(id, |x| {
                x.larval_expires = None;
                x.opaque = opaque;
            });
            self.set_kmc(id, m.kmc);
            if let (Some(pid), Some(p)) = (partner, m.pair) {
                self.link_pair(id, spi, pid, p.spi);
            }
            self.resolve_acquire(m.seq);
            let r = self.echo_with_flags(m, id);
            self.queue(Destination::All, &r);
            return Ok(());
        }

        // A mature or dying SA: lifetimes (and the pair link) only.
        if m.key_auth.is_some() {
            return Err(PfkeyError::invalid(
                D::AkeyPresent,
                "keys of a mature SA cannot change",
            ));
        }
        if m.key_encrypt.is_some() {
            return Err(PfkeyError::invalid(
                D::EkeyPresent,
                "keys of a mature SA cannot change",
            ));
        }
        if sa_ext.state != SADB_SASTATE_MATURE {
            return Err(PfkeyError::invalid(
                D::BadSastate,
                "UPDATE state must be mature",
            ));
        }
        if sa_ext.flags & !UPDATE_FLAGS != 0 {
            return Err(PfkeyError::invalid(
                D::BadSaflags,
                "flags not allowed in UPDATE",
            ));
        }
        check_lifetimes(
            m.lifetime_hard.as_ref(),
            m.lifetime_soft.as_ref(),
            m.lifetime_idle.as_ref(),
        )?;
        if m.sensitivity.is_some() || m.outer_sens.is_some() {
            return Err(PfkeyError::new(
                EOPNOTSUPP,
                D::BadLabel,
                "sensitivity labels are not supported",
            ));
        }
        let seq_out = match m.replay_value {
            None => None,
            Some(_) if state == SaState::Mature => {
                return Err(PfkeyError::invalid(
                    D::BadSastate,
                    "replay value of a mature SA cannot change",
                ))
            }
            Some(r) => {
                if cfg_now.direction != Direction::Outbound {
                    return Err(PfkeyError::new(
                        EOPNOTSUPP,
                        D::InvalidReplay,
                        "replay value can only be set on an outbound SA",
                    ));
                }
                Some(replay_value(&r, cfg_now.esn)?)
            }
        };
        let partner = if both {
            let p = self.partner(id).ok_or(PfkeyError::new(
                ESRCH,
                D::PairSaNotfound,
                "SA has no pair",
            ))?;
            self.check_kmc(p, m.kmc)?;
            Some(p)
        } else {
            None
        };
        let new_pair = m
            .pair
            .map(|p| {
                self.check_pair(&cfg_now, Some(id), p.spi)
                    .map(|pid| (pid, p.spi))
            })
            .transpose()?;

        for x in std::iter::once(id).chain(partner) {
            if let Some(sa) = self.sadb.get_mut(x) {
                let c = sa.config();
                let hard = merge_lifetime(c.hard, m.lifetime_hard.as_ref());
                let soft = merge_lifetime(c.soft, m.lifetime_soft.as_ref());
                let idle = merge_lifetime(c.idle, m.lifetime_idle.as_ref());
                sa.set_lifetimes(soft, hard, idle);
            }
            self.set_kmc(x, m.kmc);
        }
        if let (Some(v), Some(sa)) = (seq_out, self.sadb.get_mut(id)) {
            sa.set_seq_out(v);
        }
        if let Some((pid, pspi)) = new_pair {
            self.link_pair(id, cfg_now.spi, pid, pspi);
        }
        self.generation += 1;
        self.resolve_acquire(m.seq);
        let r = self.echo_with_flags(m, id);
        self.queue(Destination::All, &r);
        Ok(())
    }

    fn delete(&mut self, m: &Message, both: bool) -> Result<(), PfkeyError> {
        let id = self.find_msg(m)?;
        let partner = if both {
            Some(self.partner(id).ok_or(PfkeyError::new(
                ESRCH,
                D::PairSaNotfound,
                "SA has no pair",
            ))?)
        } else {
            None
        };
        let r = self.echo_with_flags(m, id);
        self.remove_sa(id);
        if let Some(p) = partner {
            self.remove_sa(p);
        }
        self.queue(Destination::All, &r);
        Ok(())
    }

    fn delpair_state(&mut self, m: &Message) -> Result<(), PfkeyError> {
        let proto = proto_or_all(m.satype)?;
        let sa = m.sa.ok_or_else(|| missing(D::MissingSa))?;
        let src = m.src.ok_or_else(|| missing(D::MissingSrc))?;
        if sa.state > SADB_SASTATE_MAX {
            return Err(PfkeyError::invalid(D::BadSastate, "unknown SA state"));
        }
        let src = specified(src.ip());
        let ids: Vec<SaId> = self
            .sadb
            .iter()
            .filter(|(_, s)| {
                proto.is_none_or(|p| s.proto() == p)
                    && s.state().number() == sa.state
                    && s.config().src == src
            })
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            let partner = self.partner(id);
            self.remove_sa(id);
            if let Some(p) = partner {
                self.remove_sa(p);
            }
        }
        let r = Self::echo(m);
        self.queue(Destination::All, &r);
        Ok(())
    }

    fn get(&mut self, client: ClientId, m: &Message) -> Result<(), PfkeyError> {
        let id = self.find_msg(m)?;
        let sa = self.sadb.get(id).ok_or_else(not_found)?;
        let meta = self.meta.get(&id).copied().unwrap_or_default();
        let mut r = sa_message(SADB_GET, sa, &meta, true)?;
        r.seq = m.seq;
        r.pid = m.pid;
        self.queue(Destination::Sender(client), &r);
        Ok(())
    }

    fn flush(&mut self, m: &Message) -> Result<(), PfkeyError> {
        let proto = proto_or_all(m.satype)?;
        let ids: Vec<SaId> = self
            .sadb
            .iter()
            .filter(|(_, s)| proto.is_none_or(|p| s.proto() == p))
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            self.sadb.remove(id);
            self.remove_meta(id);
        }
        self.generation += 1;
        let r = Message::reply_to(m);
        self.queue(Destination::All, &r);
        Ok(())
    }

    fn dump(&mut self, now: u64, client: ClientId, m: &Message) -> Result<(), PfkeyError> {
        let proto = proto_or_all(m.satype)?;
        let ids = self
            .sadb
            .iter()
            .filter(|(_, s)| proto.is_none_or(|p| s.proto() == p))
            .map(|(id, _)| id)
            .collect();
        self.dumps.entry(client).or_default().push_back(DumpJob {
            satype: m.satype,
            seq: m.seq,
            pid: m.pid,
            ids,
            pos: 0,
            idle_min: m.edump.map(|e| e.timeout),
            now,
        });
        Ok(())
    }

    fn register(&mut self, client: ClientId, m: &Message) -> Result<(), PfkeyError> {
        let c = self.clients.get(&client).copied().unwrap_or_default();
        if m.satype != SADB_SATYPE_UNSPEC {
            let proto = proto_of(m.satype)?;
            if c.extended {
                return Err(PfkeyError::new(
                    EBUSY,
                    D::None,
                    "already registered with X_EREG",
                ));
            }
            if let Some(c) = self.clients.get_mut(&client) {
                c.regs |= satype_bit(m.satype);
            }
            let mut r = Message::reply_to(m);
            let (auth, encr) = self.supported(proto);
            r.supported_auth = Some(auth);
            r.supported_encrypt = encr;
            self.queue(Destination::Registered(m.satype), &r);
            return Ok(());
        }
        let ereg = m.ereg.as_ref().ok_or_else(|| missing(D::SatypeNeeded))?;
        if c.regs != 0 && !c.extended {
            return Err(PfkeyError::new(
                EBUSY,
                D::None,
                "already registered without X_EREG",
            ));
        }
        if ereg.satypes.is_empty() {
            return Err(PfkeyError::invalid(
                D::SatypeNeeded,
                "X_EREG lists no SA type",
            ));
        }
        let protos = ereg
            .satypes
            .iter()
            .map(|t| proto_of(*t).map(|p| (*t, p)))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(c) = self.clients.get_mut(&client) {
            c.extended = true;
            for (t, _) in &protos {
                c.regs |= satype_bit(*t);
            }
        }
        for (t, p) in protos {
            let mut r = Message::reply_to(m);
            r.satype = t;
            let (auth, encr) = self.supported(p);
            r.supported_auth = Some(auth);
            r.supported_encrypt = encr;
            self.queue(Destination::ExtendedRegistered, &r);
        }
        Ok(())
    }

    fn acquire_from_client(&mut self, client: ClientId, m: &Message) -> Result<(), PfkeyError> {
        if m.errno != 0 {
            let extended = self.clients.get(&client).is_some_and(|c| c.extended);
            if m.satype == SADB_SATYPE_UNSPEC && !extended {
                return Err(PfkeyError::invalid(
                    D::SatypeNeeded,
                    "ACQUIRE failure needs an SA type",
                ));
            }
            if self.forget_acquire(m.seq) {
                self.events.push_back(EngineEvent::AcquireFailed {
                    seq: m.seq,
                    errno: m.errno,
                });
            }
            return Ok(());
        }
        proto_of(m.satype)?;
        // Passed on to the key managers, so it must be a complete ACQUIRE.
        if m.src.is_none() {
            return Err(missing(D::MissingSrc));
        }
        if m.dst.is_none() {
            return Err(missing(D::MissingDst));
        }
        if m.proposal.is_none() && m.eprop.is_none() {
            return Err(PfkeyError::invalid(D::None, "ACQUIRE without a proposal"));
        }
        let r = Self::echo(m);
        self.queue(Destination::Registered(m.satype), &r);
        Ok(())
    }

    fn promisc(&mut self, client: ClientId, m: &Message) -> Result<(), PfkeyError> {
        if let Some(c) = self.clients.get_mut(&client) {
            c.promisc = m.satype != SADB_SATYPE_UNSPEC;
        }
        let r = Self::echo(m);
        self.queue(Destination::Sender(client), &r);
        Ok(())
    }

    fn inverse_acquire(&mut self, client: ClientId, m: &Message) -> Result<(), PfkeyError> {
        let q = InverseQuery {
            src: m.src.ok_or_else(|| missing(D::MissingSrc))?,
            dst: m.dst.ok_or_else(|| missing(D::MissingDst))?,
            inner_src: m.inner_src,
            inner_dst: m.inner_dst,
        };
        let Some(policy) = &self.policy else {
            return Err(PfkeyError::new(ENOENT, D::None, "no policy"));
        };
        let eprop = policy
            .inverse_acquire(&q)
            .map_err(|errno| PfkeyError::new(errno, D::None, "policy refused"))?;
        let mut r = Message::reply_to(m);
        r.src = Some(q.src);
        r.dst = Some(q.dst);
        r.inner_src = q.inner_src;
        r.inner_dst = q.inner_dst;
        r.eprop = Some(eprop);
        self.queue(Destination::Sender(client), &r);
        Ok(())
    }
}

/// The next record of a DUMP (advancing it), or `None` when it has no more SAs.
fn next_record(job: &mut DumpJob, sadb: &Sadb, meta: &HashMap<SaId, Meta>) -> Option<Vec<u8>> {
    while let Some(id) = job.ids.get(job.pos).copied() {
        job.pos += 1;
        let Some(sa) = sadb.get(id) else {
            continue;
        };
        if let Some(t) = job.idle_min {
            if job.now.saturating_sub(sa.last_use()) < t {
                continue;
            }
        }
        let meta = meta.get(&id).copied().unwrap_or_default();
        let bytes = match sa_message(SADB_DUMP, sa, &meta, true) {
            Ok(mut m) => {
                m.seq = job.seq;
                m.pid = job.pid;
                m.emit()
            }
            Err(e) => Err(e),
        };
        let bytes = bytes.or_else(|e| {
            let mut m = Message::new(SADB_DUMP, sa.proto().satype());
            m.errno = e.errno;
            m.diagnostic = e.diagnostic.code();
            m.seq = job.seq;
            m.pid = job.pid;
            m.emit()
        });
        if let Ok(bytes) = bytes {
            return Some(bytes);
        }
    }
    None
}

/// The SA flags reported for a live SA.
fn sa_flags(sa: &Sa, meta: &Meta) -> u32 {
    let mut f = config_flags(sa.config()) | meta.opaque;
    if sa.first_use().is_some() {
        f |= SADB_X_SAFLAGS_USED;
    }
    if meta.pair.is_some() {
        f |= SADB_X_SAFLAGS_PAIRED;
    }
    f
}

/// The full description of a live SA (GET, DUMP): SA, lifetimes (current included),
/// addresses, keys when `with_keys`, identities, KM cookie, pair, Ironswan options.
fn sa_message(msg_type: u8, sa: &Sa, meta: &Meta, with_keys: bool) -> Result<Message, PfkeyError> {
    let mut m = Message::new(msg_type, sa.proto().satype());
    put_config(&mut m, sa.config(), with_keys)?;
    if let Some(e) = m.sa.as_mut() {
        e.state = sa.state().number();
        e.flags = sa_flags(sa, meta);
    }
    m.lifetime_current = Some(Lifetime {
        allocations: sat32(sa.stats.packets),
        bytes: sa.stats.bytes,
        addtime: sa.add_time(),
        usetime: sa.first_use().unwrap_or(0),
    });
    m.kmc = meta.kmc;
    m.pair = meta.pair.map(|spi| Pair { spi });
    Ok(m)
}

/// EXPIRE: `<base, SA, lifetime(C and the limit that passed), address(SD), (inner)>`.
fn expire_message(sa: &Sa, meta: &Meta, kind: Expiry) -> Result<Message, PfkeyError> {
    let full = sa_message(SADB_EXPIRE, sa, meta, false)?;
    let mut m = Message::new(SADB_EXPIRE, full.satype);
    m.sa = full.sa;
    m.lifetime_current = full.lifetime_current;
    let c = sa.config();
    let lt = |l: &ipsec_core::Lifetime| Lifetime {
        allocations: sat32(l.packets),
        bytes: l.bytes,
        addtime: l.addtime,
        usetime: l.usetime,
    };
    match kind {
        Expiry::Soft => m.lifetime_soft = Some(lt(&c.soft)),
        Expiry::Hard => m.lifetime_hard = Some(lt(&c.hard)),
        Expiry::Idle => m.lifetime_idle = Some(lt(&c.idle)),
    }
    m.src = full.src;
    m.dst = full.dst;
    m.inner_src = full.inner_src;
    m.inner_dst = full.inner_dst;
    Ok(m)
}
