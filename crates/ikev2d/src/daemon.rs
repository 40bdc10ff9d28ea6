//! The daemon's event loop: PF_KEY to ipsecd, IKE on UDP 500 (and on the NAT-T port
//! through ipsecd's `natt-relay`), the IKE SAs of the `ike` core, timers.
//!
//! ```text
//!   ipsecd ──ACQUIRE──► rule lookup ─► ExpectSaInitResp::start ──IKE_SA_INIT──► peer
//!   peer ──IKE──► UDP 500 / relay ─► SA by SPIs ─► state.handle ─► reply / next state
//!                                    (none: IKE_SA_INIT request ─► respond_sa_init)
//!   peer's Child SA request ─► X_INVERSE_ACQUIRE + GETSPI, held until answered (policy_hold)
//!   Established (new Child SA) ─► UPDATE inbound (larval) + ADD outbound ──► ipsecd
//!   Event::ChildDeleted / IkeDeleted ─► DELETE both SAs;  hard EXPIRE ─► DELETE pair + peer
//!   soft EXPIRE (of an outbound SA) ─► CREATE_CHILD_SA rekey; ChildRekeyed ─► ADD new,
//!                                      then delete the old pair (make before break)
//!   PF_KEY connection lost (ipsecd restarted) ─► reconnect and REGISTER every second
//! ```
//!
//! One thread, one `poll`: nothing here blocks except `poll` itself. The IKE core is
//! sans-IO; this loop supplies time, randomness, datagrams and the sockets. An IKE SA
//! moves from UDP 500 to the NAT-T port when it is the initiator, a relay is available
//! and the peer does NAT detection (as RFC 7296 §2.23 allows); an IKE SA on the NAT-T
//! port installs its Child SAs with UDP encapsulation (RFC 3948) on that port.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ike::consts::{exchange, flags};
use ike::sa::{
    respond_sa_init, Backoff, ChildSuite, CookieJar, Established, Event, ExpectAuthReq,
    ExpectAuthResp, ExpectSaInitResp, IkeConfig, InitContext, InitRejected, Path, Step,
};
use ike::wire::{Header, TrafficSelector};
use ipsec_pfkey::consts::{
    ESRCH, SADB_ACQUIRE, SADB_DELETE, SADB_DUMP, SADB_EXPIRE, SADB_GETSPI, SADB_REGISTER,
    SADB_SATYPE_ESP, SADB_UPDATE, SADB_X_INVERSE_ACQUIRE, SADB_X_KMP_IKE,
};
use ipsec_pfkey::Message;
use ipsec_sys::seqpacket::{Conn, Listener, Recv, Sent};
use ipsec_sys::udp::PktinfoSocket;
use ipsec_sys::{PollFd, PollFlags};

use crate::config::{ip_identity, Config, Preshared, Rule};
use crate::pfkey::{add_message, delete_message, getspi_message, ts_prefix, ChildSaSpec, Pfkey};
use crate::{log, OsRandom};

mod policy_hold;

/// The daemon's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// ipsecd's PF_KEY socket.
    pub pfkey_socket: PathBuf,
    /// ipsecd's control socket, for IKE on the NAT-T port (`None`: port 500 only).
    pub control_socket: Option<PathBuf>,
    /// Local address to bind the IKE port on.
    pub bind: IpAddr,
    /// The IKE port (500).
    pub ike_port: u16,
    /// Firewall mark of our IKE packets (0: none).
    pub mark: u32,
    /// Half-open IKE SAs above which cookies are required.
    pub cookie_threshold: usize,
    /// Child SA pairs one IKE SA may hold: a peer's request for more is refused with
    /// NO_ADDITIONAL_SAS ([`ike::sa::IkeConfig::max_child_sas`]).
    pub max_child_sas: usize,
    /// The administration socket of ikev2adm (`None`: none).
    pub admin_socket: Option<PathBuf>,
    /// Dead-peer detection: a liveness check after this long without a message from the
    /// peer (zero: none).
    pub dpd: Duration,
    /// Retransmission of our requests (a request unanswered after the last one means
    /// the peer is dead).
    pub backoff: Backoff,
}

/// How long a responder keeps an IKE SA whose IKE_AUTH never came, and a rekeyed IKE SA
/// that the peer has not deleted.
const LINGER: Duration = Duration::from_secs(30);

/// Counters shown in the log at exit.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// ACQUIREs received.
    pub acquires: u64,
    /// IKE SAs established.
    pub ike_established: u64,
    /// IKE SAs that failed.
    pub ike_failed: u64,
    /// Child SA pairs installed.
    pub children_installed: u64,
    /// Child SA pairs deleted.
    pub children_deleted: u64,
    /// Datagrams dropped (unparsable, IKEv1, no SA, refused).
    pub dropped: u64,
    /// Times the PF_KEY connection was (re)made.
    pub pfkey_connects: u64,
}

enum Phase {
    Init(ExpectSaInitResp),
    Auth(ExpectAuthResp),
    HalfOpen(ExpectAuthReq),
    Up(Box<Established>),
}

/// One installed Child SA pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Installed {
    inbound: u32,
    outbound: u32,
}

struct IkeSa {
    rule: usize,
    phase: Option<Phase>,
    path: Path,
    /// IKE runs on the NAT-T port through the relay.
    natt: bool,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    acquire_seq: u32,
    children: Vec<Installed>,
    /// Our inbound SPIs being rekeyed by us (soft EXPIRE seen, request sent).
    rekeying: HashSet<u32>,
    /// Requests of ours that wait for the window (delete or rekey of a child).
    queued: Vec<Queued>,
    /// An inbound SPI ipsecd reserved for our next Child SA (GETSPI), not used yet.
    reserved: Option<u32>,
    /// The sequence number of our outstanding GETSPI.
    getspi: Option<u32>,
    /// ACQUIREs for this peer that wait until the IKE SA is up or its window is free.
    deferred: Vec<Message>,
    /// IKE_SA_INIT / IKE_AUTH messages that arrived before the GETSPI answer (and the
    /// peer's Child SA request, and what came after it, before the policy's answer).
    held: Vec<(Vec<u8>, Path, bool)>,
    /// The sequence number of our outstanding X_INVERSE_ACQUIRE.
    inverse: Option<u32>,
    /// ipsecd's answer for the held Child SA request: the suites policy allows, or
    /// `None` when no policy protects its selectors (the rule's transforms apply).
    policy_answer: Option<Option<Vec<ChildSuite>>>,
    /// When it was made (half-open), established, or replaced by its rekeyed successor.
    since: Instant,
    /// When a message last came from the peer on it.
    last_rx: Instant,
    /// We asked for its rekey (IKE SA).
    rekey_requested: bool,
    /// A rekeyed IKE SA waiting for its deletion (no Child SA, no timers of its own).
    superseded: bool,
    /// When an incomplete fragmented message held by it is abandoned (RFC 7383).
    frag_due: Option<Instant>,
    /// The redundant IKE SA of a simultaneous rekey we won: once the peer deletes it, we
    /// delete the old IKE SA with these SPIs (RFC 7296 §2.8.2).
    then_delete_old: Option<([u8; 8], [u8; 8])>,
}

impl IkeSa {
    fn new(rule: usize, phase: Phase, path: Path, natt: bool, spis: ([u8; 8], [u8; 8])) -> Self {
        Self {
            rule,
            phase: Some(phase),
            path,
            natt,
            spi_i: spis.0,
            spi_r: spis.1,
            acquire_seq: 0,
            children: Vec::new(),
            rekeying: HashSet::new(),
            queued: Vec::new(),
            reserved: None,
            getspi: None,
            deferred: Vec::new(),
            held: Vec::new(),
            inverse: None,
            policy_answer: None,
            since: Instant::now(),
            last_rx: Instant::now(),
            rekey_requested: false,
            superseded: false,
            frag_due: None,
            then_delete_old: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    Rekey(u32),
    Delete(u32),
}

/// The daemon.
pub struct Daemon {
    opts: Options,
    config: Config,
    psk: Preshared,
    /// Credentials of the certificate rules (empty without any).
    certs: crate::certs::CertCreds,
    pf: Option<Pfkey>,
    next_connect: Instant,
    /// The IKE sockets: the bind address, and IPv6's any address when that is IPv4's.
    udp: Vec<PktinfoSocket>,
    relay: Option<Conn>,
    relay_port: u16,
    sas: Vec<IkeSa>,
    cookies: CookieJar,
    rng: OsRandom,
    peers_seen: HashSet<IpAddr>,
    admin: Option<Listener>,
    admin_conns: Vec<Conn>,
    /// The sequence number of our start-up DUMP.
    dump_seq: Option<u32>,
    /// Inbound SPIs ipsecd holds in larval SAs for us (keyed later with UPDATE), with the
    /// SA's source (the peer) and destination.
    larval: HashMap<u32, (IpAddr, IpAddr)>,
    /// Counters.
    pub stats: Stats,
}

fn spi32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// The traffic selectors of a rule's side: its prefixes, or the address itself.
fn selectors(prefixes: &[crate::config::Prefix], addr: IpAddr) -> Vec<TrafficSelector> {
    if prefixes.is_empty() {
        return vec![host_ts(addr)];
    }
    prefixes
        .iter()
        .map(|p| {
            let (start, end) = p.range();
            TrafficSelector {
                start,
                end,
                ..host_ts(addr)
            }
        })
        .collect()
}

/// The traffic selectors (ours, the peer's) an ACQUIRE names with its inner source and
/// destination (tunnel-mode policy), if it has both.
fn acquire_selectors(m: &Message) -> Option<(TrafficSelector, TrafficSelector)> {
    let ts = |a: &ipsec_pfkey::wire::Address| {
        let p = crate::config::Prefix {
            addr: a.ip(),
            len: a.prefixlen.min(if a.ip().is_ipv4() { 32 } else { 128 }),
        };
        let (start, end) = p.range();
        let port = a.addr.port();
        let (start_port, end_port) = if port == 0 { (0, 65535) } else { (port, port) };
        TrafficSelector {
            ip_protocol: a.proto,
            start_port,
            end_port,
            start,
            end,
        }
    };
    Some((ts(m.inner_src.as_ref()?), ts(m.inner_dst.as_ref()?)))
}

#[cfg(test)]
#[path = "daemon_gateway_tests.rs"]
mod gateway_tests;

/// The inner selector of a tunnel-mode SA for one side's traffic selectors: its one
/// selector, or the one that holds all the others (a traffic-triggered initiator puts the
/// packet's own selector first, RFC 7296 §2.9), as a prefix; `None` (any) otherwise.
fn inner_selector(ts: &[TrafficSelector]) -> Option<ipsec_core::sa::Prefix> {
    ts.iter()
        .find(|t| ike::ts::within(ts, std::slice::from_ref(t)))
        .and_then(ts_prefix)
}

/// Keeps ACQUIRE `m` for IKE SA `sa` until it can make a Child SA (at most 8 wait).
fn defer(sa: &mut IkeSa, m: &Message) {
    if sa.deferred.len() < 8 && !sa.deferred.iter().any(|d| d.seq == m.seq) {
        sa.deferred.push(m.clone());
    }
}

/// The suites to offer for ACQUIRE `m` under `rule` (`inner`: it names inner selectors),
/// in the policy's order with the rule's first when allowed; empty when the ACQUIRE has no
/// proposal or none of its algorithms can be keyed.
fn acquire_offer(m: &Message, rule: &Rule, inner: bool) -> Vec<ChildSuite> {
    let pref = rule.child.suite(!rule.tunnel && !inner, rule.pfs);
    m.proposal
        .as_ref()
        .map(|p| crate::policy::suites_from_proposal(p, pref))
        .unwrap_or_default()
}

/// Whether our Child SA pair with inbound SPI `inbound` serves selectors `wanted` (ours,
/// the peer's): they lie inside its own (an overlap is not enough: the pair would not
/// carry the rest). Without selectors any pair serves.
fn child_covers(
    est: &Established,
    inbound: u32,
    wanted: Option<&(Vec<TrafficSelector>, Vec<TrafficSelector>)>,
) -> bool {
    let Some((l, r)) = wanted else {
        return true;
    };
    let spi = inbound.to_be_bytes();
    let Some(c) = est.child_by_inbound(spi) else {
        return false;
    };
    let (ours, peers) = if c.spi_i == spi {
        (&c.ts_i, &c.ts_r)
    } else {
        (&c.ts_r, &c.ts_i)
    };
    pair_serves((ours, peers), (l, r))
}

/// Whether a pair with selectors `pair` (ours, the peer's) carries all of `wanted`.
fn pair_serves(
    pair: (&[TrafficSelector], &[TrafficSelector]),
    wanted: (&[TrafficSelector], &[TrafficSelector]),
) -> bool {
    ike::ts::within(wanted.0, pair.0) && ike::ts::within(wanted.1, pair.1)
}

/// What NAT detection found, in words.
fn nat_text(n: ike::sa::NatStatus) -> &'static str {
    match (n.local_behind_nat, n.peer_behind_nat) {
        (true, true) => "both sides are behind a NAT",
        (true, false) => "we are behind a NAT",
        _ => "the peer is behind a NAT",
    }
}

/// The traffic selector of one address, every protocol and port.
#[must_use]
pub fn host_ts(a: IpAddr) -> TrafficSelector {
    TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: a,
        end: a,
    }
}

impl Daemon {
    /// Binds the IKE port and makes the daemon (PF_KEY connects on the first turn).
    ///
    /// # Errors
    /// The IKE port cannot be bound.
    pub fn new(opts: Options, config: Config, psk: Preshared) -> io::Result<Self> {
        let mut udp = vec![PktinfoSocket::bind(
            SocketAddr::new(opts.bind, opts.ike_port),
            opts.mark,
        )?];
        if opts.bind == any_v4() {
            let v6 = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), opts.ike_port);
            match PktinfoSocket::bind(v6, opts.mark) {
                Ok(s) => udp.push(s),
                Err(e) => log::info(format_args!("no IPv6 IKE socket: {e}")),
            }
        }
        let admin = match &opts.admin_socket {
            Some(p) => Some(Listener::bind(p, 0o600)?),
            None => None,
        };
        let mut rng = OsRandom::default();
        let mut secret = [0u8; 32];
        ike::Random::fill(&mut rng, &mut secret);
        Ok(Self {
            opts,
            config,
            psk,
            certs: crate::certs::CertCreds::default(),
            pf: None,
            next_connect: Instant::now(),
            udp,
            relay: None,
            relay_port: 0,
            sas: Vec::new(),
            cookies: CookieJar::new(&secret),
            rng,
            peers_seen: HashSet::new(),
            admin,
            admin_conns: Vec::new(),
            larval: HashMap::new(),
            dump_seq: None,
            stats: Stats::default(),
        })
    }

    /// The local IKE port actually bound.
    ///
    /// # Errors
    /// `getsockname` failed.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp
            .first()
            .ok_or_else(|| io::Error::other("no IKE socket"))?
            .local_addr()
    }

    /// Runs until `stop` returns true (checked after every wake-up).
    ///
    /// # Errors
    /// `poll` failed.
    pub fn run(
        &mut self,
        wake: std::os::fd::BorrowedFd<'_>,
        stop: &dyn Fn() -> bool,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; 65_536];
        loop {
            if stop() {
                return Ok(());
            }
            let now = Instant::now();
            if self.pf.is_none() && now >= self.next_connect {
                self.connect(now);
            }
            self.timers(now);
            let deadline = self.next_deadline();
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let (pf_ready, udp_ready, relay_ready, admin_ready) = {
                let mut fds = vec![PollFd::from_borrowed_fd(wake, PollFlags::IN)];
                for u in &self.udp {
                    fds.push(PollFd::new(u, PollFlags::IN));
                }
                let pf_at = fds.len();
                if let Some(p) = &self.pf {
                    fds.push(PollFd::new(p.conn(), PollFlags::IN));
                }
                let relay_at = fds.len();
                if let Some(r) = &self.relay {
                    fds.push(PollFd::new(r, PollFlags::IN));
                }
                let admin_at = fds.len();
                if let Some(l) = &self.admin {
                    fds.push(PollFd::new(l, PollFlags::IN));
                }
                for c in &self.admin_conns {
                    fds.push(PollFd::new(c, PollFlags::IN));
                }
                ipsec_sys::poll(&mut fds, timeout)?;
                let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
                let udp_ready: Vec<usize> = (0..self.udp.len()).filter(|k| ready(1 + k)).collect();
                (
                    self.pf.is_some() && ready(pf_at),
                    udp_ready,
                    self.relay.is_some() && ready(relay_at),
                    (admin_at..fds.len()).any(ready),
                )
            };
            if admin_ready {
                self.serve_admin(&mut buf);
            }
            for k in udp_ready {
                self.read_udp(k, &mut buf);
            }
            if relay_ready {
                self.read_relay(&mut buf);
            }
            if pf_ready {
                self.read_pfkey();
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        if self.pf.is_none() {
            at(self.next_connect);
        }
        for sa in &self.sas {
            match &sa.phase {
                Some(Phase::Init(s)) => at(s.poll_timeout()),
                Some(Phase::Auth(s)) => at(s.poll_timeout()),
                Some(Phase::Up(s)) => {
                    if let Some(t) = s.poll_timeout() {
                        at(t);
                    }
                }
                Some(Phase::HalfOpen(_)) | None => {}
            }
        }
        for (i, sa) in self.sas.iter().enumerate() {
            if matches!(sa.phase, Some(Phase::HalfOpen(_))) || sa.superseded {
                at(sa.since + LINGER);
            }
            if let Some(t) = self.next_own_request(i) {
                at(t);
            }
            if let Some(t) = sa.frag_due {
                at(t);
            }
        }
        d
    }

    // -----------------------------------------------------------------------------------
    // PF_KEY.

    fn connect(&mut self, now: Instant) {
        match Pfkey::connect(&self.opts.pfkey_socket) {
            Ok(p) => {
                self.stats.pfkey_connects += 1;
                log::info(format_args!(
                    "connected to ipsecd at {}, registering for ESP",
                    self.opts.pfkey_socket.display()
                ));
                self.pf = Some(p);
                self.connect_relay();
                // SAs an earlier in.ikev2d left behind are keyed by no IKE SA of ours:
                // list them (DUMP) and delete them.
                let r = self
                    .pf
                    .as_mut()
                    .map(|p| p.send(Message::new(SADB_DUMP, SADB_SATYPE_ESP)));
                match r {
                    Some(Ok(seq)) => self.dump_seq = Some(seq),
                    Some(Err(e)) => log::error(format_args!("PF_KEY DUMP: {e}")),
                    None => {}
                }
            }
            Err(e) => {
                if self.stats.pfkey_connects == 0 {
                    log::debug(format_args!(
                        "{}: {e} (retrying)",
                        self.opts.pfkey_socket.display()
                    ));
                }
                self.next_connect = now + Duration::from_secs(1);
            }
        }
    }

    fn connect_relay(&mut self) {
        let Some(path) = &self.opts.control_socket else {
            return;
        };
        let r = Conn::connect(path).and_then(|c| {
            c.send(b"natt-relay")?;
            let mut b = [0u8; 256];
            let mut fds = [PollFd::new(&c, PollFlags::IN)];
            ipsec_sys::poll(&mut fds, Some(Duration::from_secs(2)))?;
            match c.recv(&mut b)? {
                Recv::Msg(n) => {
                    let s = String::from_utf8_lossy(b.get(..n).unwrap_or_default()).into_owned();
                    c.set_nonblocking(true)?;
                    Ok((c, s))
                }
                _ => Err(io::Error::other("no answer to natt-relay")),
            }
        });
        match r {
            Ok((c, reply)) => {
                let port = reply
                    .strip_prefix("ok relaying IKE on NAT-T port ")
                    .and_then(|p| p.trim().parse::<u16>().ok());
                match port {
                    Some(p) => {
                        log::info(format_args!("IKE on the NAT-T port {p} through ipsecd"));
                        self.relay = Some(c);
                        self.relay_port = p;
                    }
                    None => log::error(format_args!("natt-relay refused: {}", reply.trim())),
                }
            }
            Err(e) => log::error(format_args!("{}: {e}", path.display())),
        }
    }

    fn pf_send(&mut self, m: Message, what: &str) {
        let r = match &mut self.pf {
            Some(p) => p.send(m),
            None => Err(io::ErrorKind::NotConnected.into()),
        };
        if let Err(e) = r {
            log::error(format_args!("PF_KEY {what}: {e}"));
            if e.kind() == io::ErrorKind::ConnectionAborted {
                self.lost_pfkey();
            }
        }
    }

    /// ipsecd went away (or restarted): its SADB is gone, and so are our Child SAs. Every
    /// IKE SA is deleted (the peers then remove their halves), so that the next ACQUIREs
    /// negotiate afresh; then we reconnect and REGISTER again.
    fn lost_pfkey(&mut self) {
        log::error(format_args!(
            "lost the PF_KEY connection to ipsecd; deleting the IKE SAs and reconnecting"
        ));
        let now = Instant::now();
        for i in 0..self.sas.len() {
            let req = match &mut self.sas[i].phase {
                Some(Phase::Up(est)) => est.delete_ike(now, &mut self.rng).ok(),
                _ => None,
            };
            if let Some(r) = req {
                self.send_ike(i, &r);
            }
        }
        self.sas.clear();
        self.larval.clear();
        // The next IKE SA with each peer tells it to drop what it still holds.
        self.peers_seen.clear();
        self.pf = None;
        self.relay = None;
        self.next_connect = Instant::now() + Duration::from_millis(200);
    }

    fn read_pfkey(&mut self) {
        loop {
            let m = match self.pf.as_mut().map(Pfkey::recv) {
                Some(Ok(Some(m))) => m,
                Some(Ok(None)) | None => return,
                Some(Err(e)) if e.kind() == io::ErrorKind::ConnectionAborted => {
                    self.lost_pfkey();
                    return;
                }
                Some(Err(e)) => {
                    log::error(format_args!("PF_KEY: {e}"));
                    continue;
                }
            };
            if m.msg_type == SADB_GETSPI && m.pid == std::process::id() {
                let spi = (m.errno == 0).then(|| m.sa.map(|s| s.spi)).flatten();
                if m.errno != 0 {
                    log::error(format_args!(
                        "PF_KEY GETSPI refused (errno {}): drawing the SPI ourselves",
                        m.errno
                    ));
                }
                let (peer, local) = match (m.src, m.dst) {
                    (Some(s), Some(d)) => (s.ip(), d.ip()),
                    _ => (any_v4(), any_v4()),
                };
                self.got_spi(m.seq, spi, peer, local);
                continue;
            }
            if m.msg_type == SADB_REGISTER && m.pid == std::process::id() {
                // ipsecd's answer: from now on its ACQUIREs come to us.
                if m.errno == 0 {
                    log::info(format_args!(
                        "registered for ESP with ipsecd at {}",
                        self.opts.pfkey_socket.display()
                    ));
                } else {
                    log::error(format_args!("PF_KEY REGISTER refused: errno {}", m.errno));
                }
                continue;
            }
            if m.msg_type == SADB_X_INVERSE_ACQUIRE && m.pid == std::process::id() {
                self.got_policy(&m);
                continue;
            }
            if m.errno != 0 {
                // ESRCH for a DELETE: ipsecd removed the SA itself (hard EXPIRE).
                let gone = m.msg_type == SADB_DELETE && m.errno == ESRCH;
                if m.pid == std::process::id() && !gone {
                    log::error(format_args!(
                        "PF_KEY {} refused: errno {} diagnostic {}",
                        ipsec_pfkey::consts::msg_type_name(m.msg_type).unwrap_or("message"),
                        m.errno,
                        m.diagnostic
                    ));
                }
                continue;
            }
            match m.msg_type {
                SADB_DUMP if m.pid == std::process::id() && Some(m.seq) == self.dump_seq => {
                    self.stale_sa(&m);
                }
                SADB_ACQUIRE if m.satype == SADB_SATYPE_ESP => self.acquire(&m),
                SADB_EXPIRE if m.satype == SADB_SATYPE_ESP => self.expire(&m),
                _ => {}
            }
        }
    }

    /// One record of our start-up DUMP: an SA keyed by IKE that none of our IKE SAs
    /// holds is a leftover of an earlier daemon, and goes.
    fn stale_sa(&mut self, m: &Message) {
        let (Some(sa), Some(src), Some(dst)) = (m.sa, m.src, m.dst) else {
            return;
        };
        if m.kmc.is_none_or(|k| k.proto != SADB_X_KMP_IKE)
            || self.larval.contains_key(&sa.spi)
            || self.find_child(sa.spi).is_some()
        {
            return;
        }
        log::info(format_args!(
            "deleting SPI 0x{:08x} ({} -> {}), left by an earlier in.ikev2d",
            sa.spi,
            src.ip(),
            dst.ip()
        ));
        self.pf_send(delete_message(sa.spi, src.ip(), dst.ip()), "DELETE stale");
    }

    fn acquire(&mut self, m: &Message) {
        self.stats.acquires += 1;
        self.key_acquire(m);
    }

    /// Keys what an ACQUIRE asks for: a new IKE SA, or a new Child SA pair in the IKE SA
    /// with the peer (for other selectors than its pairs'), or later (deferred) when that
    /// IKE SA is still being made or busy with another exchange.
    fn key_acquire(&mut self, m: &Message) {
        let (Some(src), Some(dst)) = (m.src, m.dst) else {
            return;
        };
        let (local, remote) = (src.ip(), dst.ip());
        let Some(ri) = self
            .config
            .rules
            .iter()
            .position(|r| r.matches(local, remote))
        else {
            log::info(format_args!(
                "ACQUIRE {local} -> {remote}: no rule in the configuration"
            ));
            return;
        };
        // An IKE SA with the peer already exists or is being made.
        let mut fresh_contact = false;
        if let Some(i) = self
            .sas
            .iter()
            .position(|s| s.rule == ri && s.path.remote.ip() == remote && !s.superseded)
        {
            let now = Instant::now();
            let sa = &mut self.sas[i];
            let Some(Phase::Up(est)) = &mut sa.phase else {
                defer(sa, m); // still negotiating: asked again once it is up
                return;
            };
            let wanted = acquire_selectors(m).map(|(l, r)| (vec![l], vec![r]));
            if sa
                .children
                .iter()
                .any(|c| child_covers(est, c.inbound, wanted.as_ref()))
            {
                return; // the pair exists (the ACQUIRE crossed its ADD)
            }
            // What the policy asks for now (it may have changed since the IKE SA); never
            // an earlier ACQUIRE's offer.
            let offer = self
                .config
                .rules
                .get(ri)
                .map_or_else(Vec::new, |rule| acquire_offer(m, rule, wanted.is_some()));
            if offer.is_empty() {
                log::error(format_args!(
                    "ACQUIRE {local} -> {remote}: no algorithm of the policy can be negotiated"
                ));
                return;
            }
            est.set_child_offer(&offer);
            if let Some(spi) = sa.reserved.take() {
                self.rng.reserve(spi);
            }
            let spi_i = sa.spi_i;
            let r = match wanted {
                Some(ts) => est.create_child_for(ts, now, &mut self.rng),
                None => est.create_child(None, now, &mut self.rng),
            };
            self.take_back_spi(spi_i);
            match r {
                Ok(req) => {
                    self.sas[i].acquire_seq = m.seq;
                    self.send_ike(i, &req);
                    return;
                }
                Err(ike::sa::IkeError::Busy) if !self.sas[i].children.is_empty() => {
                    // Another exchange of ours (with pairs in use): after it.
                    defer(&mut self.sas[i], m);
                    return;
                }
                Err(e) => {
                    // The SA is stuck (a request of ours unanswered: the peer may have
                    // restarted): start over, telling the peer to drop what it holds.
                    log::info(format_args!(
                        "IKE SA with {remote} cannot make a Child SA ({e}): negotiating a new one"
                    ));
                    self.sas.remove(i);
                    fresh_contact = true;
                }
            }
        }
        let rule = &self.config.rules[ri];
        // Tunnel-mode policy (a gateway's, or host-to-host): the ACQUIRE's inner selectors
        // are the traffic selectors, and the Child SA is a tunnel-mode one.
        let inner = acquire_selectors(m);
        let suites = acquire_offer(m, rule, inner.is_some());
        let Some((&child, more)) = suites.split_first() else {
            log::error(format_args!(
                "ACQUIRE {local} -> {remote}: no algorithm of the policy can be negotiated"
            ));
            return;
        };
        let Some(mut cfg) = self.ike_config(ri, local, remote) else {
            return;
        };
        cfg.child = child;
        if let Some((ts_local, ts_remote)) = inner {
            cfg.ts_local = vec![ts_local];
            cfg.ts_remote = vec![ts_remote];
        }
        cfg.child_more = more.to_vec();
        cfg.initial_contact = self.peers_seen.insert(remote) || fresh_contact;
        let path = Path {
            local: SocketAddr::new(local, self.opts.ike_port),
            remote: SocketAddr::new(remote, 500),
        };
        match ExpectSaInitResp::start(cfg, path, Instant::now(), &mut self.rng) {
            Ok(s) => {
                log::info(format_args!(
                    "rule {:?}: initiating IKE with {remote} (ACQUIRE seq {})",
                    self.config.rules[ri].label, m.seq
                ));
                let req = s.request().to_vec();
                let spis = header_spis(&req);
                let mut sa = IkeSa::new(ri, Phase::Init(s), path, false, spis);
                sa.acquire_seq = m.seq;
                self.sas.push(sa);
                let i = self.sas.len() - 1;
                self.send_ike(i, &req);
                self.getspi(i);
            }
            Err(e) => log::error(format_args!("IKE_SA_INIT: {e}")),
        }
    }

    /// Gives the credentials of the certificate rules
    /// ([`crate::certs::load_cert_creds`]).
    #[must_use]
    pub fn with_certs(mut self, certs: crate::certs::CertCreds) -> Self {
        self.certs = certs;
        self
    }

    /// The IKE configuration of rule `ri` for this pair of addresses.
    fn ike_config(&self, ri: usize, local: IpAddr, remote: IpAddr) -> Option<IkeConfig> {
        let rule: &Rule = self.config.rules.get(ri)?;
        let (psk, cert, local_id) = if rule.auth.is_cert() {
            let Some((auth, id)) = self.certs.get(&rule.label) else {
                log::error(format_args!(
                    "rule {:?}: no certificate credentials",
                    rule.label
                ));
                return None;
            };
            (zeroize::Zeroizing::new(Vec::new()), Some(auth), Some(id))
        } else {
            let Some(psk) = self.psk.get(&rule.label) else {
                log::error(format_args!(
                    "rule {:?}: no pre-shared key with this label",
                    rule.label
                ));
                return None;
            };
            (psk.clone(), None, None)
        };
        Some(IkeConfig {
            suite: rule.ike.suite,
            prf: rule.ike.prf,
            group: rule.ike.group,
            child: rule.child.suite(!rule.tunnel, rule.pfs),
            local_id: local_id
                .or_else(|| rule.local_id.clone())
                .unwrap_or_else(|| ip_identity(local)),
            remote_id: Some(
                rule.remote_id
                    .clone()
                    .unwrap_or_else(|| ip_identity(remote)),
            ),
            psk,
            ts_local: selectors(&rule.local_ts, local),
            ts_remote: selectors(&rule.remote_ts, remote),
            backoff: self.opts.backoff,
            // Every Child SA request of a peer is held for ipsecd's policy answer
            // (daemon/policy_hold.rs); one that has none is refused.
            child_policy_required: true,
            max_child_sas: self.opts.max_child_sas,
            initial_contact: false,
            more_proposals: Vec::new(),
            child_more: Vec::new(),
            cert,
            fragment_len: self.config.fragments.message_len(remote),
        })
    }

    fn expire(&mut self, m: &Message) {
        let Some(sa) = m.sa else {
            return;
        };
        let hard = m.lifetime_hard.is_some();
        let spi = sa.spi;
        let Some((i, inst)) = self.find_child(spi) else {
            return;
        };
        if hard {
            log::info(format_args!(
                "hard EXPIRE of SPI 0x{spi:08x}: deleting the pair"
            ));
            self.queue(i, Queued::Delete(inst.inbound));
        } else if !self.sas[i].rekeying.contains(&inst.inbound) {
            log::info(format_args!(
                "soft EXPIRE of SPI 0x{spi:08x}: rekeying the pair"
            ));
            self.sas[i].rekeying.insert(inst.inbound);
            self.queue(i, Queued::Rekey(inst.inbound));
        }
    }

    fn find_child(&self, spi: u32) -> Option<(usize, Installed)> {
        self.sas.iter().enumerate().find_map(|(i, s)| {
            s.children
                .iter()
                .find(|c| c.inbound == spi || c.outbound == spi)
                .map(|c| (i, *c))
        })
    }

    fn queue(&mut self, i: usize, q: Queued) {
        if !self.sas[i].queued.contains(&q) {
            self.sas[i].queued.push(q);
        }
        self.run_queue(i);
    }

    /// Sends the first queued request of SA `i` if its window is free.
    fn run_queue(&mut self, i: usize) {
        let now = Instant::now();
        let Some(sa) = self.sas.get(i) else {
            return;
        };
        let Some(Phase::Up(est)) = &sa.phase else {
            return;
        };
        let Some(&q) = sa.queued.first() else {
            return;
        };
        if est.poll_timeout().is_some() {
            return;
        }
        // A rekey makes a new inbound SA: its SPI comes from ipsecd first.
        if matches!(q, Queued::Rekey(_)) && sa.reserved.is_none() {
            if sa.getspi.is_none() {
                self.getspi(i);
            }
            if self.sas[i].getspi.is_some() {
                return; // run again when the SPI comes
            }
        }
        self.sas[i].queued.remove(0);
        let spi_i = self.sas[i].spi_i;
        if matches!(q, Queued::Rekey(_)) {
            self.lend_spi(i);
        }
        let r = match &mut self.sas[i].phase {
            Some(Phase::Up(est)) => match q {
                Queued::Rekey(spi) => est.create_child(Some(spi.to_be_bytes()), now, &mut self.rng),
                Queued::Delete(spi) => est.delete_child(spi.to_be_bytes(), now, &mut self.rng),
            },
            _ => return,
        };
        self.take_back_spi(spi_i);
        match r {
            Ok(req) => self.send_ike(i, &req),
            Err(e) => log::debug(format_args!("{q:?}: {e}")),
        }
    }

    // -----------------------------------------------------------------------------------
    // IKE transport.

    /// Sends `msg` for SA `i`: whole, or as IKE fragments when the SA uses them (RFC
    /// 7383; a retransmission gives the same fragments).
    fn send_ike(&mut self, i: usize, msg: &[u8]) {
        let rng = &mut self.rng;
        let Some(sa) = self.sas.get_mut(i) else {
            return;
        };
        let datagrams = match &mut sa.phase {
            Some(Phase::Auth(s)) => s.datagrams(msg, rng),
            Some(Phase::Up(e)) => e.datagrams(msg, rng),
            _ => vec![msg.to_vec()],
        };
        let (path, natt) = (sa.path, sa.natt);
        for d in datagrams {
            self.send_on(path, natt, &d);
        }
    }

    /// Sends `msg` on `path`: from our UDP socket, or through the relay on the NAT-T port.
    fn send_on(&self, path: Path, natt: bool, msg: &[u8]) {
        let r = if natt {
            match &self.relay {
                Some(c) => {
                    let head = format!(
                        "send {} {} {}\n",
                        path.remote.ip(),
                        path.remote.port(),
                        path.local.ip()
                    );
                    c.send(&[head.as_bytes(), msg].concat())
                        .and_then(|s| match s {
                            Sent::Done => Ok(()),
                            _ => Err(io::Error::other("relay connection full or closed")),
                        })
                }
                None => Err(io::Error::other("no NAT-T relay")),
            }
        } else {
            match self
                .udp
                .iter()
                .find(|u| u.is_ipv6() == path.remote.is_ipv6())
            {
                Some(u) => u.send_from(msg, path.local.ip(), path.remote),
                None => Err(io::Error::other("no IKE socket of that address family")),
            }
        };
        if let Err(e) = r {
            log::error(format_args!("sending IKE to {}: {e}", path.remote));
        }
    }

    fn read_udp(&mut self, k: usize, buf: &mut [u8]) {
        loop {
            let Some(sock) = self.udp.get(k) else {
                return;
            };
            let r = match sock.recv(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::error(format_args!("IKE socket: {e}"));
                    return;
                }
            };
            let local = SocketAddr::new(r.dst, self.opts.ike_port);
            let msg = buf.get(..r.len).unwrap_or_default().to_vec();
            self.datagram(
                &msg,
                Path {
                    local,
                    remote: r.src,
                },
                false,
            );
        }
    }

    fn read_relay(&mut self, buf: &mut [u8]) {
        loop {
            let Some(c) = &self.relay else {
                return;
            };
            let n = match c.recv(buf) {
                Ok(Recv::Msg(n)) => n,
                Ok(Recv::WouldBlock) => return,
                Ok(Recv::Truncated(_)) => continue,
                Ok(Recv::Closed) | Err(_) => {
                    log::error(format_args!("the NAT-T relay connection closed"));
                    self.relay = None;
                    return;
                }
            };
            let m = buf.get(..n).unwrap_or_default();
            let Some(nl) = m.iter().position(|&b| b == b'\n') else {
                continue;
            };
            let head = String::from_utf8_lossy(m.get(..nl).unwrap_or_default()).into_owned();
            let body = m.get(nl + 1..).unwrap_or_default().to_vec();
            let w: Vec<&str> = head.split_whitespace().collect();
            let path = match w.as_slice() {
                ["ike", sip, sport, dip, dport] => {
                    match (sip.parse(), sport.parse(), dip.parse(), dport.parse()) {
                        (Ok(sip), Ok(sport), Ok(dip), Ok(dport)) => Path {
                            local: SocketAddr::new(dip, dport),
                            remote: SocketAddr::new(sip, sport),
                        },
                        _ => continue,
                    }
                }
                _ => {
                    if head.starts_with("error") {
                        log::error(format_args!("relay: {head}"));
                    }
                    continue;
                }
            };
            self.datagram(&body, path, true);
        }
    }

    // -----------------------------------------------------------------------------------
    // IKE processing.

    fn datagram(&mut self, msg: &[u8], path: Path, natt: bool) {
        let h = match Header::parse(msg) {
            Ok((h, _, _)) => h,
            Err(e) => {
                self.stats.dropped += 1;
                log::debug(format_args!("dropped a datagram from {}: {e}", path.remote));
                return;
            }
        };
        let found = self.sas.iter().position(|s| {
            s.spi_i == h.spi_i
                && (s.spi_r == h.spi_r
                    || (s.spi_r == [0; 8] && h.is_response())
                    || (h.spi_r == [0; 8] && s.path.remote == path.remote))
        });
        let Some(i) = found else {
            if h.exchange == exchange::IKE_SA_INIT && !h.is_response() && h.spi_r == [0; 8] {
                self.respond_init(msg, path, natt);
            } else {
                self.stats.dropped += 1;
                log::debug(format_args!(
                    "dropped IKE from {}: no SA with these SPIs",
                    path.remote
                ));
            }
            return;
        };
        // The exchange that makes the Child SA waits for ipsecd's SPI.
        if self.sas[i].getspi.is_some()
            && matches!(self.sas[i].phase, Some(Phase::Init(_) | Phase::HalfOpen(_)))
        {
            if self.sas[i].held.len() < 4 {
                self.sas[i].held.push((msg.to_vec(), path, natt));
            }
            return;
        }
        // A Child SA request of the peer waits for ipsecd's policy and SPI.
        if self.hold_for_policy(i, msg, path, natt) {
            return;
        }
        // The peer moved (NAT-T port float, or a NAT rebinding): follow it.
        if natt && !self.sas[i].natt && h.flags & flags::RESPONSE == 0 {
            self.sas[i].natt = true;
            self.sas[i].path = path;
        }
        self.handle(i, msg);
    }

    fn respond_init(&mut self, msg: &[u8], path: Path, natt: bool) {
        let (local, remote) = (path.local.ip(), path.remote.ip());
        let Some(ri) = self
            .config
            .rules
            .iter()
            .position(|r| r.matches(local, remote))
        else {
            self.stats.dropped += 1;
            log::info(format_args!(
                "IKE_SA_INIT from {}: no rule for {local} <- {remote}",
                path.remote
            ));
            return;
        };
        let Some(cfg) = self.ike_config(ri, local, remote) else {
            return;
        };
        let half_open = self
            .sas
            .iter()
            .filter(|s| matches!(s.phase, Some(Phase::HalfOpen(_))))
            .count();
        let ctx = InitContext {
            path,
            cookies: &self.cookies,
            require_cookie: half_open >= self.opts.cookie_threshold,
        };
        match respond_sa_init(&cfg, msg, &ctx, &mut self.rng) {
            Ok((state, reply)) => {
                let spis = state.spis();
                self.sas
                    .push(IkeSa::new(ri, Phase::HalfOpen(state), path, natt, spis));
                let i = self.sas.len() - 1;
                self.send_ike(i, &reply);
                self.getspi(i);
            }
            Err(InitRejected::Reply(e, reply)) => {
                log::info(format_args!("IKE_SA_INIT from {}: {e}", path.remote));
                self.send_on(path, natt, &reply);
            }
            Err(InitRejected::Drop(e)) => {
                self.stats.dropped += 1;
                log::debug(format_args!(
                    "IKE_SA_INIT from {} dropped: {e}",
                    path.remote
                ));
            }
        }
    }

    fn handle(&mut self, i: usize, msg: &[u8]) {
        let Some(phase) = self.sas[i].phase.take() else {
            return;
        };
        let mut phase = phase;
        if let Some(answer) = self.sas[i].policy_answer.take() {
            policy_hold::apply(&mut phase, answer);
        }
        let spi_i = self.sas[i].spi_i;
        self.lend_spi(i);
        self.handle_phase(i, phase, msg);
        self.take_back_spi(spi_i);
        self.retry_deferred(spi_i);
    }

    /// The ACQUIREs that waited for IKE SA `spi_i` (being made, or busy): again, once it
    /// is up (those that must wait longer are deferred again).
    fn retry_deferred(&mut self, spi_i: [u8; 8]) {
        let Some(sa) = self
            .sas
            .iter_mut()
            .find(|s| s.spi_i == spi_i && matches!(s.phase, Some(Phase::Up(_))))
        else {
            return;
        };
        for m in std::mem::take(&mut sa.deferred) {
            self.key_acquire(&m);
        }
    }

    /// After an exchange: an SPI it did not take stays reserved for the IKE SA whose
    /// initiator SPI is `spi_i`, or is released if that SA is gone.
    fn take_back_spi(&mut self, spi_i: [u8; 8]) {
        if let Some(spi) = self.rng.unreserve() {
            match self.sas.iter_mut().find(|s| s.spi_i == spi_i) {
                Some(sa) if sa.reserved.is_none() => sa.reserved = Some(spi),
                _ => self.drop_larval(spi),
            }
        }
    }

    /// Hands SA `i`'s reserved SPI to the exchange about to run.
    fn lend_spi(&mut self, i: usize) {
        if let Some(spi) = self.sas.get_mut(i).and_then(|s| s.reserved.take()) {
            self.rng.reserve(spi);
        }
    }

    /// Deletes a larval SA nobody will key.
    fn drop_larval(&mut self, spi: u32) {
        if let Some((src, dst)) = self.larval.remove(&spi) {
            log::debug(format_args!("releasing the unused SPI 0x{spi:08x}"));
            self.pf_send(delete_message(spi, src, dst), "DELETE larval");
        }
    }

    /// Asks ipsecd for an inbound SPI for SA `i`'s next Child SA (GETSPI), unless one is
    /// reserved or asked for already.
    fn getspi(&mut self, i: usize) {
        let Some(sa) = self.sas.get(i) else {
            return;
        };
        if sa.reserved.is_some() || sa.getspi.is_some() {
            return;
        }
        let m = getspi_message(sa.path.remote.ip(), sa.path.local.ip());
        let r = match &mut self.pf {
            Some(p) => p.send(m),
            None => Err(io::ErrorKind::NotConnected.into()),
        };
        match r {
            Ok(seq) => self.sas[i].getspi = Some(seq),
            Err(e) => log::error(format_args!("PF_KEY GETSPI: {e}")),
        }
    }

    /// ipsecd's answer to our GETSPI `seq`: the SPI (or `None` after an error). The
    /// messages held for it are handled now.
    fn got_spi(&mut self, seq: u32, spi: Option<u32>, peer: IpAddr, local: IpAddr) {
        let Some(i) = self.sas.iter().position(|s| s.getspi == Some(seq)) else {
            if let Some(spi) = spi {
                // The SA went away meanwhile.
                self.larval.insert(spi, (peer, local));
                self.drop_larval(spi);
            }
            return;
        };
        let sa = &mut self.sas[i];
        sa.getspi = None;
        if let Some(spi) = spi {
            sa.reserved = Some(spi);
            self.larval.insert(spi, (peer, local));
        }
        let spi_i = self.sas[i].spi_i;
        let held = std::mem::take(&mut self.sas[i].held);
        for (msg, path, natt) in held {
            self.datagram(&msg, path, natt);
        }
        // A rekey may have waited for this SPI.
        if let Some(i) = self.sas.iter().position(|s| s.spi_i == spi_i) {
            self.run_queue(i);
        }
    }

    fn handle_phase(&mut self, i: usize, phase: Phase, msg: &[u8]) {
        let now = Instant::now();
        match phase {
            Phase::Init(s) => match s.handle(msg, now, &mut self.rng) {
                Step::Stay { state, reply, .. } => {
                    self.sas[i].phase = Some(Phase::Init(state));
                    if let Some(r) = reply {
                        self.send_ike(i, &r);
                    }
                }
                Step::Next { state, reply } => {
                    let (_, spi_r) = header_spis(msg);
                    self.sas[i].spi_r = spi_r;
                    // Float to the NAT-T port when the peer does NAT detection and
                    // ipsecd relays that port (RFC 7296 §2.23).
                    if let Some(n) = state.nat().filter(|n| n.any()) {
                        log::info(format_args!(
                            "NAT detected on the path to {}: {}",
                            self.sas[i].path.remote,
                            nat_text(n)
                        ));
                    }
                    if state.nat().is_some() && self.relay.is_some() {
                        let sa = &mut self.sas[i];
                        sa.natt = true;
                        sa.path.local.set_port(self.relay_port);
                        sa.path.remote.set_port(self.relay_port);
                    }
                    self.sas[i].phase = Some(Phase::Auth(state));
                    if let Some(r) = reply {
                        self.send_ike(i, &r);
                    }
                }
                Step::Failed { error, reply } => self.failed(i, &error.to_string(), reply),
            },
            Phase::Auth(s) => self.auth_step(i, s.handle(msg), Phase::Auth),
            Phase::HalfOpen(s) => {
                let step = s.handle(msg, &mut self.rng);
                self.auth_step(i, step, Phase::HalfOpen);
            }
            Phase::Up(mut est) => {
                let out = est.handle(msg, &mut self.rng);
                self.sas[i].phase = Some(Phase::Up(est));
                match out {
                    Ok(o) => {
                        self.sas[i].last_rx = Instant::now();
                        if let Some(r) = &o.reply {
                            self.send_ike(i, r);
                        }
                        if let Some(ev) = o.event {
                            self.event(i, ev, o.rekeyed);
                        }
                        if let (Some(d), Some(Event::IkeRekeyCollision { won })) =
                            (o.redundant, o.event)
                        {
                            self.redundant_ike_sa(i, d, won);
                        }
                    }
                    Err(e) => {
                        self.stats.dropped += 1;
                        log::debug(format_args!("IKE SA {}: dropped: {e}", i));
                    }
                }
                self.reap(i);
            }
        }
    }

    /// The outcome of an IKE_AUTH message, either role.
    fn auth_step<S>(&mut self, i: usize, step: Step<S, Established>, wrap: fn(S) -> Phase) {
        match step {
            Step::Stay {
                state,
                reply,
                dropped,
            } => {
                if let Some(e) = dropped {
                    // A forged or corrupted IKE_AUTH message or fragment, dropped silently.
                    self.stats.dropped += 1;
                    log::debug(format_args!("IKE SA {i}: dropped: {e}"));
                }
                self.sas[i].phase = Some(wrap(state));
                if let Some(r) = reply {
                    self.send_ike(i, &r);
                }
            }
            Step::Next { mut state, reply } => {
                if let Some(r) = reply {
                    let (path, natt) = (self.sas[i].path, self.sas[i].natt);
                    for d in state.datagrams(&r, &mut self.rng) {
                        self.send_on(path, natt, &d);
                    }
                }
                self.established(i, state);
            }
            Step::Failed { error, reply } => self.failed(i, &error.to_string(), reply),
        }
    }

    fn failed(&mut self, i: usize, why: &str, reply: Option<Vec<u8>>) {
        if let Some(r) = reply {
            self.send_ike(i, &r);
        }
        self.stats.ike_failed += 1;
        log::error(format_args!(
            "IKE SA with {} failed: {why}",
            self.sas[i].path.remote
        ));
        let sa = self.sas.remove(i);
        if let Some(spi) = sa.reserved {
            self.drop_larval(spi);
        }
    }

    fn established(&mut self, i: usize, est: Established) {
        self.stats.ike_established += 1;
        let initial_contact = est.peer_initial_contact();
        let remote = self.sas[i].path.remote.ip();
        log::info(format_args!(
            "IKE SA with {} established ({}, IKE on port {})",
            self.sas[i].path.remote,
            if est.is_initiator() {
                "initiator"
            } else {
                "responder"
            },
            self.sas[i].path.local.port()
        ));
        if let Some(e) = est.ike_auth_child_error() {
            // RFC 7296 §1.2: the IKE SA stands without a Child SA.
            log::error(format_args!(
                "IKE SA with {}: no Child SA made in IKE_AUTH: {e}",
                self.sas[i].path.remote
            ));
            if let Some(spi) = est.unused_spi() {
                self.drop_larval(u32::from_be_bytes(spi));
            }
        }
        let inbound: Vec<[u8; 4]> = est
            .children()
            .map(|c| if est.is_initiator() { c.spi_i } else { c.spi_r })
            .collect();
        self.sas[i].phase = Some(Phase::Up(Box::new(est)));
        self.sas[i].since = Instant::now();
        self.sas[i].last_rx = Instant::now();
        let spis = (self.sas[i].spi_i, self.sas[i].spi_r);
        if initial_contact {
            // RFC 7296 §2.4: the peer restarted; forget our older SAs with it.
            let old: Vec<usize> = (0..self.sas.len())
                .filter(|&j| j != i && self.sas[j].path.remote.ip() == remote)
                .collect();
            for j in old.into_iter().rev() {
                log::info(format_args!(
                    "INITIAL_CONTACT from {remote}: removing an older IKE SA"
                ));
                self.remove_children(j);
                self.sas.remove(j);
            }
        }
        // This SA by its SPIs (removals above moved it): another IKE SA with the same peer
        // (many may exist at once, without INITIAL_CONTACT) does not hold these children.
        let i = self
            .sas
            .iter()
            .position(|s| (s.spi_i, s.spi_r) == spis)
            .unwrap_or(i);
        for spi in inbound {
            self.install(i, spi);
        }
    }

    /// Installs the Child SA pair whose inbound SPI is `inbound`.
    fn install(&mut self, i: usize, inbound: [u8; 4]) {
        let sa = &self.sas[i];
        let Some(Phase::Up(est)) = &sa.phase else {
            return;
        };
        let Some(c) = est.child_by_inbound(inbound) else {
            return;
        };
        let Some(rule) = self.config.rules.get(sa.rule) else {
            return;
        };
        // Who requested this Child SA: its "initiator" keys are the requester's.
        let we_requested = c.spi_i == inbound;
        let outbound = if we_requested { c.spi_r } else { c.spi_i };
        let (out_e, out_a, in_e, in_a) = if we_requested {
            (
                &c.keys.encr_i,
                &c.keys.integ_i,
                &c.keys.encr_r,
                &c.keys.integ_r,
            )
        } else {
            (
                &c.keys.encr_r,
                &c.keys.integ_r,
                &c.keys.encr_i,
                &c.keys.integ_i,
            )
        };
        let (local, remote) = (sa.path.local.ip(), sa.path.remote.ip());
        let (ts_local, ts_remote) = if we_requested {
            (&c.ts_i, &c.ts_r)
        } else {
            (&c.ts_r, &c.ts_i)
        };
        let (in_local, in_remote) = (inner_selector(ts_local), inner_selector(ts_remote));
        // Which side is NATed goes on the SAs: only ours-behind-a-NAT sends keepalives.
        let ports = (sa.path.local.port(), sa.path.remote.port());
        let encap = sa.natt.then(|| crate::pfkey::Encap::new(ports, est.nat()));
        let inb = ChildSaSpec {
            spi: spi32(inbound),
            src: remote,
            dst: local,
            suite: c.suite,
            encr_key: in_e,
            integ_key: in_a,
            lifetime: rule.child_lifetime,
            encap,
            seq: 0,
            tunnel: (!c.transport).then_some((in_remote, in_local)),
        };
        let outb = ChildSaSpec {
            spi: spi32(outbound),
            src: local,
            dst: remote,
            suite: c.suite,
            encr_key: out_e,
            integ_key: out_a,
            lifetime: rule.child_lifetime,
            encap,
            seq: sa.acquire_seq,
            tunnel: (!c.transport).then_some((in_local, in_remote)),
        };
        let msgs = (add_message(&inb), add_message(&outb));
        let pair = Installed {
            inbound: spi32(inbound),
            outbound: spi32(outbound),
        };
        match msgs {
            (Ok(mut a), Ok(b)) => {
                // Inbound first: the peer may use the pair as soon as it has it. Its SPI,
                // when ipsecd reserved it, is keyed with an UPDATE of the larval SA.
                let what = if self.larval.remove(&pair.inbound).is_some() {
                    a.msg_type = SADB_UPDATE;
                    "UPDATE inbound"
                } else {
                    "ADD inbound"
                };
                self.pf_send(a, what);
                self.pf_send(b, "ADD outbound");
                self.sas[i].acquire_seq = 0;
                self.sas[i].children.push(pair);
                self.stats.children_installed += 1;
                log::info(format_args!(
                    "Child SA pair with {remote} installed ({what} + ADD outbound): inbound SPI 0x{:08x}, outbound SPI 0x{:08x}",
                    pair.inbound, pair.outbound
                ));
            }
            (Err(e), _) | (_, Err(e)) => log::error(format_args!("Child SA: {e}")),
        }
    }

    fn uninstall(&mut self, i: usize, inbound: u32) {
        let Some(pos) = self.sas[i]
            .children
            .iter()
            .position(|c| c.inbound == inbound)
        else {
            return;
        };
        let c = self.sas[i].children.remove(pos);
        self.sas[i].rekeying.remove(&inbound);
        let (local, remote) = (self.sas[i].path.local.ip(), self.sas[i].path.remote.ip());
        self.pf_send(delete_message(c.inbound, remote, local), "DELETE inbound");
        self.pf_send(delete_message(c.outbound, local, remote), "DELETE outbound");
        self.stats.children_deleted += 1;
        log::info(format_args!(
            "Child SA pair with {remote} deleted: SPIs 0x{:08x}/0x{:08x}",
            c.inbound, c.outbound
        ));
    }

    fn remove_children(&mut self, i: usize) {
        let all: Vec<u32> = self.sas[i].children.iter().map(|c| c.inbound).collect();
        for s in all {
            self.uninstall(i, s);
        }
    }

    fn event(&mut self, i: usize, ev: Event, rekeyed: Option<Box<Established>>) {
        match ev {
            Event::ChildCreated { inbound } => self.install(i, inbound),
            Event::ChildRekeyed { old, new } => {
                self.install(i, new);
                if self.sas[i].rekeying.remove(&spi32(old)) {
                    // We asked: the old pair goes once the new one is in (make before break).
                    self.queue(i, Queued::Delete(spi32(old)));
                }
            }
            Event::ChildRekeyCollision {
                old,
                new,
                redundant,
            } => {
                self.install(i, new);
                self.sas[i].rekeying.remove(&spi32(old));
                match redundant {
                    Some(r) => self.queue(i, Queued::Delete(spi32(r))),
                    None => self.queue(i, Queued::Delete(spi32(old))),
                }
            }
            Event::ChildDeleted { inbound, .. } => self.uninstall(i, spi32(inbound)),
            Event::IkeDeleted => {
                log::info(format_args!(
                    "IKE SA with {} deleted",
                    self.sas[i].path.remote
                ));
                self.remove_children(i);
                if let Some(spis) = self.sas[i].then_delete_old.take() {
                    self.delete_old_ike_sa(spis);
                }
            }
            Event::IkeRekeyed | Event::IkeRekeyCollision { .. } => {
                if let Some(new) = rekeyed {
                    // The new IKE SA takes the Child SAs; the old one stays until it is
                    // deleted: by us when we asked for the rekey (RFC 7296 §1.3.2), else
                    // by the peer.
                    let old = &mut self.sas[i];
                    let mut n = IkeSa::new(
                        old.rule,
                        Phase::Up(new),
                        old.path,
                        old.natt,
                        ([0; 8], [0; 8]),
                    );
                    if let Some(Phase::Up(e)) = &n.phase {
                        (n.spi_i, n.spi_r) = e.spis();
                    }
                    n.children = std::mem::take(&mut old.children);
                    n.rekeying = std::mem::take(&mut old.rekeying);
                    n.queued = std::mem::take(&mut old.queued);
                    n.reserved = old.reserved.take();
                    old.superseded = true;
                    old.since = Instant::now();
                    // In a simultaneous rekey (RFC 7296 §2.8.2) the winner deletes the old SA.
                    // In a simultaneous rekey (RFC 7296 §2.8.2) the winner deletes the old
                    // SA once the loser has deleted the redundant one.
                    let by_us = match ev {
                        Event::IkeRekeyCollision { .. } => false,
                        _ => old.rekey_requested,
                    };
                    log::info(format_args!(
                        "IKE SA with {} rekeyed: SPIs {}:{}",
                        n.path.remote,
                        hex(&n.spi_i),
                        hex(&n.spi_r)
                    ));
                    self.sas.push(n);
                    if by_us {
                        let now = Instant::now();
                        let req = match &mut self.sas[i].phase {
                            Some(Phase::Up(e)) => e.delete_ike(now, &mut self.rng).ok(),
                            _ => None,
                        };
                        if let Some(r) = req {
                            self.send_ike(i, &r);
                        }
                    }
                    let last = self.sas.len() - 1;
                    self.run_queue(last);
                }
            }
            Event::IkeRekeyFailed(e) => {
                // Refused (say TEMPORARY_FAILURE: the peer had a request in flight): try
                // again a little later.
                log::info(format_args!(
                    "IKE SA rekey with {} refused ({e}); trying again",
                    self.sas[i].path.remote
                ));
                let sa = &mut self.sas[i];
                sa.rekey_requested = false;
                sa.since += Duration::from_millis(500);
            }
            Event::ChildFailed(e) => {
                log::error(format_args!(
                    "exchange with {}: {e}",
                    self.sas[i].path.remote
                ));
            }
            _ => {}
        }
        self.run_queue(i);
    }

    /// The redundant IKE SA of a simultaneous rekey with SA `i`'s peer (RFC 7296
    /// §2.8.2): kept, without Child SAs, until it is deleted: by us now when we lost, by
    /// the peer when we won (forgotten after a while otherwise).
    fn redundant_ike_sa(&mut self, i: usize, mut d: Box<Established>, won: bool) {
        let old = &self.sas[i];
        let (rule, path, natt) = (old.rule, old.path, old.natt);
        log::info(format_args!(
            "simultaneous IKE SA rekey with {}: {}",
            path.remote,
            if won {
                "ours stands, the peer deletes its redundant SA"
            } else {
                "the peer's stands, deleting our redundant SA"
            }
        ));
        let req = if won {
            None
        } else {
            d.delete_ike(Instant::now(), &mut self.rng).ok()
        };
        let mut n = IkeSa::new(rule, Phase::Up(d), path, natt, ([0; 8], [0; 8]));
        if let Some(Phase::Up(e)) = &n.phase {
            (n.spi_i, n.spi_r) = e.spis();
        }
        n.superseded = true;
        if won {
            n.then_delete_old = Some((old.spi_i, old.spi_r));
        }
        self.sas.push(n);
        if let Some(r) = req {
            let last = self.sas.len() - 1;
            self.send_ike(last, &r);
        }
    }

    /// Deletes the old IKE SA with these SPIs (a simultaneous rekey we won, once the
    /// peer deleted its redundant SA).
    fn delete_old_ike_sa(&mut self, (spi_i, spi_r): ([u8; 8], [u8; 8])) {
        let Some(j) = self
            .sas
            .iter()
            .position(|s| s.spi_i == spi_i && s.spi_r == spi_r)
        else {
            return;
        };
        let req = match &mut self.sas[j].phase {
            Some(Phase::Up(e)) => e.delete_ike(Instant::now(), &mut self.rng).ok(),
            _ => None,
        };
        if let Some(r) = req {
            self.send_ike(j, &r);
        }
    }

    /// Removes SA `i` if it is closed.
    fn reap(&mut self, i: usize) {
        let closed = matches!(&self.sas.get(i).and_then(|s| s.phase.as_ref()), Some(Phase::Up(e)) if e.is_closed());
        if closed {
            self.remove_children(i);
            self.sas.remove(i);
        }
    }

    fn timers(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.sas.len() {
            let mut resend = None;
            let mut dead = None;
            let mut frag_due = None;
            match &mut self.sas[i].phase {
                Some(Phase::Init(s)) => match s.handle_timeout(now) {
                    Ok(r) => resend = r.map(<[u8]>::to_vec),
                    Err(e) => dead = Some(e.to_string()),
                },
                Some(Phase::Auth(s)) => match s.handle_timeout(now) {
                    Ok(r) => resend = r.map(<[u8]>::to_vec),
                    Err(e) => dead = Some(e.to_string()),
                },
                Some(Phase::Up(s)) => {
                    frag_due = s.expire_fragments(now);
                    match s.handle_timeout(now) {
                        Ok(r) => resend = r,
                        Err(e) => dead = Some(format!("dead peer: {e}")),
                    }
                }
                Some(Phase::HalfOpen(_)) | None => {}
            }
            self.sas[i].frag_due = frag_due;
            let sa = &self.sas[i];
            let lingering = matches!(sa.phase, Some(Phase::HalfOpen(_))) || sa.superseded;
            if lingering && now >= sa.since + LINGER {
                log::debug(format_args!(
                    "forgetting an unfinished or replaced IKE SA with {}",
                    sa.path.remote
                ));
                let sa = self.sas.remove(i);
                if let Some(spi) = sa.reserved {
                    self.drop_larval(spi);
                }
                continue;
            }
            if let Some(r) = resend {
                self.send_ike(i, &r);
            }
            if let Some(why) = dead {
                self.remove_children(i);
                // The next IKE SA with it says INITIAL_CONTACT.
                let peer = self.sas[i].path.remote.ip();
                self.peers_seen.remove(&peer);
                self.failed(i, &why, None);
                continue;
            }
            self.keepalive(i, now);
            i += 1;
        }
    }

    /// When SA `i` next needs a request of ours: its IKE SA rekey or a liveness check.
    fn next_own_request(&self, i: usize) -> Option<Instant> {
        let sa = self.sas.get(i)?;
        let Some(Phase::Up(est)) = &sa.phase else {
            return None;
        };
        if sa.superseded || est.poll_timeout().is_some() || !sa.queued.is_empty() {
            return None;
        }
        let rule = self.config.rules.get(sa.rule)?;
        // The original initiator rekeys at 85 % of the lifetime, the responder at 95 %,
        // so that both rarely ask at once.
        let share = if est.is_initiator() { 85 } else { 95 };
        let rekey = (!sa.rekey_requested)
            .then(|| sa.since + Duration::from_secs(rule.ike_lifetime * share / 100));
        let dpd = (!self.opts.dpd.is_zero()).then(|| sa.last_rx + self.opts.dpd);
        match (rekey, dpd) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends SA `i`'s IKE SA rekey or liveness check when due.
    fn keepalive(&mut self, i: usize, now: Instant) {
        if self.next_own_request(i).is_none_or(|t| t > now) {
            return;
        }
        let lifetime = self
            .config
            .rules
            .get(self.sas[i].rule)
            .map_or(0, |r| r.ike_lifetime);
        let sa = &mut self.sas[i];
        let Some(Phase::Up(est)) = &mut sa.phase else {
            return;
        };
        let share = if est.is_initiator() { 85 } else { 95 };
        let rekey_due =
            !sa.rekey_requested && now >= sa.since + Duration::from_secs(lifetime * share / 100);
        let r = if rekey_due {
            sa.rekey_requested = true;
            log::info(format_args!("rekeying the IKE SA with {}", sa.path.remote));
            est.rekey_ike(now, &mut self.rng)
        } else {
            log::debug(format_args!("liveness check of {}", sa.path.remote));
            est.check_liveness(now, &mut self.rng)
        };
        match r {
            Ok(req) => self.send_ike(i, &req),
            Err(e) => log::debug(format_args!("{e}")),
        }
    }
}

impl Daemon {
    // -----------------------------------------------------------------------------------
    // Administration (ikev2adm).

    fn serve_admin(&mut self, buf: &mut [u8]) {
        if let Some(l) = &self.admin {
            while let Ok(Some((c, cred))) = l.accept() {
                if cred.is_privileged() {
                    self.admin_conns.push(c);
                } else {
                    let _ = c.send(b"error ikev2adm needs root or CAP_NET_ADMIN");
                }
            }
        }
        let mut k = 0;
        while k < self.admin_conns.len() {
            let r = self.admin_conns[k].recv(buf);
            match r {
                Ok(Recv::Msg(n)) => {
                    let req =
                        String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
                    let reply = self.admin_request(req.trim());
                    let _ = self.admin_conns[k].send(reply.as_bytes());
                    k += 1;
                }
                Ok(Recv::WouldBlock) => k += 1,
                Ok(Recv::Truncated(_)) => {
                    let _ = self.admin_conns[k].send(b"error request too long");
                    k += 1;
                }
                Ok(Recv::Closed) | Err(_) => {
                    self.admin_conns.remove(k);
                }
            }
        }
    }

    /// One ikev2adm request; the reply (`ok` and lines, or `error ...`).
    fn admin_request(&mut self, req: &str) -> String {
        let w: Vec<&str> = req.split_whitespace().collect();
        match w.as_slice() {
            ["show", "ikesa"] => {
                let mut o = String::from("ok\n");
                for sa in &self.sas {
                    let (role, state) = match &sa.phase {
                        Some(Phase::Init(_)) => ("initiator", "IKE_SA_INIT sent"),
                        Some(Phase::Auth(_)) => ("initiator", "IKE_AUTH sent"),
                        Some(Phase::HalfOpen(_)) => ("responder", "half-open"),
                        Some(Phase::Up(e)) if e.is_initiator() => ("initiator", "established"),
                        Some(Phase::Up(_)) => ("responder", "established"),
                        None => ("-", "-"),
                    };
                    let label = self.config.rules.get(sa.rule).map_or("", |r| r.label.as_str());
                    o.push_str(&format!(
                        "ikesa {}:{} {} <-> {} {role} {state} rule={label:?} children={}",
                        hex(&sa.spi_i),
                        hex(&sa.spi_r),
                        sa.path.local,
                        sa.path.remote,
                        sa.children.len()
                    ));
                    for c in &sa.children {
                        o.push_str(&format!(" 0x{:08x}/0x{:08x}", c.inbound, c.outbound));
                    }
                    o.push('\n');
                }
                o
            }
            ["show", "rule"] => {
                let mut o = String::from("ok\n");
                for r in &self.config.rules {
                    let addrs = |v: &[crate::config::Prefix]| {
                        v.iter()
                            .map(|p| format!("{}/{}", p.addr, p.len))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    o.push_str(&format!(
                        "rule {:?} local {} remote {} ike encr={}/{} integ={} prf={} group={} lifetime={} child encr={}/{} integ={} mode={} pfs={} lifetime={}\n",
                        r.label,
                        addrs(&r.local_addr),
                        addrs(&r.remote_addr),
                        r.ike.suite.encr,
                        r.ike.suite.key_bits,
                        r.ike.suite.integ.unwrap_or(0),
                        r.ike.prf.id(),
                        r.ike.group.id(),
                        r.ike_lifetime,
                        r.child.encr,
                        r.child.key_bits,
                        r.child.integ.unwrap_or(0),
                        if r.tunnel { "tunnel" } else { "transport" },
                        if r.pfs { "yes" } else { "no" },
                        r.child_lifetime
                    ));
                }
                o
            }
            ["show", "stats"] => {
                let s = self.stats;
                format!(
                    "ok\nike_sas={}\nacquires={}\nike_established={}\nike_failed={}\nchildren_installed={}\nchildren_deleted={}\ndropped={}\npfkey_connects={}\n",
                    self.sas.len(),
                    s.acquires,
                    s.ike_established,
                    s.ike_failed,
                    s.children_installed,
                    s.children_deleted,
                    s.dropped,
                    s.pfkey_connects
                )
            }
            ["flush", "ikesa"] => format!("ok deleted {}\n", self.delete_ike_sas(|_| true)),
            ["delete", "ikesa", peer] => match peer.parse::<IpAddr>() {
                Ok(a) => format!("ok deleted {}\n", self.delete_ike_sas(|sa| sa.path.remote.ip() == a)),
                Err(_) => format!("error {peer:?} is not an IP address\n"),
            },
            _ => format!(
                "error unknown request {req:?} (expected show ikesa|rule|stats, flush ikesa, delete ikesa PEER)\n"
            ),
        }
    }

    /// Deletes the IKE SAs `which` selects: tells each peer (INFORMATIONAL delete, sent
    /// once), removes their Child SAs from ipsecd and forgets them. How many.
    fn delete_ike_sas(&mut self, which: impl Fn(&IkeSa) -> bool) -> usize {
        let now = Instant::now();
        let mut n = 0;
        let mut i = 0;
        while i < self.sas.len() {
            if !which(&self.sas[i]) {
                i += 1;
                continue;
            }
            let req = match &mut self.sas[i].phase {
                Some(Phase::Up(est)) => est.delete_ike(now, &mut self.rng).ok(),
                _ => None,
            };
            if let Some(r) = req {
                self.send_ike(i, &r);
            }
            self.remove_children(i);
            log::info(format_args!(
                "IKE SA with {} deleted by the administrator",
                self.sas[i].path.remote
            ));
            self.sas.remove(i);
            n += 1;
        }
        n
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn header_spis(msg: &[u8]) -> ([u8; 8], [u8; 8]) {
    match Header::parse(msg) {
        Ok((h, _, _)) => (h.spi_i, h.spi_r),
        Err(_) => ([0; 8], [0; 8]),
    }
}

/// The unspecified IPv4 address (the default bind address).
#[must_use]
pub fn any_v4() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}
