//! PF_KEY through the daemon's socket (issue 5 bars): ADD throughput, memory per SA at
//! 1,000,000 SAs, GET latency, against the raw socket round trip of the same machine.
//!
//! ```text
//! cargo build --release -p ipsecd
//! cargo run --release -p ipsecd --example pfkey_bench [-- --sas N --adds N]
//! ```
//!
//! It starts `target/release/ipsecd` (next to this example's directory; `IPSECD=path`
//! overrides) on sockets in a temporary directory and is the only PF_KEY client:
//!
//! 1. baseline: a no-op request (an unknown message type, answered at once with an error)
//!    round trip, one at a time and pipelined;
//! 2. 100,000 ADDs (AES-256-GCM SAs like `crates/ipsec-pfkey/benches/pfkey.rs`) pipelined
//!    (a window of requests in flight, one sent per reply read): ADDs per second, bar
//!    100,000/s; also ADD one at a time;
//! 3. a fresh daemon, 1,000,000 SAs added through the socket: (VmRSS after − VmRSS before) /
//!    N from `/proc/<pid>/status`, bar < 1 KiB per SA (everything: SADB, key schedules, engine
//!    side tables, server buffers); GET latency at that size; and a DUMP of them all.
#![forbid(unsafe_code)]

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipsec_pfkey::consts::*;
use ipsec_pfkey::wire::{Address, Key, KmCookie, Lifetime, Message, SaExt};
use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::{PollFd, PollFlags};

type Res<T> = Result<T, Box<dyn Error>>;

const WINDOW: usize = 256;

/// The daemon under test; killed and its directory removed on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
    pfkey: PathBuf,
}

impl Daemon {
    fn start(bin: &Path, name: &str, args: &[&str]) -> Res<Self> {
        let dir = std::env::temp_dir().join(format!("ipsecd-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let pfkey = dir.join("pfkey.sock");
        let control = dir.join("control.sock");
        let child = Command::new(bin)
            .arg("--pfkey-socket")
            .arg(&pfkey)
            .arg("--control-socket")
            .arg(&control)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let d = Self { child, dir, pfkey };
        let t0 = Instant::now();
        while !control.exists() {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err("ipsecd did not start".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(20));
        Ok(d)
    }

    /// utime + stime in clock ticks (100 per second).
    fn cpu_ticks(&self) -> Res<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let rest = s.rsplit_once(')').ok_or("bad stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        let ut: u64 = f.get(11).ok_or("bad stat")?.parse()?;
        let st: u64 = f.get(12).ok_or("bad stat")?.parse()?;
        Ok(ut + st)
    }

    fn rss_kib(&self) -> Res<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmRSS".into())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Client {
    conn: Conn,
    buf: Vec<u8>,
}

impl Client {
    fn connect(path: &Path) -> Res<Self> {
        let conn = Conn::connect(path)?;
        conn.set_send_buffer(4 << 20)?;
        conn.set_recv_buffer(4 << 20)?;
        Ok(Self {
            conn,
            buf: vec![0u8; 1 << 20],
        })
    }

    fn send(&self, b: &[u8]) -> Res<()> {
        match self.conn.send(b)? {
            Sent::Done => Ok(()),
            other => Err(format!("send: {other:?}").into()),
        }
    }

    /// The next message's header: (type, errno, seq); `None` after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Res<Option<(u8, u8, u32, usize)>> {
        let mut fds = [PollFd::new(&self.conn, PollFlags::IN)];
        if ipsec_sys::poll(&mut fds, Some(timeout))? == 0 {
            return Ok(None);
        }
        match self.conn.recv(&mut self.buf)? {
            Recv::Msg(n) if n >= 16 => {
                let b = &self.buf;
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                Ok(Some((b[1], b[2], seq, n)))
            }
            other => Err(format!("recv: {other:?}").into()),
        }
    }

    /// The reply to `seq` (every message is a reply here: this is the only client).
    fn reply(&mut self, seq: u32) -> Res<(u8, u8)> {
        loop {
            match self.recv(Duration::from_secs(10))? {
                Some((t, errno, s, _)) if s == seq => return Ok((t, errno)),
                Some(_) => {}
                None => return Err(format!("no reply to seq {seq}").into()),
            }
        }
    }

    /// Sends `msgs` keeping `window` requests in flight; returns the elapsed time. Every
    /// reply must have errno 0 unless `errors_ok`.
    fn pipeline(&mut self, msgs: &[Vec<u8>], window: usize, errors_ok: bool) -> Res<Duration> {
        let t0 = Instant::now();
        let mut next = 0;
        let mut done = 0;
        while next < msgs.len().min(window) {
            self.send(&msgs[next])?;
            next += 1;
        }
        while done < msgs.len() {
            let (_, errno, _, _) = self
                .recv(Duration::from_secs(10))?
                .ok_or("pipeline: no reply within 10 s")?;
            if errno != 0 && !errors_ok {
                return Err(format!("request refused with errno {errno}").into());
            }
            done += 1;
            if next < msgs.len() {
                self.send(&msgs[next])?;
                next += 1;
            }
        }
        Ok(t0.elapsed())
    }
}

fn dst_of(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 8)))
}

fn addr(ip: IpAddr) -> Address {
    Address::new(SocketAddr::new(ip, 0))
}

fn sa(spi: u32) -> SaExt {
    SaExt {
        spi,
        replay: 64,
        state: SADB_SASTATE_MATURE,
        auth: 0,
        encrypt: 20,
        flags: 0,
    }
}

/// ADD of SA `i`: ESP AES-256-GCM-16, 1/1 hour lifetimes, as the engine bench; with
/// `kmc`, a key management cookie as an IKE daemon sets.
fn add_bytes(i: u32, seq: u32, kmc: bool) -> Res<Vec<u8>> {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    if kmc {
        m.kmc = Some(KmCookie {
            proto: SADB_X_KMP_IKE,
            cookie: u64::from(i) + 1,
        });
    }
    m.seq = seq;
    m.sa = Some(sa(0x1000 + i));
    m.src = Some(addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    m.dst = Some(addr(dst_of(i)));
    let mut k = [0x5au8; 36];
    k[..4].copy_from_slice(&i.to_be_bytes());
    m.key_encrypt = Key::new(&k);
    m.lifetime_hard = Some(Lifetime {
        addtime: 28800,
        ..Lifetime::default()
    });
    m.lifetime_soft = Some(Lifetime {
        addtime: 24000,
        ..Lifetime::default()
    });
    Ok(m.emit()?)
}

fn get_bytes(i: u32, seq: u32) -> Res<Vec<u8>> {
    let mut m = Message::new(SADB_GET, SADB_SATYPE_ESP);
    m.seq = seq;
    m.sa = Some(sa(0x1000 + i));
    m.dst = Some(addr(dst_of(i)));
    Ok(m.emit()?)
}

/// A request the daemon refuses at once (unknown message type): the socket round trip.
fn noop_bytes(seq: u32) -> Vec<u8> {
    let mut b = vec![PF_KEY_V2, 200, 0, 0];
    b.extend_from_slice(&2u16.to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b
}

struct Lat {
    max: Duration,
    median: Duration,
    p99: Duration,
    mean: Duration,
}

fn one_at_a_time(c: &mut Client, msgs: &[Vec<u8>], errors_ok: bool) -> Res<Lat> {
    let mut v = Vec::with_capacity(msgs.len());
    for m in msgs {
        let seq = u32::from_ne_bytes([m[8], m[9], m[10], m[11]]);
        let t = Instant::now();
        c.send(m)?;
        let (_, errno) = c.reply(seq)?;
        v.push(t.elapsed());
        if errno != 0 && !errors_ok {
            return Err(format!("refused with errno {errno}").into());
        }
    }
    v.sort();
    let n = v.len().max(1);
    Ok(Lat {
        max: v[n - 1],
        median: v[n / 2],
        p99: v[(n * 99 / 100).min(n - 1)],
        mean: v.iter().sum::<Duration>() / n as u32,
    })
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn arg(name: &str, default: u32) -> Res<u32> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).ok_or("missing value")?.parse()?),
        None => Ok(default),
    }
}

fn main() -> Res<()> {
    let n_adds = arg("--adds", 100_000)?;
    let n_sas = arg("--sas", 1_000_000)?;
    let kmc = std::env::args().any(|a| a == "--kmc");
    let bin = match std::env::var_os("IPSECD") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .ok_or("no target directory")?
            .join("ipsecd"),
    };
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build --release -p ipsecd)",
            bin.display()
        )
        .into());
    }
    println!("ipsecd: {}", bin.display());

    // 1 + 2: baseline and ADD throughput on one daemon.
    let d = Daemon::start(&bin, "adds", &["-q"])?;
    let mut c = Client::connect(&d.pfkey)?;
    let noops: Vec<Vec<u8>> = (1..=20_000).map(noop_bytes).collect();
    one_at_a_time(&mut c, &noops[..2000], true)?; // warm up
    let rtt = one_at_a_time(&mut c, &noops, true)?;
    let noop_time = c.pipeline(&noops, WINDOW, true)?;
    let noop_rate = noops.len() as f64 / noop_time.as_secs_f64();

    let adds: Vec<Vec<u8>> = (0..n_adds)
        .map(|i| add_bytes(i, i + 1, kmc))
        .collect::<Res<_>>()?;
    let add_time = c.pipeline(&adds, WINDOW, false)?;
    let add_rate = f64::from(n_adds) / add_time.as_secs_f64();
    let seq_adds: Vec<Vec<u8>> = (0..10_000)
        .map(|i| add_bytes(n_adds + i, n_adds + i + 1, kmc))
        .collect::<Res<_>>()?;
    let add_lat = one_at_a_time(&mut c, &seq_adds, false)?;
    drop(c);
    drop(d);

    // 3: memory per SA, GET latency and DUMP at n_sas.
    let d = Daemon::start(&bin, "mem", &["-q"])?;
    let mut c = Client::connect(&d.pfkey)?;
    one_at_a_time(&mut c, &noops[..2000], true)?;
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = d.rss_kib()?;
    let t0 = Instant::now();
    let chunk = 100_000u32;
    let mut i = 0;
    while i < n_sas {
        let end = (i + chunk).min(n_sas);
        let msgs: Vec<Vec<u8>> = (i..end)
            .map(|j| add_bytes(j, j + 1, kmc))
            .collect::<Res<_>>()?;
        c.pipeline(&msgs, WINDOW, false)?;
        i = end;
    }
    let fill_time = t0.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let rss1 = d.rss_kib()?;
    let per_sa = (rss1.saturating_sub(rss0) * 1024) as f64 / f64::from(n_sas.max(1));

    let mut x = 0x9e37_79b9u32;
    let gets: Vec<Vec<u8>> = (0..20_000u32)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            get_bytes(x % n_sas.max(1), 0x4000_0000 + k)
        })
        .collect::<Res<_>>()?;
    let get_lat = one_at_a_time(&mut c, &gets, false)?;
    let rtt_full = one_at_a_time(&mut c, &noops[..10_000], true)?;
    // Stalls of the daemon's loop at this size (timers that walk every SA): back-to-back
    // no-op requests for 3 s.
    let t0 = Instant::now();
    let (mut count, mut slow, mut worst, mut stalled) =
        (0u32, 0u32, Duration::ZERO, Duration::ZERO);
    while t0.elapsed() < Duration::from_secs(3) {
        let seq = 0x5000_0000 + count;
        let t = Instant::now();
        c.send(&noop_bytes(seq))?;
        c.reply(seq)?;
        let e = t.elapsed();
        count += 1;
        if e > Duration::from_millis(1) {
            slow += 1;
            stalled += e;
        }
        worst = worst.max(e);
    }

    // CPU the idle daemon uses at this size (the once-a-second lifetime check).
    let cpu0 = d.cpu_ticks()?;
    std::thread::sleep(Duration::from_secs(3));
    let idle_cpu = (d.cpu_ticks()? - cpu0) as f64 / 100.0 / 3.0;

    // DUMP of everything: how many records arrive, and whether the end (seq 0) does.
    let mut dump = Message::new(SADB_DUMP, SADB_SATYPE_UNSPEC);
    dump.seq = 0x7000_0000;
    let t0 = Instant::now();
    c.send(&dump.emit()?)?;
    let mut records = 0u64;
    let mut ended = false;
    while let Some((t, _, seq, _)) = c.recv(Duration::from_secs(5))? {
        if t == SADB_DUMP && seq == 0 {
            ended = true;
            break;
        }
        if t == SADB_DUMP && seq == dump.seq {
            records += 1;
        }
    }
    let dump_time = t0.elapsed();
    let rss2 = d.rss_kib()?;

    println!();
    println!("== PF_KEY through the ipsecd socket (one client, release build) ==");
    println!(
        "socket round trip (no-op request, error reply): median {:.1} us, p99 {:.1} us, mean {:.1} us; pipelined {:.0}/s",
        us(rtt.median),
        us(rtt.p99),
        us(rtt.mean),
        noop_rate
    );
    println!(
        "ADD pipelined (window {WINDOW}): {n_adds} in {:.3} s = {:.0} ADDs/s  [bar >= 100000/s: {}]  ({:.2}x the pipelined no-op rate)",
        add_time.as_secs_f64(),
        add_rate,
        if add_rate >= 100_000.0 { "MET" } else { "NOT MET" },
        add_rate / noop_rate
    );
    println!(
        "ADD one at a time: median {:.1} us ({:.2}x the round trip), p99 {:.1} us",
        us(add_lat.median),
        add_lat.median.as_secs_f64() / rtt.median.as_secs_f64(),
        us(add_lat.p99)
    );
    println!(
        "{n_sas} SAs added in {:.2} s ({:.0}/s); VmRSS {} -> {} KiB: {:.0} bytes per SA  [bar < 1024: {}]",
        fill_time.as_secs_f64(),
        f64::from(n_sas) / fill_time.as_secs_f64(),
        rss0,
        rss1,
        per_sa,
        if per_sa < 1024.0 { "MET" } else { "NOT MET" }
    );
    println!(
        "GET at {n_sas} SAs: median {:.1} us ({:.2}x the round trip at that size, {:.1} us), p99 {:.1} us, max {:.1} us",
        us(get_lat.median),
        get_lat.median.as_secs_f64() / rtt_full.median.as_secs_f64(),
        us(rtt_full.median),
        us(get_lat.p99),
        us(get_lat.max)
    );
    println!(
        "loop stalls at {n_sas} SAs: {count} no-op round trips in 3 s, {slow} over 1 ms (together {:.0} ms), worst {:.1} ms; idle daemon CPU {:.0}%",
        stalled.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        idle_cpu * 100.0
    );
    println!(
        "DUMP of {n_sas} SAs: {records} records in {:.2} s, end marker {}; VmRSS after {} KiB",
        dump_time.as_secs_f64(),
        if ended { "received" } else { "NOT received" },
        rss2
    );
    Ok(())
}
