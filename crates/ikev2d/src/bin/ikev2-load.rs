//! `ikev2-load`: the IKEv2 load generator of `scripts/bench-ike.sh` (issue 9's benchmark
//! bars), built on the sans-IO initiator of the `ike` crate.
//!
//! * `ikev2-load sas`: many concurrent IKE_SA_INIT + IKE_AUTH exchanges (PSK, the
//!   transforms of `--group`, AES-GCM-16 128 for the IKE SA and the Child SA, PRF
//!   HMAC-SHA2-256), each a distinct IKE SA (its own initiator SPI); every established
//!   IKE SA is deleted again (INFORMATIONAL) unless `--keep`, and the slot starts the next
//!   one. Prints one line of `key=value` counters: IKE SAs established within the
//!   measured window, failed, COOKIE answers honoured, the rate.
//! * `ikev2-load flood`: IKE_SA_INIT requests from many source addresses (each request
//!   from its own address of `--sources`, which must be local to this host, e.g. an
//!   AnyIP route `ip route add local PREFIX dev lo`) at an even pace, never continued;
//!   counts the answers by kind (full IKE_SA_INIT responses, COOKIE notifications,
//!   anything else).
//!
//! The pre-shared key is read from a file (`--psk-file`), never from the command line.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use ike::consts::{exchange, notify};
use ike::dh::Group;
use ike::prf::PrfAlg;
use ike::sa::{
    Backoff, ChildSuite, Established, Event, ExpectAuthResp, ExpectSaInitResp, IkeConfig, Path,
    Step,
};
use ike::sk::SkSuite;
use ike::wire::{Header, Message, Payload};
use ikev2d::config::ip_identity;
use ikev2d::daemon::host_ts;
use ikev2d::OsRandom;
use ipsec_sys::udp::PktinfoSocket;
use ipsec_sys::{PollFd, PollFlags};
use zeroize::Zeroizing;

/// IKEv2 load generator (benchmarks).
#[derive(Parser, Debug)]
#[command(name = "ikev2-load", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make (and delete) IKE SAs with PSK authentication as fast as the responder answers.
    Sas(SasArgs),
    /// Send IKE_SA_INIT requests from many source addresses and count the answers.
    Flood(FloodArgs),
}

#[derive(Args, Debug)]
struct SasArgs {
    /// The responder's address (port 500).
    #[arg(long)]
    peer: IpAddr,
    /// Our address (also our IKE identity, type IPv4/IPv6 address).
    #[arg(long)]
    local: IpAddr,
    /// File holding the pre-shared key (its first line).
    #[arg(long)]
    psk_file: PathBuf,
    /// Key exchange group (31 Curve25519, 19 ECP 256, 14 MODP 2048).
    #[arg(long, default_value_t = 31)]
    group: u16,
    /// IKE SAs in progress at once (per thread).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Threads, each with its own UDP port and `--concurrency` slots.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The measured window: new IKE SAs are started for this long (with `--count`: the
    /// time allowed to reach the count).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop once this many IKE SAs were established (0: run for `--seconds`).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Keep the IKE SAs instead of deleting each once it is established.
    #[arg(long)]
    keep: bool,
    /// First retransmission after this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    retransmit_ms: u64,
    /// After the window, wait this long for the exchanges in flight to end.
    #[arg(long, default_value_t = 3.0)]
    drain_seconds: f64,
}

#[derive(Args, Debug)]
struct FloodArgs {
    /// The responder's address (port 500).
    #[arg(long)]
    peer: IpAddr,
    /// Source addresses: an IPv4 prefix (ADDR/LEN), one address per request in turn.
    #[arg(long)]
    sources: String,
    /// Requests in all.
    #[arg(long, default_value_t = 10_000)]
    count: u32,
    /// Spread over this many seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// After the last request, keep counting answers this long.
    #[arg(long, default_value_t = 2.0)]
    linger_seconds: f64,
    /// Key exchange group of the requests.
    #[arg(long, default_value_t = 31)]
    group: u16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Sas(a) => sas(&a),
        Cmd::Flood(a) => flood(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ikev2-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn group(id: u16) -> io::Result<Group> {
    Group::from_id(id).ok_or_else(|| io::Error::other(format!("unknown key exchange group {id}")))
}

/// The benchmark's IKE configuration between `local` and `peer`: AES-GCM-16 128 for the
/// IKE SA and the tunnel-mode Child SA, PRF HMAC-SHA2-256, no PFS, host selectors.
fn config(local: IpAddr, peer: IpAddr, g: Group, psk: Zeroizing<Vec<u8>>, b: Backoff) -> IkeConfig {
    IkeConfig {
        suite: SkSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
        },
        prf: PrfAlg::HmacSha256,
        group: g,
        child: ChildSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
            transport: false,
            pfs: false,
        },
        child_more: Vec::new(),
        local_id: ip_identity(local),
        remote_id: Some(ip_identity(peer)),
        psk,
        ts_local: vec![host_ts(local)],
        ts_remote: vec![host_ts(peer)],
        backoff: b,
        child_policy_required: false,
        max_child_sas: ike::sa::DEFAULT_MAX_CHILD_SAS,
        initial_contact: false,
        more_proposals: Vec::new(),
        cert: None,
        fragment_len: None,
    }
}

/// What an answer to an IKE_SA_INIT request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A full response (SA, KE, Nonce): the responder keeps a half-open SA.
    Full,
    /// Only a COOKIE notification (RFC 7296 §2.6): no state kept.
    Cookie,
    /// Anything else (another notification, unparsable).
    Other,
}

fn classify(msg: &[u8]) -> Kind {
    let Ok(m) = Message::parse(msg) else {
        return Kind::Other;
    };
    if m.header.exchange != exchange::IKE_SA_INIT || !m.header.is_response() {
        return Kind::Other;
    }
    match m.payloads.as_slice() {
        [Payload::Notify(n)] if n.ty == notify::COOKIE => Kind::Cookie,
        p if p.iter().any(|p| matches!(p, Payload::Sa(_))) => Kind::Full,
        _ => Kind::Other,
    }
}

// ---------------------------------------------------------------------------------------
// sas

/// One exchange in progress (a few dozen at a time: their size does not matter).
#[allow(clippy::large_enum_variant)]
enum Slot {
    Init(ExpectSaInitResp),
    Auth(ExpectAuthResp),
    Deleting(Box<Established>),
}

impl Slot {
    fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Init(s) => Some(s.poll_timeout()),
            Self::Auth(s) => Some(s.poll_timeout()),
            Self::Deleting(s) => s.poll_timeout(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// IKE SAs established inside the window.
    established: u64,
    /// Established after the window (exchanges in flight at its end).
    late: u64,
    /// Exchanges that failed (error notification, timeout).
    failed: u64,
    /// Deletes acknowledged.
    deleted: u64,
    /// COOKIE answers (the request was sent again with the cookie).
    cookies: u64,
    /// Retransmissions.
    retransmits: u64,
    /// Datagrams no exchange took.
    stray: u64,
    /// Sum of the establishment times (first request to IKE_AUTH response), microseconds.
    latency_us: u64,
    /// Exchanges still unfinished when the drain ended.
    unfinished: u64,
}

impl Counts {
    fn add(&mut self, o: &Self) {
        self.established += o.established;
        self.late += o.late;
        self.failed += o.failed;
        self.deleted += o.deleted;
        self.cookies += o.cookies;
        self.retransmits += o.retransmits;
        self.stray += o.stray;
        self.latency_us += o.latency_us;
        self.unfinished += o.unfinished;
    }
}

fn read_psk(p: &std::path::Path) -> io::Result<Zeroizing<Vec<u8>>> {
    let all = Zeroizing::new(std::fs::read(p)?);
    let line = all.split(|&b| b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return Err(io::Error::other(format!("{}: no key", p.display())));
    }
    Ok(Zeroizing::new(line.to_vec()))
}

fn sas(a: &SasArgs) -> io::Result<()> {
    let psk = read_psk(&a.psk_file)?;
    let g = group(a.group)?;
    if a.concurrency == 0 || a.threads == 0 {
        return Err(io::Error::other(
            "--concurrency and --threads must be at least 1",
        ));
    }
    let backoff = Backoff {
        first: Duration::from_millis(a.retransmit_ms.max(1)),
        max_sends: 4,
    };
    let cfg = config(a.local, a.peer, g, psk, backoff);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.seconds.max(0.0));
    let limit = std::sync::Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..a.threads)
        .map(|_| {
            let sock = PktinfoSocket::bind(SocketAddr::new(a.local, 0), 0)?;
            let cfg = cfg.clone();
            let limit = limit.clone();
            let run = Run {
                peer: SocketAddr::new(a.peer, 500),
                concurrency: a.concurrency,
                count: a.count,
                keep: a.keep,
                end,
                drain: Duration::from_secs_f64(a.drain_seconds.max(0.0)),
            };
            Ok(std::thread::spawn(move || run.go(&sock, &cfg, &limit)))
        })
        .collect::<io::Result<_>>()?;
    let mut total = Counts::default();
    for h in handles {
        match h.join() {
            Ok(Ok(c)) => total.add(&c),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("a thread panicked")),
        }
    }
    // With --count the window ends when the count is reached.
    let secs = if a.count > 0 {
        start.elapsed().as_secs_f64().min(a.seconds)
    } else {
        a.seconds
    };
    let all = total.established + total.late;
    println!(
        "established={} rate={:.1} seconds={:.3} late={} failed={} deleted={} cookies={} retransmits={} stray={} unfinished={} mean_ms={:.2}",
        total.established,
        total.established as f64 / secs.max(1e-9),
        secs,
        total.late,
        total.failed,
        total.deleted,
        total.cookies,
        total.retransmits,
        total.stray,
        total.unfinished,
        if all > 0 {
            total.latency_us as f64 / all as f64 / 1000.0
        } else {
            0.0
        }
    );
    Ok(())
}

struct Run {
    peer: SocketAddr,
    concurrency: usize,
    count: u64,
    keep: bool,
    end: Instant,
    drain: Duration,
}

impl Run {
    /// Whether a new exchange may start: inside the window, and (with `--count`) while
    /// fewer than that many were established or are under way.
    fn open(&self, now: Instant, limit: &AtomicU64, in_flight: u64) -> bool {
        now < self.end && (self.count == 0 || limit.load(Relaxed) + in_flight < self.count)
    }

    fn go(&self, sock: &PktinfoSocket, cfg: &IkeConfig, limit: &AtomicU64) -> io::Result<Counts> {
        let path = Path {
            local: sock.local_addr()?,
            remote: self.peer,
        };
        let mut rng = OsRandom::default();
        let mut c = Counts::default();
        let mut slots: HashMap<[u8; 8], (Slot, Instant)> = HashMap::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            let now = Instant::now();
            // Keep every slot busy while the window is open.
            while slots.len() < self.concurrency && self.open(now, limit, in_flight(&slots)) {
                let s = ExpectSaInitResp::start(cfg.clone(), path, now, &mut rng)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                let spi = header_spi_i(s.request());
                send(sock, s.request(), self.peer);
                slots.insert(spi, (Slot::Init(s), now));
            }
            if slots.is_empty() && !self.open(now, limit, 0) {
                break;
            }
            if now >= self.end + self.drain {
                c.unfinished += slots.len() as u64;
                break;
            }
            // Retransmissions and timeouts.
            let due: Vec<[u8; 8]> = slots
                .iter()
                .filter(|(_, (s, _))| s.deadline().is_some_and(|d| d <= now))
                .map(|(k, _)| *k)
                .collect();
            for k in due {
                let Some((slot, t0)) = slots.remove(&k) else {
                    continue;
                };
                let (slot, resend, dead) = retransmit(slot, now);
                if let Some(m) = resend {
                    c.retransmits += 1;
                    send(sock, &m, self.peer);
                }
                if dead {
                    c.failed += 1;
                } else if let Some(s) = slot {
                    slots.insert(k, (s, t0));
                }
            }
            let next = slots
                .values()
                .filter_map(|(s, _)| s.deadline())
                .min()
                .into_iter()
                .chain([self.end, self.end + self.drain])
                .filter(|&d| d > now)
                .min();
            let timeout = next
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(100))
                .min(Duration::from_millis(100));
            {
                let mut fds = [PollFd::new(sock, PollFlags::IN)];
                ipsec_sys::poll(&mut fds, Some(timeout))?;
            }
            loop {
                let r = match sock.recv(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                };
                let msg = buf.get(..r.len).unwrap_or_default();
                let spi = header_spi_i(msg);
                let Some((slot, t0)) = slots.remove(&spi) else {
                    c.stray += 1;
                    continue;
                };
                let now = Instant::now();
                match slot {
                    Slot::Init(s) => match s.handle(msg, now, &mut rng) {
                        Step::Stay {
                            state,
                            reply,
                            dropped,
                        } => {
                            if let Some(m) = reply {
                                c.cookies += u64::from(classify(msg) == Kind::Cookie);
                                send(sock, &m, self.peer);
                            }
                            if dropped.is_some() {
                                c.stray += 1;
                            }
                            slots.insert(spi, (Slot::Init(state), t0));
                        }
                        Step::Next { state, reply } => {
                            if let Some(m) = reply {
                                send(sock, &m, self.peer);
                            }
                            slots.insert(spi, (Slot::Auth(state), t0));
                        }
                        Step::Failed { error, .. } => {
                            c.failed += 1;
                            eprintln!("ikev2-load: IKE_SA_INIT failed: {error}");
                        }
                    },
                    Slot::Auth(s) => match s.handle(msg) {
                        Step::Stay { state, .. } => {
                            c.stray += 1;
                            slots.insert(spi, (Slot::Auth(state), t0));
                        }
                        Step::Next { state, .. } => {
                            if now <= self.end {
                                c.established += 1;
                                limit.fetch_add(1, Relaxed);
                            } else {
                                c.late += 1;
                            }
                            c.latency_us += now.duration_since(t0).as_micros() as u64;
                            if !self.keep {
                                let mut est = Box::new(state);
                                match est.delete_ike(now, &mut rng) {
                                    Ok(m) => {
                                        send(sock, &m, self.peer);
                                        slots.insert(spi, (Slot::Deleting(est), t0));
                                    }
                                    Err(e) => eprintln!("ikev2-load: delete: {e}"),
                                }
                            }
                        }
                        Step::Failed { error, .. } => {
                            c.failed += 1;
                            eprintln!("ikev2-load: IKE_AUTH failed: {error}");
                        }
                    },
                    Slot::Deleting(mut est) => match est.handle(msg, &mut rng) {
                        Ok(o) => {
                            if let Some(m) = o.reply {
                                send(sock, &m, self.peer);
                            }
                            if matches!(o.event, Some(Event::IkeDeleted)) || est.is_closed() {
                                c.deleted += 1;
                            } else {
                                slots.insert(spi, (Slot::Deleting(est), t0));
                            }
                        }
                        Err(_) => {
                            c.stray += 1;
                            slots.insert(spi, (Slot::Deleting(est), t0));
                        }
                    },
                }
            }
        }
        Ok(c)
    }
}

/// Exchanges of `slots` not established yet.
fn in_flight(slots: &HashMap<[u8; 8], (Slot, Instant)>) -> u64 {
    slots
        .values()
        .filter(|(s, _)| !matches!(s, Slot::Deleting(_)))
        .count() as u64
}

/// A slot whose retransmission time came: (the slot, unless it timed out; the message
/// to send again; whether it timed out).
fn retransmit(slot: Slot, now: Instant) -> (Option<Slot>, Option<Vec<u8>>, bool) {
    match slot {
        Slot::Init(mut s) => match s.handle_timeout(now) {
            Ok(r) => {
                let r = r.map(<[u8]>::to_vec);
                (Some(Slot::Init(s)), r, false)
            }
            Err(_) => (None, None, true),
        },
        Slot::Auth(mut s) => match s.handle_timeout(now) {
            Ok(r) => {
                let r = r.map(<[u8]>::to_vec);
                (Some(Slot::Auth(s)), r, false)
            }
            Err(_) => (None, None, true),
        },
        Slot::Deleting(mut s) => match s.handle_timeout(now) {
            Ok(r) => (Some(Slot::Deleting(s)), r, false),
            Err(_) => (None, None, true),
        },
    }
}

fn header_spi_i(msg: &[u8]) -> [u8; 8] {
    Header::parse(msg).map_or([0; 8], |(h, _, _)| h.spi_i)
}

fn send(sock: &PktinfoSocket, msg: &[u8], to: SocketAddr) {
    if let Err(e) = sock.send_to(msg, to) {
        eprintln!("ikev2-load: send to {to}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// flood

fn parse_v4_prefix(s: &str) -> io::Result<(u32, u32)> {
    let bad = || io::Error::other(format!("--sources {s:?}: expected an IPv4 prefix ADDR/LEN"));
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let l: u32 = l.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&l) {
        return Err(io::Error::other("--sources: prefix length 8 to 30"));
    }
    let mask = u32::MAX << (32 - l);
    Ok((u32::from(a) & mask, 1u32 << (32 - l)))
}

/// The answers to the flood, by kind.
struct Answers {
    sock: PktinfoSocket,
    start: Instant,
    full: u64,
    cookie: u64,
    other: u64,
    /// Full answers after the first COOKIE one (the threshold was reached before them).
    full_after_cookie: u64,
    /// When the first COOKIE answer came (seconds into the flood).
    first_cookie_at: Option<f64>,
}

impl Answers {
    /// Counts the answers that come until `until`.
    fn wait_until(&mut self, until: Instant, buf: &mut [u8]) -> io::Result<()> {
        loop {
            loop {
                let r = match self.sock.recv(buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                };
                match classify(buf.get(..r.len).unwrap_or_default()) {
                    Kind::Full => {
                        self.full += 1;
                        self.full_after_cookie += u64::from(self.first_cookie_at.is_some());
                    }
                    Kind::Cookie => {
                        self.cookie += 1;
                        let t = self.start.elapsed().as_secs_f64();
                        self.first_cookie_at.get_or_insert(t);
                    }
                    Kind::Other => self.other += 1,
                }
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let mut fds = [PollFd::new(&self.sock, PollFlags::IN)];
            ipsec_sys::poll(&mut fds, Some(until - now))?;
        }
    }
}

fn flood(a: &FloodArgs) -> io::Result<()> {
    let (base, size) = parse_v4_prefix(&a.sources)?;
    let g = group(a.group)?;
    let peer = SocketAddr::new(a.peer, 500);
    let mut rng = OsRandom::default();
    let psk = Zeroizing::new(b"flood: never authenticates".to_vec());
    let interval = Duration::from_secs_f64(a.seconds.max(0.0) / f64::from(a.count.max(1)));
    let mut buf = vec![0u8; 65_536];
    let (mut sent, mut send_err) = (0u64, 0u64);
    // The answers come back to port 500 of each source address.
    let mut ans = Answers {
        sock: PktinfoSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 500), 0)?,
        start: Instant::now(),
        full: 0,
        cookie: 0,
        other: 0,
        full_after_cookie: 0,
        first_cookie_at: None,
    };
    for i in 0..a.count {
        // Addresses 1.. of the prefix (not its network address), wrapping around.
        let src = IpAddr::V4(Ipv4Addr::from(base + 1 + i % (size - 2)));
        let path = Path {
            local: SocketAddr::new(src, 500),
            remote: peer,
        };
        let cfg = config(src, a.peer, g, psk.clone(), Backoff::default());
        let s = ExpectSaInitResp::start(cfg, path, Instant::now(), &mut rng)
            .map_err(|e| io::Error::other(e.to_string()))?;
        match ans.sock.send_from(s.request(), src, peer) {
            Ok(()) => sent += 1,
            Err(_) => send_err += 1,
        }
        ans.wait_until(ans.start + interval * (i + 1), &mut buf)?;
    }
    let linger = Duration::from_secs_f64(a.linger_seconds.max(0.0));
    ans.wait_until(Instant::now() + linger, &mut buf)?;
    println!(
        "sent={sent} send_errors={send_err} seconds={:.3} full={} cookie={} other={} full_after_first_cookie={} first_cookie_at={}",
        ans.start.elapsed().as_secs_f64(),
        ans.full,
        ans.cookie,
        ans.other,
        ans.full_after_cookie,
        ans.first_cookie_at.map_or("-".to_string(), |t| format!("{t:.3}"))
    );
    Ok(())
}
