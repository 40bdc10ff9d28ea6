//! The data plane: packets from the TUN device go through outbound policy and the ESP/AH
//! engine to the wire; ESP/AH packets from the raw sockets go through the engine and the
//! inbound policy check back into the TUN device.
//!
//! ```text
//!  TUN ──read batch──► PacketKey ─► SPD outbound ─┬─ bypass ─────────────► raw sender (marked, clear)
//!                                                 ├─ drop (reason) ──────► counted
//!                                                 └─ protect ─► SAs? ─yes─► engine.outbound ─► raw sender (marked)
//!                                                                  └─no──► ACQUIRE + queue (bounded per destination)
//!  raw ESP/AH receivers ──read batch──► engine.inbound ─► SPD inbound check ─accept─► TUN
//!                                                                           └─drop──► counted
//! ```
//!
//! One data-plane thread; the shared state is locked once per batch. With `--workers N`
//! (N > 1) the engine runs split in phases: under the lock policy, SA choice, sequence
//! numbers and lifetimes outbound, SA lookup and the cheap replay check inbound, in packet
//! order; the AEAD seals and opens then run on N - 1 crypto threads plus this one without
//! the lock ([`crate::cryptopool`]); inbound packets go through the engine once more under
//! the lock in packet order (replay window, counters, policy check). Packets are emitted in
//! the order they were read, so an SA's packets leave in sequence-number order either way.
//! The daemon's own packets carry
//! the firewall mark so that policy routing sends them to the wire, not back into the TUN
//! device.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipsec_core::engine::{CryptoDone, CryptoJob};
use ipsec_core::spd::choose_sas;
use ipsec_core::spd::{Basis, Dir, Inbound, Outbound, PacketKey, Protection, TunnelId};
use ipsec_core::{Engine, Mode, PacketBuf, Proto, SaId};
use ipsec_pfkey::engine::{AcquireNeed, AcquireOutcome, AcquireRequest};
use ipsec_pfkey::wire::{Address, Comb, Proposal};
use ipsec_sys::raw::{RawRecv, RawSocket};
use ipsec_sys::tun::Tun;
use ipsec_sys::udp::PktinfoSocket;
use ipsec_sys::{PollFd, PollFlags};

use crate::core::{lock, Core, Shared};
use crate::gso;
use crate::log;
use crate::logger::{self, record::stage, record::Dir as LogDir};
use crate::netsetup::{self, NetSetup};
use crate::nft;
use crate::server::now;

/// NFLOG group of the nftables drop records (cleartext dropped by policy).
pub const NFLOG_GROUP: u16 = 1500;
/// Packets read per device per turn.
const BATCH: usize = 64;
/// Largest packet handled (TUN MTU plus room for encapsulation stays below this).
const MAX_PACKET: usize = 9000;

/// Data-plane settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// TUN device name (`%d` lets the kernel number it).
    pub tun_name: String,
    /// Firewall mark of the daemon's own packets.
    pub mark: u32,
    /// Packets queued per destination while an ACQUIRE is pending.
    pub acquire_queue: usize,
    /// Routing table of protected destinations.
    pub table: u32,
    /// Priority of the policy-routing rules.
    pub rule_priority: u32,
    /// MTU of the TUN device.
    pub mtu: u32,
    /// TUN offloads (the kernel hands over TCP super-packets that ipsecd segments).
    pub offload: bool,
    /// UDP offloads for NAT-T: runs of ESP-in-UDP sent with UDP GSO, received with GRO.
    pub udp_offload: bool,
    /// The outer endpoints of named tunnels (`--tunnel`), for the ACQUIREs of their policy.
    pub tunnel_ends: Vec<crate::iptun::TunnelEnds>,
    /// Seconds without traffic after which an SA's key schedules are released (built
    /// again on the next packet); checked every quarter of it, at most every 30 s.
    pub key_idle: u64,
    /// Path MTU toward the peers: a packet that would exceed it once protected is answered
    /// with ICMP "fragmentation needed" / "packet too big" toward its sender.
    pub path_mtu: usize,
    /// UDP port of NAT-T (RFC 3948; 4500), or 0 for no NAT-T socket.
    pub natt_port: u16,
    /// Threads running the AEAD crypto of a batch, the data-plane thread included (see
    /// [`crate::cryptopool`]); 1: all of it on the data-plane thread, in one phase.
    pub workers: usize,
}

/// Counters of the data plane, by name (packets).
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    /// Adds `n` to counter `name` (for the other threads' counts, such as the relay's).
    pub fn add(&self, name: &'static str, n: u64) {
        *self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_insert(0) += n;
    }

    /// A copy of every counter, with the policy logger's (`log_*`) and the nftables
    /// table's drops of cleartext (by direction, reason and rule) when the table is loaded.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut m: BTreeMap<String, u64> = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        for (k, v) in logger::counters() {
            m.insert(k.to_string(), v);
        }
        if let Ok(drops) = nft::counters() {
            for d in drops {
                m.insert(
                    format!("clear_drop_{}_{}_rule_{}", d.dir, d.reason, d.rule),
                    d.packets,
                );
            }
        }
        m
    }
}

/// A running data plane.
pub struct Handle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Its counters.
    pub counters: Arc<Counters>,
    /// The TUN device's name.
    pub tun_name: String,
    /// The server thread's end of the NAT-T IKE relay (when NAT-T is on), for
    /// [`Server::set_ike_relay`](crate::server::Server::set_ike_relay).
    pub ike: Option<crate::relay::Port>,
}

impl Handle {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Plane {
    core: Core,
    cfg: Config,
    tun: Tun,
    rx: Vec<RawSocket>,
    tx4: RawSocket,
    tx6: RawSocket,
    engine: Engine,
    waker: UnixStream,
    counters: Arc<Counters>,
    pending: HashMap<IpAddr, VecDeque<PacketBuf>>,
    pending_gen: u64,
    pool: Vec<PacketBuf>,
    net: Option<NetSetup>,
    /// The SPD generation and tunables the routes and nft table follow.
    spd_gen: Option<(u64, ipsec_core::spd::Tunables)>,
    /// The tunnels the policy names (numbered by the SPD), tried for packets no host rule
    /// decides: a packet enters the first tunnel whose policy has a rule for it.
    tunnels: Vec<TunnelId>,
    natt: Vec<PktinfoSocket>,
    /// Where IKE (non-ESP marker) received on the NAT-T sockets goes.
    ike: Option<crate::relay::Feed>,
    next_keepalive: std::time::Instant,
    last_keepalive: Option<std::time::Instant>,
    /// The read buffer of offloaded TUN super-packets.
    big: Vec<u8>,
    /// The write buffer of coalesced packets.
    scratch: Vec<u8>,
    /// Where segments of TUN super-packets are built.
    seg_buf: Vec<u8>,
    /// Whether this daemon loaded the nftables table (removed on clean shutdown).
    nft_installed: bool,
    /// The read buffer of (GRO-merged) NAT-T datagrams.
    natt_buf: Vec<u8>,
    /// Counts not yet published to `counters`.
    local_counts: HashMap<&'static str, u64>,
    /// The last outbound flow and its SAs, valid within one batch.
    flow_memo: Option<(PacketKey, Bundle)>,
    /// SAs this data plane has used since the last key sweep (the only ones that can hold
    /// key schedules).
    keyed_ids: std::collections::HashSet<SaId>,
    /// The SA of the last inbound packet (to skip repeated inserts into `keyed_ids`).
    last_in_sa: Option<SaId>,
    next_key_sweep: std::time::Instant,
    /// Crypto workers (`workers` > 1): the engine runs split in phases around them.
    crypto: Option<crate::cryptopool::CryptoPool>,
    /// The seal `protect` deferred for the packet it just handled (split engine only).
    seal_job: Option<CryptoJob>,
}

/// The SAs applied to an outbound packet (innermost first), held without allocating.
#[derive(Clone, Copy, Debug)]
struct Bundle {
    ids: [SaId; 2],
    n: usize,
}

impl Bundle {
    /// From what `choose_sas` returned (it always names at least one SA).
    fn of(ids: [Option<SaId>; 2]) -> Option<Self> {
        match ids {
            [Some(a), Some(b)] => Some(Self { ids: [a, b], n: 2 }),
            [Some(a), None] | [None, Some(a)] => Some(Self { ids: [a, a], n: 1 }),
            [None, None] => None,
        }
    }

    fn ids(&self) -> &[SaId] {
        self.ids.get(..self.n).unwrap_or_default()
    }
}

enum Send {
    Wire(PacketBuf),
    Tun(PacketBuf),
    Queued,
    Dropped,
}

/// Opens the TUN device and the sockets and starts the data-plane thread. `waker` is
/// written to whenever the key engine has PF_KEY messages to deliver (ACQUIREs).
pub fn start(core: Core, cfg: Config, waker: UnixStream) -> io::Result<Handle> {
    let tun = if cfg.offload {
        Tun::open_offload(&cfg.tun_name, false)?
    } else {
        Tun::open(&cfg.tun_name, false)?
    };
    tun.set_nonblocking(true)?;
    let mut rx = Vec::new();
    for (v6, proto) in [(false, 50), (false, 51), (true, 50), (true, 51)] {
        match RawSocket::receiver(v6, proto) {
            Ok(s) => {
                s.set_nonblocking(true)?;
                rx.push(s);
            }
            // A host without IPv6 still runs IPv4.
            Err(e) if v6 => log::info(format_args!("no IPv6 raw socket for protocol {proto}: {e}")),
            Err(e) => return Err(e),
        }
    }
    let mut natt = Vec::new();
    if cfg.natt_port != 0 {
        for a in [
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        ] {
            match PktinfoSocket::bind(std::net::SocketAddr::new(a, cfg.natt_port), cfg.mark) {
                Ok(s) => {
                    if cfg.udp_offload {
                        if let Err(e) = s.set_gro(true) {
                            log::info(format_args!("no UDP receive offload on NAT-T: {e}"));
                        }
                    }
                    natt.push(s)
                }
                Err(e) if a.is_ipv6() => log::info(format_args!("no IPv6 NAT-T socket: {e}")),
                Err(e) => return Err(e),
            }
        }
    }
    let (ike_feed, ike) = if natt.is_empty() {
        (None, None)
    } else {
        let clones = natt
            .iter()
            .map(PktinfoSocket::try_clone)
            .collect::<io::Result<Vec<_>>>()?;
        let (f, p) = crate::relay::channel(clones, cfg.natt_port);
        (Some(f), Some(p))
    };
    let tx4 = RawSocket::sender(false, cfg.mark)?;
    let tx6 = RawSocket::sender(true, cfg.mark)?;
    waker.set_nonblocking(true)?;
    let net = NetSetup::up(netsetup::Config {
        tun: tun.name().to_string(),
        mark: cfg.mark,
        table: cfg.table,
        priority: cfg.rule_priority,
        mtu: cfg.mtu,
    })?;
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The nftables table's drops of cleartext reach the policy logger through NFLOG.
    if let Err(e) = logger::nflog::spawn(NFLOG_GROUP, Arc::clone(&counters), Arc::clone(&stop)) {
        log::error(format_args!(
            "NFLOG group {NFLOG_GROUP}: {e}; the nftables table's drops are counted, not logged"
        ));
    }
    let tun_name = tun.name().to_string();
    let cfg_key_idle = cfg.key_idle;
    crate::cryptopool::request(cfg.workers.max(1)).map_err(io::Error::other)?;
    let crypto = match cfg.workers {
        0 | 1 => None,
        n => Some(crate::cryptopool::CryptoPool::new(n - 1)?),
    };
    let mut plane = Plane {
        core,
        cfg,
        tun,
        rx,
        tx4,
        tx6,
        engine: Engine::new(),
        waker,
        counters: Arc::clone(&counters),
        pending: HashMap::new(),
        pending_gen: 0,
        pool: Vec::new(),
        net: Some(net),
        spd_gen: None,
        tunnels: Vec::new(),
        natt,
        ike: ike_feed,
        next_keepalive: std::time::Instant::now(),
        last_keepalive: None,
        big: Vec::new(),
        scratch: Vec::new(),
        seg_buf: Vec::new(),
        nft_installed: false,
        natt_buf: Vec::new(),
        local_counts: HashMap::new(),
        flow_memo: None,
        keyed_ids: std::collections::HashSet::new(),
        last_in_sa: None,
        next_key_sweep: std::time::Instant::now() + key_sweep(cfg_key_idle),
        crypto,
        seal_job: None,
    };
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("dataplane".into())
        .spawn(move || plane.run(&stop2))?;
    Ok(Handle {
        stop,
        thread: Some(thread),
        counters,
        tun_name,
        ike,
    })
}

impl Plane {
    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.sync_routes();
            self.sync_workers();
            let mut ready = [false; 8];
            {
                let mut fds = Vec::with_capacity(8);
                fds.push(PollFd::new(&self.tun, PollFlags::IN));
                for s in &self.rx {
                    fds.push(PollFd::new(s, PollFlags::IN));
                }
                for s in &self.natt {
                    fds.push(PollFd::new(s, PollFlags::IN));
                }
                if let Err(e) = ipsec_sys::poll(&mut fds, Some(Duration::from_millis(200))) {
                    log::error(format_args!("data plane poll: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                for (r, f) in ready.iter_mut().zip(fds.iter()) {
                    *r = !f.revents().is_empty();
                }
            }
            if ready[0] {
                self.read_tun();
            }
            for i in 0..self.rx.len() {
                if ready.get(i + 1).copied().unwrap_or(false) {
                    self.read_wire(i);
                }
            }
            for i in 0..self.natt.len() {
                if ready.get(i + 1 + self.rx.len()).copied().unwrap_or(false) {
                    self.read_natt(i);
                }
            }
            self.retry_pending();
            self.keepalives();
            self.release_idle_keys();
            self.flush_counters();
        }
        if let Some(n) = self.net.take() {
            n.down();
        }
        if self.nft_installed {
            if let Err(e) = nft::remove() {
                log::error(format_args!("removing the nftables table: {e}"));
            }
        }
    }

    /// Brings the routes in line with the policy after it changed.
    /// Follows the number of crypto threads asked for (`workers N` on the control socket).
    fn sync_workers(&mut self) {
        let want = crate::cryptopool::wanted();
        if want == self.crypto.as_ref().map_or(1, |p| p.threads()) {
            return;
        }
        self.crypto = None;
        if want > 1 {
            match crate::cryptopool::CryptoPool::new(want - 1) {
                Ok(p) => self.crypto = Some(p),
                Err(e) => {
                    log::error(format_args!("starting {} crypto threads: {e}", want - 1));
                    let _ = crate::cryptopool::request(1);
                }
            }
        }
        log::info(format_args!(
            "data plane crypto on {} thread(s)",
            self.crypto.as_ref().map_or(1, |p| p.threads())
        ));
    }

    fn sync_routes(&mut self) {
        let core = Arc::clone(&self.core);
        let nft_guard = crate::persock::nft_guard();
        let mut g = lock(&core);
        let gen = (g.spd.generation(), *g.spd.tunables());
        if self.spd_gen == Some(gen) {
            return;
        }
        let dests = netsetup::destinations(g.spd.policy());
        let names: Vec<String> = g
            .spd
            .policy()
            .tunnel_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        self.tunnels = names.iter().map(|n| g.spd.tunnel_id(n)).collect();
        let table = nft::ruleset(
            g.spd.policy(),
            g.spd.tunables(),
            &nft::Config {
                tun: self.tun.name().to_string(),
                mark: self.cfg.mark,
                log_group: Some(NFLOG_GROUP),
            },
        )
        .map(|t| t + &g.persock.nft_elements());
        drop(g);
        self.spd_gen = Some(gen);
        if let Some(n) = &mut self.net {
            n.sync(&dests);
        }
        // Cleartext that policy protects is dropped by the kernel before any application
        // sees it (inbound), and cannot leave except through ipsecd (outbound), also while
        // ipsecd is not running.
        match table.and_then(|t| nft::install(&t)) {
            Ok(()) => {
                self.nft_installed = true;
                log::info(format_args!("nftables table inet ironswan loaded"));
            }
            Err(e) => {
                self.count("nft_load_error", 1);
                log::error(format_args!("nftables: {e}"));
            }
        }
        drop(nft_guard);
    }

    /// Counts locally; [`flush_counters`](Self::flush_counters) publishes once per batch,
    /// so the per-packet path takes no lock for its counters.
    fn count(&mut self, name: &'static str, n: u64) {
        *self.local_counts.entry(name).or_insert(0) += n;
    }

    fn flush_counters(&mut self) {
        if self.local_counts.is_empty() {
            return;
        }
        let mut m = self
            .counters
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (k, v) in self.local_counts.drain() {
            *m.entry(k).or_insert(0) += v;
        }
    }

    fn buf(&mut self) -> PacketBuf {
        self.pool
            .pop()
            .unwrap_or_else(|| PacketBuf::with_mtu(MAX_PACKET))
    }

    fn recycle(&mut self, b: PacketBuf) {
        if self.pool.len() < 4 * BATCH {
            self.pool.push(b);
        }
    }

    fn read_tun(&mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        if self.tun.offload() {
            self.read_tun_offload(&mut batch);
        } else {
            for _ in 0..BATCH {
                let mut b = self.buf();
                match self.tun.recv(b.read_slot()) {
                    Ok(n) => {
                        b.set_len(n);
                        batch.push(b);
                    }
                    Err(e) => {
                        self.recycle(b);
                        if e.kind() != io::ErrorKind::WouldBlock {
                            log::error(format_args!("reading {}: {e}", self.tun.name()));
                        }
                        break;
                    }
                }
            }
        }
        if batch.is_empty() {
            return;
        }
        self.count("tun_in", batch.len() as u64);
        let now_s = now().0;
        let mut sends = Vec::with_capacity(batch.len());
        let mut jobs = Vec::new();
        let mut woke = false;
        {
            let core = Arc::clone(&self.core);
            let mut g = lock(&core);
            // A new lock hold: policy or SAs may have changed since the last batch.
            self.flow_memo = None;
            for b in batch {
                let s = self.outbound(&mut g, b, now_s, &mut woke);
                if let Some(j) = self.seal_job.take() {
                    jobs.push((sends.len(), j));
                }
                sends.push(s);
            }
        }
        self.seal_deferred(&mut sends, jobs);
        let queued = sends.iter().filter(|s| matches!(s, Send::Queued)).count();
        if queued > 0 {
            self.count("out_queued_acquire", queued as u64);
        }
        if woke {
            self.wake();
        }
        self.emit_batch(sends);
    }

    /// Reads super-packets (virtio-net header + up to 64 KiB) and cuts them into segments
    /// until about a batch of packets is ready.
    fn read_tun_offload(&mut self, batch: &mut Vec<PacketBuf>) {
        let mut big = std::mem::take(&mut self.big);
        big.resize(gso::VNET_HDR_LEN + 65_536, 0);
        for _ in 0..BATCH {
            if batch.len() >= BATCH {
                break;
            }
            let n = match self.tun.recv(&mut big) {
                Ok(n) => n,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        log::error(format_args!("reading {}: {e}", self.tun.name()));
                    }
                    break;
                }
            };
            self.count("tun_reads", 1);
            let Some(h) = gso::VnetHdr::parse(&big) else {
                self.count("tun_gso_malformed", 1);
                continue;
            };
            let Some(pkt) = big.get_mut(gso::VNET_HDR_LEN..n) else {
                self.count("tun_gso_malformed", 1);
                continue;
            };
            let pool = &mut self.pool;
            let r = gso::segments(&h, pkt, &mut self.seg_buf, |seg| {
                let mut b = pool
                    .pop()
                    .unwrap_or_else(|| PacketBuf::with_mtu(MAX_PACKET));
                if b.set_packet(seg).is_ok() {
                    batch.push(b);
                }
            });
            if let Err(e) = r {
                self.count(e.name(), 1);
            }
        }
        self.big = big;
    }

    /// Applies the SA bundle `ids` to an outbound packet (or answers it with ICMP "too big"
    /// when it would exceed the path MTU once protected).
    fn protect(&mut self, g: &mut Shared, mut b: PacketBuf, ids: &[SaId], now_s: u64) -> Send {
        let overhead = Engine::overhead(g.keys.sadb(), ids, b.data());
        if b.len() + overhead > self.cfg.path_mtu {
            // Too big once protected: tell the sender the size that fits (RFC 4301 §8:
            // PMTU with IPsec overhead), unless IPv4 without DF, which the kernel would
            // fragment before the TUN device.
            let fits = self.cfg.path_mtu.saturating_sub(overhead);
            self.count("out_too_big", 1);
            let spi = spi_of(g, ids.first().copied());
            logger::drop_event(
                LogDir::Out,
                ipsec_core::DropReason::TooBig.name(),
                None,
                spi,
                stage::OUT_ENGINE,
                b.data(),
            );
            return match too_big(b.data(), fits) {
                Some(icmp) => {
                    let _ = b.set_packet(&icmp);
                    Send::Tun(b)
                }
                None => Send::Dropped,
            };
        }
        let r = if self.crypto.is_some() {
            // Split engine: the seal waits for the crypto workers (see `seal_deferred`).
            self.engine
                .outbound_split(g.keys.sadb_mut(), ids, &mut b, now_s)
                .map(|j| self.seal_job = j)
        } else {
            self.engine.outbound(g.keys.sadb_mut(), ids, &mut b, now_s)
        };
        match r {
            Ok(()) => {
                self.count("out_protected", 1);
                Send::Wire(b)
            }
            Err(r) => {
                self.count(r.name(), 1);
                let spi = spi_of(g, ids.first().copied());
                logger::drop_event(
                    LogDir::Out,
                    r.name(),
                    None,
                    spi,
                    stage::OUT_ENGINE,
                    b.data(),
                );
                Send::Dropped
            }
        }
    }

    fn outbound(&mut self, g: &mut Shared, b: PacketBuf, now_s: u64, woke: &mut bool) -> Send {
        if link_scope_multicast(b.data()) {
            // The kernel's own housekeeping on the TUN link (MLD reports once IPv6
            // forwarding is on): no route of ours sent it here, and bypassing it would
            // send it out of another link.
            self.count("tun_link_scope", 1);
            return Send::Dropped;
        }
        let mut key = match PacketKey::from_ip_packet(b.data(), Dir::Out) {
            Ok(k) => k,
            Err(pd) => {
                self.count(pd.name(), 1);
                logger::drop_event(LogDir::Out, pd.name(), None, None, stage::OUT_KEY, b.data());
                return Send::Dropped;
            }
        };
        key.socket = g.persock.lookup(&key);
        // The segments of one TCP super-packet (and most of a batch) share their flow:
        // within a batch (one lock hold, so policy and SAs cannot change) the previous
        // packet's decision is reused.
        if let Some((k, bundle)) = self.flow_memo {
            if k == key {
                return self.protect(g, b, bundle.ids(), now_s);
            }
        }
        let first_key = key;
        let mut d = g.spd.outbound(&key);
        if d.basis == Basis::NoPolicy && !self.tunnels.is_empty() {
            for t in &self.tunnels {
                let mut k = key;
                k.tunnel = Some(*t);
                let dt = g.spd.outbound(&k);
                if dt.basis == Basis::Rule {
                    key = k;
                    d = dt;
                    break;
                }
            }
        }
        let rule = d.policy.and_then(|p| p.source.rule_index());
        let tunnel_rule = d
            .policy
            .and_then(|p| p.source.tunnel().zip(p.source.rule_index()));
        match d.verdict {
            Outbound::Bypass => {
                self.count("out_bypass", 1);
                Send::Wire(b)
            }
            Outbound::Drop(pd) => {
                self.count(pd.name(), 1);
                logger::drop_event(LogDir::Out, pd.name(), rule, None, stage::OUT_SPD, b.data());
                log::debug(format_args!(
                    "outbound {} -> {} proto {} dropped: {}",
                    key.src,
                    key.dst,
                    key.proto,
                    pd.name()
                ));
                Send::Dropped
            }
            Outbound::Protect { bundles, mode } => {
                match choose_sas(bundles, mode, &key, g.keys.sadb()) {
                    Some((_, ids)) => match Bundle::of(ids) {
                        Some(bundle) => {
                            self.flow_memo = Some((first_key, bundle));
                            self.keyed_ids.extend(bundle.ids().iter().copied());
                            self.protect(g, b, bundle.ids(), now_s)
                        }
                        None => {
                            self.count("sadb_empty_bundle", 1);
                            logger::drop_event(
                                LogDir::Out,
                                "sadb_empty_bundle",
                                rule,
                                None,
                                stage::OUT_SA,
                                b.data(),
                            );
                            Send::Dropped
                        }
                    },
                    None => {
                        let first = bundles.first().copied().unwrap_or_default();
                        let mut req = acquire_request(&first, mode, &key, &g.props);
                        req.proposal = alternatives(bundles, req.need.proto, &g.props);
                        if let (Some((t, i)), Mode::Tunnel, false) =
                            (tunnel_rule, mode, first.self_encap)
                        {
                            let sel = g.spd.policy().rules.get(i).map(|r| r.selector);
                            let ends = g
                                .spd
                                .tunnel_name(t)
                                .and_then(|n| crate::iptun::ends_of(&self.cfg.tunnel_ends, n));
                            if let Some(sel) = sel {
                                crate::iptun::tunnel_acquire(&mut req, &sel, ends, key.src);
                            }
                        }
                        match g.keys.acquire(now_s, &req) {
                            AcquireOutcome::Sent { .. } => *woke = true,
                            AcquireOutcome::Suppressed { .. } => {}
                        }
                        let q = self.pending.entry(key.dst).or_default();
                        if q.len() >= self.cfg.acquire_queue {
                            self.count("sadb_acquire_queue_full", 1);
                            logger::drop_event(
                                LogDir::Out,
                                "sadb_acquire_queue_full",
                                rule,
                                None,
                                stage::OUT_SA,
                                b.data(),
                            );
                            Send::Dropped
                        } else {
                            // Counted by read_tun: a retried packet that waits again is
                            // not queued anew.
                            q.push_back(b);
                            Send::Queued
                        }
                    }
                }
            }
        }
    }

    fn read_wire(&mut self, i: usize) {
        let mut bufs: Vec<PacketBuf> = (0..BATCH).map(|_| self.buf()).collect();
        let mut out = [RawRecv {
            len: 0,
            src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        }; BATCH];
        let n = {
            let Some(sock) = self.rx.get(i) else { return };
            let mut slots: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.read_slot()).collect();
            match sock.recv_batch(&mut slots, &mut out) {
                Ok(n) => n,
                Err(e) => {
                    self.count("wire_read_error", 1);
                    log::error(format_args!("reading ESP/AH: {e}"));
                    0
                }
            }
        };
        let mut batch = Vec::with_capacity(n);
        for (k, mut b) in bufs.into_iter().enumerate() {
            match out.get(k) {
                Some(r) if k < n => {
                    b.set_len(r.len);
                    batch.push(b);
                }
                _ => self.recycle(b),
            }
        }
        if batch.is_empty() {
            return;
        }
        self.count("wire_in", batch.len() as u64);
        self.inbound(batch.into_iter().map(|b| (b, None)).collect());
    }

    /// Reads ESP-in-UDP datagrams from NAT-T socket `i` and rebuilds each as the IP/UDP
    /// packet the engine expects; keepalives are counted, IKE (non-ESP marker) goes to the
    /// relays of the server thread (see [`crate::relay`]), or is counted as dropped when
    /// none is connected.
    fn read_natt(&mut self, i: usize) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut big = std::mem::take(&mut self.natt_buf);
        big.resize(65_536, 0);
        let v6 = self.natt.get(i).is_some_and(|s| s.is_ipv6());
        let hl = if v6 { 48 } else { 28 };
        // The rebuilt header names port 4500, where the engine recognises ESP in UDP
        // (RFC 3948), whatever port the socket listens on: everything arriving here is
        // UDP-encapsulated ESP.
        let port = ipsec_core::engine::NATT_PORT;
        let mut woke = false;
        while batch.len() < BATCH {
            let Some(sock) = self.natt.get(i) else { break };
            let r = match sock.recv(&mut big) {
                Ok(r) => r,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        self.count("natt_read_error", 1);
                        if e.kind() == io::ErrorKind::InvalidData {
                            continue;
                        }
                        log::error(format_args!("reading NAT-T: {e}"));
                    }
                    break;
                }
            };
            // With receive offload, one read may hold a run of datagrams of `seg` bytes.
            let data = big.get(..r.len).unwrap_or_default();
            let seg = r.seg.unwrap_or(r.len).max(1);
            for p in data.chunks(seg) {
                if p == [0xff] {
                    self.count("natt_keepalive_in", 1);
                    continue;
                }
                if let Some(ike) = p.strip_prefix(&crate::relay::NON_ESP_MARKER) {
                    if ike.is_empty() {
                        // A marker with no IKE message after it (RFC 3948 §2.2).
                        self.count("natt_bad_datagram", 1);
                    } else {
                        woke |= self.relay_ike(r.src, r.dst, ike);
                    }
                    continue;
                }
                let mut b = self
                    .pool
                    .pop()
                    .unwrap_or_else(|| PacketBuf::with_mtu(MAX_PACKET));
                let slot = b.read_slot();
                let ok = slot
                    .get_mut(hl..hl + p.len())
                    .map(|d| d.copy_from_slice(p))
                    .is_some()
                    && write_ip_udp(slot, hl, p.len(), r.src, r.dst, port).is_some();
                if !ok {
                    self.count("natt_bad_datagram", 1);
                    self.recycle(b);
                    continue;
                }
                b.set_len(hl + p.len());
                batch.push((b, Some(r.src)));
            }
        }
        self.natt_buf = big;
        if woke {
            self.wake();
        }
        if batch.is_empty() {
            return;
        }
        self.count("natt_in", batch.len() as u64);
        self.inbound(batch);
    }

    /// Hands one IKE message (the marker removed) from `src` to local address `dst` to
    /// the relays; whether the server thread must be woken.
    fn relay_ike(&mut self, src: std::net::SocketAddr, dst: IpAddr, ike: &[u8]) -> bool {
        let Some(feed) = &self.ike else {
            self.count("natt_ike_no_key_manager", 1);
            return false;
        };
        let d = crate::relay::IkeDatagram {
            src,
            dst: std::net::SocketAddr::new(dst, self.cfg.natt_port),
            msg: ike.to_vec(),
        };
        match feed.offer(d) {
            crate::relay::Offer::Queued => true,
            crate::relay::Offer::NoKeyManager => {
                self.count("natt_ike_no_key_manager", 1);
                false
            }
            crate::relay::Offer::Full => {
                self.count("natt_ike_relay_queue_full", 1);
                false
            }
        }
    }

    /// Decapsulates, checks and delivers inbound packets; `peer` is the UDP source of a
    /// NAT-T packet, whose port the outbound SAs to that peer follow if a NAT changed it.
    fn inbound(&mut self, mut batch: Vec<(PacketBuf, Option<std::net::SocketAddr>)>) {
        let now_s = now().0;
        let mut sends = Vec::with_capacity(batch.len());
        let mut opened = self.open_ahead(&mut batch);
        {
            let core = Arc::clone(&self.core);
            let mut g = lock(&core);
            self.engine.padding_check = g.props.get(crate::props::PADDING_CHECK) != 0;
            for (i, (mut b, peer)) in batch.into_iter().enumerate() {
                let sadb = g.keys.sadb_mut();
                let r = match opened.get_mut(i).and_then(Option::take) {
                    Some(d) => self.engine.inbound_opened(sadb, &mut b, now_s, d),
                    None => self.engine.inbound(sadb, &mut b, now_s),
                };
                let s = match r {
                    Ok(ok) => {
                        for id in ok.sa_ids() {
                            if self.last_in_sa != Some(id) {
                                self.keyed_ids.insert(id);
                                self.last_in_sa = Some(id);
                            }
                        }
                        if let (true, Some(p)) = (ok.natt, peer) {
                            self.follow_natt_port(&mut g, p);
                        }
                        match PacketKey::from_ip_packet(b.data(), Dir::In) {
                            Ok(mut key) => {
                                key.socket = g.persock.lookup(&key);
                                let mut d = g.spd.inbound_protected(&key, &ok, g.keys.sadb());
                                if ok.tunnel && d.verdict != Inbound::Accept {
                                    // A tunnel-mode packet leaves the tunnel whose policy
                                    // accepts it.
                                    for t in &self.tunnels {
                                        key.tunnel = Some(*t);
                                        let dt = g.spd.inbound_protected(&key, &ok, g.keys.sadb());
                                        if dt.verdict == Inbound::Accept {
                                            d = dt;
                                            break;
                                        }
                                    }
                                }
                                match d.verdict {
                                    Inbound::Accept => {
                                        self.count("in_accepted", 1);
                                        Send::Tun(b)
                                    }
                                    Inbound::Drop(pd) => {
                                        self.count(pd.name(), 1);
                                        let rule = d.policy.and_then(|p| p.source.rule_index());
                                        let spi = spi_of(&g, ok.sa_ids().next());
                                        logger::drop_event(
                                            LogDir::In,
                                            pd.name(),
                                            rule,
                                            spi,
                                            stage::IN_SPD,
                                            b.data(),
                                        );
                                        Send::Dropped
                                    }
                                }
                            }
                            Err(pd) => {
                                self.count(pd.name(), 1);
                                let spi = spi_of(&g, ok.sa_ids().next());
                                logger::drop_event(
                                    LogDir::In,
                                    pd.name(),
                                    None,
                                    spi,
                                    stage::IN_KEY,
                                    b.data(),
                                );
                                Send::Dropped
                            }
                        }
                    }
                    Err(r) => {
                        self.count(r.name(), 1);
                        let st = if peer.is_some() {
                            stage::IN_NATT
                        } else {
                            stage::IN_ENGINE
                        };
                        logger::drop_event(LogDir::In, r.name(), None, None, st, b.data());
                        Send::Dropped
                    }
                };
                sends.push(s);
            }
        }
        if self.tun.offload() {
            self.write_tun_coalesced(sends);
            return;
        }
        for s in sends {
            self.emit(s);
        }
        self.flush_counters();
    }

    /// Split engine, inbound: under the lock the cheap checks of every packet in order
    /// (`inbound_prepare`), then the AEAD opens on the crypto workers without it. Answers
    /// each packet's outcome by its index (empty with one thread: the one-phase engine).
    fn open_ahead(
        &mut self,
        batch: &mut [(PacketBuf, Option<std::net::SocketAddr>)],
    ) -> Vec<Option<CryptoDone>> {
        let Some(pool) = &self.crypto else {
            return Vec::new();
        };
        let jobs: Vec<(usize, CryptoJob)> = {
            let g = lock(&self.core);
            batch
                .iter()
                .enumerate()
                .filter_map(|(i, (b, _))| Some((i, self.engine.inbound_prepare(g.keys.sadb(), b)?)))
                .collect()
        };
        let mut opened: Vec<Option<CryptoDone>> = Vec::new();
        opened.resize_with(batch.len(), || None);
        let n = jobs.len() as u64;
        let (done, elsewhere) = pool.run(batch, jobs, |(b, _)| Some(b));
        self.count_split(n, elsewhere);
        for (i, d) in done {
            if let Some(slot) = opened.get_mut(i) {
                *slot = Some(d);
            }
        }
        opened
    }

    /// Counts split-engine crypto jobs (`crypto_jobs`) and those the workers ran
    /// (`crypto_jobs_on_workers`; the rest ran on the data-plane thread).
    fn count_split(&mut self, jobs: u64, on_workers: usize) {
        if jobs > 0 {
            self.count("crypto_jobs", jobs);
        }
        if on_workers > 0 {
            self.count("crypto_jobs_on_workers", on_workers as u64);
        }
    }

    /// Split engine, outbound: runs the seals `protect` deferred (by the index of their
    /// packet in `sends`) on the crypto workers, outside the lock. A seal cannot fail on the
    /// lengths the engine checked; if one did, its packet is dropped.
    fn seal_deferred(&mut self, sends: &mut [Send], jobs: Vec<(usize, CryptoJob)>) {
        let Some(pool) = &self.crypto else { return };
        if jobs.is_empty() {
            return;
        }
        let n = jobs.len() as u64;
        let (done, elsewhere) = pool.run(sends, jobs, |s| match s {
            Send::Wire(b) => Some(b),
            _ => None,
        });
        self.count_split(n, elsewhere);
        for (i, d) in done {
            if !d.is_ok() {
                if let Some(s) = sends.get_mut(i) {
                    *s = Send::Dropped;
                }
                self.count(ipsec_core::DropReason::EspCryptoFailed.name(), 1);
            }
        }
    }

    /// Writes decrypted packets into the offloading TUN device, merging runs of TCP
    /// segments into GSO packets.
    fn write_tun_coalesced(&mut self, sends: Vec<Send>) {
        let bufs: Vec<PacketBuf> = sends
            .into_iter()
            .filter_map(|s| match s {
                Send::Tun(b) => Some(b),
                _ => None,
            })
            .collect();
        let mut scratch = std::mem::take(&mut self.scratch);
        let tun = &self.tun;
        let mut writes = 0u64;
        let mut errors = 0u64;
        gso::coalesce(bufs.iter().map(|b| b.data()), &mut scratch, |p| {
            match tun.send(p) {
                Ok(()) => writes += 1,
                Err(e) => {
                    errors += 1;
                    log::debug(format_args!("writing {}: {e}", tun.name()));
                }
            }
        });
        self.count("tun_out", bufs.len() as u64);
        self.count("tun_writes", writes);
        if errors > 0 {
            self.count("tun_write_error", errors);
        }
        self.scratch = scratch;
        for b in bufs {
            self.recycle(b);
        }
        self.flush_counters();
    }

    /// RFC 3948: a NAT may change the peer's source port; outbound UDP-encapsulated SAs to
    /// that peer follow the port the peer's packets now come from.
    fn follow_natt_port(&mut self, g: &mut Shared, peer: std::net::SocketAddr) {
        let ids: Vec<SaId> = g
            .keys
            .sadb()
            .iter()
            .filter(|(_, sa)| {
                let c = sa.config();
                c.dst == peer.ip() && c.natt.is_some_and(|n| n.remote_port != peer.port())
            })
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            if let Some(sa) = g.keys.sadb_mut().get_mut(id) {
                if sa.set_natt_remote_port(peer.port()) {
                    self.count("natt_port_changed", 1);
                    log::info(format_args!(
                        "NAT-T: peer {} now uses port {}; SA spi 0x{:08x} follows",
                        peer.ip(),
                        peer.port(),
                        sa.spi()
                    ));
                }
            }
        }
    }

    /// Drops the key schedules of SAs idle for `key_idle` seconds (they are built again on
    /// the next packet), so that memory follows the SAs in use.
    fn release_idle_keys(&mut self) {
        if std::time::Instant::now() < self.next_key_sweep {
            return;
        }
        self.next_key_sweep = std::time::Instant::now() + key_sweep(self.cfg.key_idle);
        let now_s = now().0;
        let core = Arc::clone(&self.core);
        let mut g = lock(&core);
        // Only the SAs this data plane has used can hold key schedules (the SADB keys an
        // SA on first use), so the sweep costs the SAs in use, not every SA.
        let mut idle = Vec::new();
        self.keyed_ids.retain(|id| match g.keys.sadb().get(*id) {
            Some(sa) if sa.is_keyed() => {
                if now_s.saturating_sub(sa.last_use()) >= self.cfg.key_idle {
                    idle.push(*id);
                    false
                } else {
                    true
                }
            }
            _ => false,
        });
        for id in &idle {
            if let Some(sa) = g.keys.sadb_mut().get_mut(*id) {
                sa.release_key_schedule();
            }
        }
        drop(g);
        self.last_in_sa = None;
        if !idle.is_empty() {
            self.count("key_schedules_released", idle.len() as u64);
        }
    }

    /// Sends a NAT keepalive (RFC 3948 §2.3: one 0xFF byte) to the remote end of every
    /// outbound UDP-encapsulated SA whose local side is behind a NAT (`NATT_LOC`, see
    /// [`sends_keepalives`]), every `nat-keepalive-interval` seconds (0: never). The
    /// property is looked at once a second, so a change takes effect within one.
    fn keepalives(&mut self) {
        let now = std::time::Instant::now();
        if self.natt.is_empty() || now < self.next_keepalive {
            return;
        }
        self.next_keepalive = now + Duration::from_secs(1);
        let core = Arc::clone(&self.core);
        let g = lock(&core);
        let every = g.props.get(crate::props::NAT_KEEPALIVE_INTERVAL);
        if every == 0
            || self
                .last_keepalive
                .is_some_and(|t| now < t + Duration::from_secs(every))
        {
            return;
        }
        self.last_keepalive = Some(now);
        let peers: std::collections::BTreeSet<std::net::SocketAddr> = g
            .keys
            .sadb()
            .iter()
            .filter(|(_, sa)| sa.state().usable() && sends_keepalives(sa.config()))
            .filter_map(|(_, sa)| {
                let c = sa.config();
                c.natt
                    .map(|n| std::net::SocketAddr::new(c.dst, n.remote_port))
            })
            .collect();
        drop(g);
        for p in peers {
            // Only peers that are not this host: binding a non-local address fails.
            if std::net::UdpSocket::bind((p.ip(), 0)).is_ok() {
                continue;
            }
            let sock = self.natt.iter().find(|s| s.is_ipv6() == p.is_ipv6());
            if let Some(sock) = sock {
                match sock.send_to(&[0xff], p) {
                    Ok(()) => self.count("natt_keepalive_out", 1),
                    Err(_) => self.count("natt_keepalive_error", 1),
                }
            }
        }
    }

    /// Emits a batch: packets for the wire go out with one `sendmmsg` per family, the rest
    /// one by one.
    fn emit_batch(&mut self, sends: Vec<Send>) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut natt = Vec::new();
        for s in sends {
            match s {
                Send::Wire(b) if self.natt_payload(b.data()).is_some() => natt.push(b),
                Send::Wire(b) if b.data().first().is_some_and(|v| v >> 4 == 6) => v6.push(b),
                Send::Wire(b) => v4.push(b),
                other => self.emit(other),
            }
        }
        if !natt.is_empty() {
            self.send_natt_runs(natt);
        }
        for (bufs, v6) in [(v4, false), (v6, true)] {
            if bufs.is_empty() {
                continue;
            }
            let sock = if v6 { &self.tx6 } else { &self.tx4 };
            let refs: Vec<&[u8]> = bufs.iter().map(|b| b.data()).collect();
            match sock.send_batch(&refs) {
                Ok(n) => {
                    self.count("wire_out", n as u64);
                    if n < refs.len() {
                        self.count("wire_send_error", (refs.len() - n) as u64);
                    }
                }
                Err(e) => {
                    self.count("wire_send_error", refs.len() as u64);
                    log::debug(format_args!("sending to the wire: {e}"));
                }
            }
            drop(refs);
            for b in bufs {
                self.recycle(b);
            }
        }
        self.flush_counters();
    }

    /// For an ESP-in-UDP packet the engine built (IPv4 without options or IPv6 without
    /// extension headers, UDP from our NAT-T port): the offset of the ESP payload, the
    /// destination and the outer TOS / traffic class.
    fn natt_payload(&self, p: &[u8]) -> Option<(usize, std::net::SocketAddr, u8)> {
        if self.natt.is_empty() || !self.cfg.udp_offload {
            return None;
        }
        let (off, dst, tos) = match p.first()? >> 4 {
            4 if *p.first()? == 0x45 && *p.get(9)? == 17 => {
                let d: [u8; 4] = p.get(16..20)?.try_into().ok()?;
                (28, IpAddr::V4(std::net::Ipv4Addr::from(d)), *p.get(1)?)
            }
            6 if *p.get(6)? == 17 => {
                let d: [u8; 16] = p.get(24..40)?.try_into().ok()?;
                let tc = (p.first()? << 4) | (p.get(1)? >> 4);
                (48, IpAddr::V6(std::net::Ipv6Addr::from(d)), tc)
            }
            _ => return None,
        };
        let udp = off - 8;
        let sport = u16::from_be_bytes([*p.get(udp)?, *p.get(udp + 1)?]);
        let dport = u16::from_be_bytes([*p.get(udp + 2)?, *p.get(udp + 3)?]);
        (sport == self.cfg.natt_port && p.len() > off).then_some((
            off,
            std::net::SocketAddr::new(dst, dport),
            tos,
        ))
    }

    /// Sends ESP-in-UDP packets through the NAT-T socket, runs of equal-sized packets to one
    /// peer with one UDP GSO send each (one pass through the stack per run instead of per
    /// packet).
    fn send_natt_runs(&mut self, bufs: Vec<PacketBuf>) {
        let mut i = 0;
        let mut run = Vec::with_capacity(65_536);
        while i < bufs.len() {
            let Some((off, dst, tos)) = bufs.get(i).and_then(|b| self.natt_payload(b.data()))
            else {
                i += 1;
                continue;
            };
            let seg = bufs.get(i).map_or(0, |b| b.len() - off);
            run.clear();
            let mut n = 0;
            while let Some(b) = bufs.get(i) {
                let Some((o, d, t)) = self.natt_payload(b.data()) else {
                    break;
                };
                let len = b.len() - o;
                if d != dst
                    || t != tos
                    || len > seg
                    || n >= ipsec_sys::udp::MAX_SEGMENTS
                    || run.len() + len > 65_000
                {
                    break;
                }
                run.extend_from_slice(b.data().get(o..).unwrap_or_default());
                n += 1;
                i += 1;
                if len < seg {
                    break; // a shorter datagram ends the run
                }
            }
            let sock = self.natt.iter().find(|s| s.is_ipv6() == dst.is_ipv6());
            let r = match (sock, u16::try_from(seg)) {
                (Some(sock), Ok(seg)) => sock.send_segments(&run, seg, tos, dst),
                _ => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no NAT-T socket",
                )),
            };
            match r {
                Ok(()) => {
                    self.count("wire_out", n as u64);
                    self.count("natt_gso_sends", 1);
                }
                Err(e) => {
                    self.count("wire_send_error", n as u64);
                    log::debug(format_args!("sending ESP in UDP to {dst}: {e}"));
                }
            }
        }
        for b in bufs {
            self.recycle(b);
        }
    }

    fn emit(&mut self, s: Send) {
        match s {
            Send::Wire(b) => {
                let v6 = b.data().first().is_some_and(|v| v >> 4 == 6);
                let sock = if v6 { &self.tx6 } else { &self.tx4 };
                match sock.send(b.data()) {
                    Ok(()) => self.count("wire_out", 1),
                    Err(e) => {
                        self.count("wire_send_error", 1);
                        log::debug(format_args!("sending to the wire: {e}"));
                    }
                }
                self.recycle(b);
            }
            Send::Tun(mut b) => {
                if self.tun.offload() {
                    if b.push_front(gso::VNET_HDR_LEN).is_err() {
                        self.count("tun_write_error", 1);
                        self.recycle(b);
                        return;
                    }
                    if let Some(h) = b.data_mut().get_mut(..gso::VNET_HDR_LEN) {
                        h.copy_from_slice(&gso::PLAIN_HDR);
                    }
                }
                match self.tun.send(b.data()) {
                    Ok(()) => self.count("tun_out", 1),
                    Err(e) => {
                        self.count("tun_write_error", 1);
                        log::debug(format_args!("writing {}: {e}", self.tun.name()));
                    }
                }
                self.recycle(b);
            }
            Send::Queued | Send::Dropped => {}
        }
    }

    /// Sends queued packets once the SADB has changed (a key manager added SAs).
    fn retry_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let core = Arc::clone(&self.core);
        let gen = lock(&core).keys.generation();
        if gen == self.pending_gen {
            return;
        }
        self.pending_gen = gen;
        let queued: Vec<PacketBuf> = self
            .pending
            .drain()
            .flat_map(|(_, q)| q.into_iter())
            .collect();
        let now_s = now().0;
        let mut sends = Vec::new();
        let mut jobs = Vec::new();
        let mut woke = false;
        {
            let mut g = lock(&core);
            // A new lock hold: policy or SAs may have changed since the last batch.
            self.flow_memo = None;
            for b in queued {
                let s = self.outbound(&mut g, b, now_s, &mut woke);
                if let Some(j) = self.seal_job.take() {
                    jobs.push((sends.len(), j));
                }
                sends.push(s);
            }
        }
        self.seal_deferred(&mut sends, jobs);
        if woke {
            self.wake();
        }
        for s in sends {
            self.emit(s);
        }
    }

    fn wake(&mut self) {
        // What the PF_KEY thread is about to show (an ACQUIRE) follows the counters.
        self.flush_counters();
        let _ = self.waker.write(&[1]);
    }
}

/// The SPI of SA `id` (for the policy logger's records).
fn spi_of(g: &Shared, id: Option<SaId>) -> Option<u32> {
    id.and_then(|id| g.keys.sadb().get(id)).map(|sa| sa.spi())
}

/// Whether an IP packet goes to a link-scope multicast group (IPv4 224.0.0.0/24, IPv6
/// interface- or link-local scope): such packets never leave the link they were sent on.
fn link_scope_multicast(pkt: &[u8]) -> bool {
    match pkt.first().map(|v| v >> 4) {
        Some(4) => matches!(pkt.get(16..19), Some([224, 0, 0])),
        Some(6) => matches!(pkt.get(24..26), Some(&[0xff, flags_scope]) if flags_scope & 0x0f <= 2),
        _ => false,
    }
}

/// The ACQUIRE for an outbound packet that policy protects with `p` but has no SAs: the
/// protocol (ESP when the policy has ESP, else AH), the packet's addresses, and a proposal
/// from the policy's algorithms.
fn acquire_request(
    p: &Protection,
    mode: Mode,
    key: &PacketKey,
    props: &crate::props::Props,
) -> AcquireRequest {
    let proto = if p.esp.is_some() {
        Proto::Esp
    } else {
        Proto::Ah
    };
    // A unique SA is bound to the packet's 5-tuple: the ACQUIRE names its ports and
    // protocol (Solaris SA_UNIQUE_ID); a shared one names addresses only.
    let unique = p.sa == ipsec_core::spd::SaSharing::Unique;
    let addr = |a: IpAddr, port: Option<u16>| Address {
        proto: if unique { key.proto } else { 0 },
        ..Address::new(std::net::SocketAddr::new(
            a,
            port.filter(|_| unique).unwrap_or(0),
        ))
    };
    // Self-encapsulation asks for a tunnel-mode SA between the hosts themselves: the inner
    // selectors are the packet's own (host) addresses.
    let inner = |a: IpAddr| Address {
        proto: key.proto,
        prefixlen: if a.is_ipv4() { 32 } else { 128 },
        ..Address::new(std::net::SocketAddr::new(a, 0))
    };
    let _ = mode;
    AcquireRequest {
        need: AcquireNeed {
            proto,
            src: addr(key.src, key.sport),
            dst: addr(key.dst, key.dport),
            inner_src: p.self_encap.then(|| inner(key.src)),
            inner_dst: p.self_encap.then(|| inner(key.dst)),
        },
        proposal: proposal(p, proto, props),
        eprop: None,
        kmc: None,
        ident_src: None,
        ident_dst: None,
    }
}

/// The proposal: the policy's algorithms, and the replay window and lifetimes of the
/// `replay-size` and `default-{soft,hard}-addtime` properties.
fn proposal(p: &Protection, proto: Proto, props: &crate::props::Props) -> Proposal {
    use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};
    let mut c = Comb::default();
    crate::props::set_lifetimes(&mut c, props);
    let auth = match proto {
        Proto::Ah => p.ah.and_then(|a| a.alg).or(Some(AuthAlg::HmacSha256)),
        Proto::Esp => match p.esp.map(|e| e.auth) {
            Some(ipsec_core::spd::EspAuth::Required(a)) => a.alg.or(Some(AuthAlg::HmacSha256)),
            _ => None,
        },
    };
    if let Some(a) = auth {
        let i = auth_info(a);
        c.auth = i.pfkey;
        c.auth_minbits = i.key_bits.min;
        c.auth_maxbits = i.key_bits.max;
    }
    if proto == Proto::Esp {
        let e = p.esp.and_then(|e| e.encr.alg).unwrap_or(EncrAlg::AesGcm16);
        let i = encr_info(e);
        c.encrypt = i.pfkey;
        c.encrypt_minbits = i.key_bits.min;
        c.encrypt_maxbits = i.key_bits.max;
        c.encrypt_saltbits = u8::try_from(i.salt_bytes * 8).unwrap_or(0);
    }
    Proposal {
        replay: crate::props::replay(props),
        combs: vec![c],
    }
}

/// The proposal of every `or` alternative of the policy that uses `proto`, in the
/// policy's order (the first is [`acquire_request`]'s own): one combination each.
/// X_INVERSE_ACQUIRE answers in the same order (`crate::inverse`).
fn alternatives(bundles: &[Protection], proto: Proto, props: &crate::props::Props) -> Proposal {
    let mut combs = Vec::new();
    for p in bundles {
        let uses = match proto {
            Proto::Esp => p.esp.is_some(),
            Proto::Ah => p.esp.is_none() && p.ah.is_some(),
        };
        if uses {
            combs.extend(proposal(p, proto, props).combs);
        }
    }
    Proposal {
        replay: crate::props::replay(props),
        combs,
    }
}

/// How often idle key schedules are looked for: a quarter of the idle time, 1 to 30 s.
fn key_sweep(idle: u64) -> Duration {
    Duration::from_secs((idle / 4).clamp(1, 30))
}

/// Writes the IPv4 (20-byte) or IPv6 (40-byte) header and the UDP header of a datagram of
/// `len` payload bytes from `src` to `dst`:`port` in front of the payload already at
/// `slot[hl..]` (`hl` = 28 or 48). The UDP checksum is left zero (the engine removes the
/// UDP header of ESP-in-UDP without checking it, as RFC 3948 allows).
fn write_ip_udp(
    slot: &mut [u8],
    hl: usize,
    len: usize,
    src: std::net::SocketAddr,
    dst: IpAddr,
    port: u16,
) -> Option<()> {
    let udp_len = u16::try_from(8 + len).ok()?;
    let h = slot.get_mut(..hl)?;
    h.fill(0);
    match (src.ip(), dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if hl == 28 => {
            let total = u16::try_from(hl + len).ok()?;
            h[0] = 0x45;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[8] = 64;
            h[9] = 17;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = ipsec_wire::checksum::checksum(&h[..20]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) if hl == 48 => {
            h[0] = 0x60;
            h[4..6].copy_from_slice(&udp_len.to_be_bytes());
            h[6] = 17;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
        }
        _ => return None,
    }
    let u = hl - 8;
    h[u..u + 2].copy_from_slice(&src.port().to_be_bytes());
    h[u + 2..u + 4].copy_from_slice(&port.to_be_bytes());
    h[u + 4..u + 6].copy_from_slice(&udp_len.to_be_bytes());
    Some(())
}

/// The ICMP error telling the sender of `pkt` that only `mtu` bytes fit: IPv4 type 3 code 4
/// (only for DF packets) with the next-hop MTU, IPv6 type 2 ("packet too big", never below
/// 1280), quoting as much of the packet as RFC 792 / RFC 4443 allow. It is written into
/// the TUN device, so it comes from the packet's destination: a local address as source
/// would be a martian on input and dropped by the kernel.
fn too_big(pkt: &[u8], mtu: usize) -> Option<Vec<u8>> {
    use ipsec_wire::checksum;
    match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            if pkt.get(6)? & 0x40 == 0 {
                return None; // no DF: not ours to refuse
            }
            let src: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            let from = dst;
            let quote = pkt.get(..(ihl + 8).min(pkt.len()))?;
            let mut o = vec![0u8; 20 + 8 + quote.len()];
            let total = u16::try_from(o.len()).ok()?;
            o[0] = 0x45;
            o[2..4].copy_from_slice(&total.to_be_bytes());
            o[8] = 64;
            o[9] = 1;
            o[12..16].copy_from_slice(&from);
            o[16..20].copy_from_slice(&src);
            let c = checksum::checksum(&o[..20]);
            o[10..12].copy_from_slice(&c.to_be_bytes());
            o[20] = 3;
            o[21] = 4;
            o[26..28].copy_from_slice(&u16::try_from(mtu.min(0xffff)).ok()?.to_be_bytes());
            o[28..].copy_from_slice(quote);
            let c = checksum::checksum(&o[20..]);
            o[22..24].copy_from_slice(&c.to_be_bytes());
            Some(o)
        }
        6 => {
            let src: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            let from = dst;
            let quote = pkt.get(..pkt.len().min(1280 - 48))?;
            let mut o = vec![0u8; 40 + 8 + quote.len()];
            let plen = u16::try_from(8 + quote.len()).ok()?;
            o[0] = 0x60;
            o[4..6].copy_from_slice(&plen.to_be_bytes());
            o[6] = 58;
            o[7] = 64;
            o[8..24].copy_from_slice(&from);
            o[24..40].copy_from_slice(&src);
            o[40] = 2;
            o[44..48].copy_from_slice(&u32::try_from(mtu.max(1280)).ok()?.to_be_bytes());
            o[48..].copy_from_slice(quote);
            let ph = checksum::pseudo_header(
                &IpAddr::V6(std::net::Ipv6Addr::from(from)),
                &IpAddr::V6(std::net::Ipv6Addr::from(src)),
                58,
                u32::from(plen),
            );
            let c = !checksum::combine(&[ph, checksum::data(&o[40..])]);
            o[42..44].copy_from_slice(&c.to_be_bytes());
            Some(o)
        }
        _ => None,
    }
}

/// Whether an SA is one NAT keepalives go out for: not inbound-only, UDP-encapsulated, and
/// flagged as having its local side behind a NAT (`SADB_X_SAFLAGS_NATT_LOC`). RFC 3948
/// §2.3 and RFC 7296 §2.23 leave keepalives to the NATed side; Solaris' ESP ager sends
/// them only for `NATT_LOC` SAs, so an SA flagged `NATT_REM` alone (only the peer is
/// NATed), or with neither flag (a PF_KEY client that set none), sends none. ipseckey
/// flags `NATT_LOC` for `nat_loc` or `nat_lport`, in.ikev2d from its NAT detection.
pub(crate) fn sends_keepalives(c: &ipsec_core::SaConfig) -> bool {
    c.direction != ipsec_core::Direction::Inbound && c.natt.is_some_and(|n| n.local_behind_nat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_proposes_every_alternative_of_its_protocol_in_order() {
        use ipsec_core::spd::AlgSpec;
        use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};
        let gcm = Protection::esp(AlgSpec::of(EncrAlg::AesGcm16));
        let ah = Protection::ah(AlgSpec::of(AuthAlg::HmacSha256));
        let cbc = Protection::from_props(
            None,
            Some(AlgSpec::of(EncrAlg::AesCbc)),
            Some(AlgSpec::of(AuthAlg::HmacSha256)),
            ipsec_core::spd::SaSharing::Shared,
        );
        let p = alternatives(&[gcm, ah, cbc], Proto::Esp, &crate::props::Props::default());
        let got: Vec<(u8, u8)> = p.combs.iter().map(|c| (c.encrypt, c.auth)).collect();
        assert_eq!(
            got,
            vec![
                (encr_info(EncrAlg::AesGcm16).pfkey, 0),
                (
                    encr_info(EncrAlg::AesCbc).pfkey,
                    auth_info(AuthAlg::HmacSha256).pfkey
                )
            ]
        );
        let p = alternatives(&[gcm, ah, cbc], Proto::Ah, &crate::props::Props::default());
        assert_eq!(p.combs.len(), 1);
    }

    #[test]
    fn acquire_of_a_unique_or_self_encapsulated_socket_names_its_binding() {
        let key = PacketKey::udp(
            Dir::Out,
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            41001,
            7000,
        );
        let req = |r: ipsec_core::spd::IpsecReq| match r.to_action().unwrap() {
            Some(ipsec_core::spd::Action::Ipsec(alts)) => alts[0],
            other => panic!("{other:?}"),
        };
        let shared = acquire_request(
            &req(ipsec_core::spd::IpsecReq::esp(0, 0)),
            Mode::Transport,
            &key,
            &crate::props::Props::default(),
        );
        assert_eq!((shared.need.src.port(), shared.need.src.proto), (0, 0));
        assert_eq!(shared.need.inner_src, None);
        let mut r = ipsec_core::spd::IpsecReq::esp(0, 0);
        r.esp_req |= ipsec_core::spd::socket::IPSEC_PREF_UNIQUE;
        let unique = acquire_request(
            &req(r),
            Mode::Transport,
            &key,
            &crate::props::Props::default(),
        );
        assert_eq!((unique.need.src.port(), unique.need.src.proto), (41001, 17));
        assert_eq!((unique.need.dst.port(), unique.need.dst.proto), (7000, 17));
        let mut r = ipsec_core::spd::IpsecReq::esp(0, 0);
        r.self_encap_req = ipsec_core::spd::socket::IPSEC_PREF_REQUIRED;
        let se = acquire_request(
            &req(r),
            Mode::Transport,
            &key,
            &crate::props::Props::default(),
        );
        let (i, o) = (se.need.inner_dst.unwrap(), se.need.dst);
        assert_eq!((i.ip(), i.prefixlen, i.proto), (o.ip(), 32, 17));
    }

    #[test]
    fn too_big_quotes_the_packet_with_valid_checksums() {
        let mut p = vec![0u8; 1500];
        p[0] = 0x45;
        p[6] = 0x40; // DF
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let icmp = too_big(&p, 1427).unwrap();
        assert_eq!(icmp.len(), 20 + 8 + 28);
        assert!(ipsec_wire::checksum::verify(&icmp[..20]));
        assert!(ipsec_wire::checksum::verify(&icmp[20..]));
        assert_eq!((icmp[20], icmp[21]), (3, 4));
        assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]), 1427);
        assert_eq!(&icmp[12..16], &[10, 0, 0, 2]);
        assert_eq!(&icmp[16..20], &[10, 0, 0, 1]);
        p[6] = 0;
        assert!(too_big(&p, 1427).is_none(), "no DF: no ICMP");

        let mut q = vec![0u8; 1500];
        q[0] = 0x60;
        q[6] = 17;
        q[23] = 1;
        q[39] = 2;
        let icmp = too_big(&q, 1300).unwrap();
        assert_eq!(icmp.len(), 1280);
        assert_eq!(icmp[40], 2);
        assert_eq!(
            u32::from_be_bytes([icmp[44], icmp[45], icmp[46], icmp[47]]),
            1300
        );
        let ph = ipsec_wire::checksum::pseudo_header(
            &"::2".parse().unwrap(),
            &"::1".parse().unwrap(),
            58,
            (icmp.len() - 40) as u32,
        );
        assert_eq!(
            ipsec_wire::checksum::combine(&[ph, ipsec_wire::checksum::data(&icmp[40..])]),
            0xffff
        );
    }
}
