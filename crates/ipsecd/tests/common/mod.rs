//! Shared harness of the ipsecd socket tests: a [`Daemon`] guard that starts the real
//! binary on sockets in its own temporary directory (killed and cleaned up on drop, its log
//! printed when the test failed), a PF_KEY [`Client`] over the real socket that checks every
//! message it receives, and request builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipsec_pfkey::consts::*;
use ipsec_pfkey::fuzz_support::check_output;
use ipsec_pfkey::wire::{Address, Key, Message, MsgHeader, SaExt, SpiRange};
use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::{PollFd, PollFlags};

/// How long any single reply may take before the test calls it a hang.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A fresh private directory for one daemon (mode 0755 so that an unprivileged helper can
/// reach the PF_KEY socket inside).
pub fn temp_dir(name: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ipsecd-{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A running ipsecd. Dropping it kills the process and removes its directory; when the
/// test is failing, the daemon's log is printed first.
pub struct Daemon {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<String>,
    /// The daemon's directory (sockets, log, keys files).
    pub dir: PathBuf,
    /// The PF_KEY socket.
    pub pfkey: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    log: PathBuf,
    keep_dir: bool,
}

impl Daemon {
    /// Starts `bin` in a new directory named after `name` with `args` (besides the two
    /// socket options), and waits until the control socket answers.
    pub fn start(bin: &Path, name: &str, args: &[&str]) -> Self {
        let dir = temp_dir(name);
        let mut d = Self {
            child: None,
            bin: bin.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            pfkey: dir.join("pfkey.sock"),
            control: dir.join("control.sock"),
            log: dir.join("ipsecd.log"),
            dir,
            keep_dir: false,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none());
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("--pfkey-socket")
            .arg(&self.pfkey)
            .arg("--control-socket")
            .arg(&self.control)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ipsecd exited at start ({st}):\n{}", self.log_text());
            }
            if self.control.exists() {
                if let Ok(c) = Conn::connect(&self.control) {
                    if control_request(&c, "stats").starts_with("ok") {
                        return;
                    }
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ipsecd did not come up:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal (by name: TERM, HUP, USR1, STOP, CONT ...).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{sig} {}", self.pid()))
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig} failed");
    }

    /// Stops the daemon with SIGTERM and waits for it (at most 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ipsecd ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the daemon again (same directory and sockets) with other arguments.
    pub fn restart_with(&mut self, args: &[&str]) {
        if self.child.is_some() {
            let st = self.stop();
            assert!(st.success(), "ipsecd exit status {st}");
        }
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// One control-socket request; the reply text.
    pub fn control(&self, request: &str) -> String {
        let c = Conn::connect(&self.control).unwrap();
        control_request(&c, request)
    }

    /// The `stats` counters.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let r = self.control("stats");
        assert!(r.starts_with("ok"), "stats: {r}");
        r.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect()
    }

    /// A new PF_KEY client.
    pub fn client(&self) -> Client {
        Client::connect(&self.pfkey)
    }

    /// Resident memory of the daemon in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- ipsecd log ({}) ----\n{}---- end of log ----",
                self.dir.display(),
                self.log_text()
            );
        }
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends one control request on `c` and returns the reply text.
pub fn control_request(c: &Conn, request: &str) -> String {
    assert_eq!(c.send(request.as_bytes()).unwrap(), Sent::Done);
    let mut buf = vec![0u8; 65536];
    assert!(wait_readable(c, REPLY_TIMEOUT), "control: no reply");
    match c.recv(&mut buf).unwrap() {
        Recv::Msg(n) => String::from_utf8(buf[..n].to_vec()).unwrap(),
        other => panic!("control: {other:?}"),
    }
}

/// Waits until `c` is readable (or hung up); false after `timeout`.
pub fn wait_readable(c: &Conn, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(c, PollFlags::IN)];
    let t0 = Instant::now();
    loop {
        let left = timeout.saturating_sub(t0.elapsed());
        if ipsec_sys::poll(&mut fds, Some(left)).unwrap() > 0 {
            return true;
        }
        if left.is_zero() {
            return false;
        }
    }
}

static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// A PF_KEY client on the real socket. Every message it receives must pass
/// [`check_output`] (parses, follows the reply rules, canonical bytes). Messages received
/// while waiting for something else are kept in a backlog.
pub struct Client {
    /// The connection.
    pub conn: Conn,
    /// The `sadb_msg_pid` this client puts in its requests (unique per client).
    pub pid: u32,
    seq: u32,
    /// Messages received but not yet consumed.
    pub backlog: VecDeque<Message>,
    buf: Vec<u8>,
    /// How many messages this client received in total.
    pub received: u64,
    /// How many messages this client sent in total.
    pub sent: u64,
}

impl Client {
    /// Connects to the PF_KEY socket at `path`.
    pub fn connect(path: &Path) -> Self {
        let conn = Conn::connect(path).unwrap();
        let _ = conn.set_recv_buffer(4 << 20);
        let _ = conn.set_send_buffer(4 << 20);
        Self {
            conn,
            pid: std::process::id()
                .wrapping_mul(1000)
                .wrapping_add(NEXT_PID.fetch_add(1, Ordering::Relaxed)),
            seq: 0,
            backlog: VecDeque::new(),
            buf: vec![0u8; 1 << 20],
            received: 0,
            sent: 0,
        }
    }

    /// The next sequence number of this client.
    pub fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// Sends raw bytes as one message.
    pub fn send_raw(&mut self, b: &[u8]) {
        assert_eq!(self.conn.send(b).unwrap(), Sent::Done, "send");
        self.sent += 1;
    }

    /// Emits and sends `m` as is.
    pub fn send(&mut self, m: &Message) {
        let b = m.emit().unwrap();
        self.send_raw(&b);
    }

    /// Receives one message from the socket (not the backlog), raw. `None` after
    /// `timeout`. Panics when the daemon closed the connection.
    pub fn recv_raw(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        if !wait_readable(&self.conn, timeout) {
            return None;
        }
        match self.conn.recv(&mut self.buf).unwrap() {
            Recv::Msg(n) => {
                self.received += 1;
                Some(self.buf[..n].to_vec())
            }
            Recv::WouldBlock => None,
            other => panic!("PF_KEY socket: {other:?}"),
        }
    }

    /// Receives one message from the socket (not the backlog) and checks it.
    pub fn recv(&mut self, timeout: Duration) -> Option<Message> {
        let b = self.recv_raw(timeout)?;
        Some(check_output(&b).unwrap_or_else(|e| panic!("{e}: {b:?}")))
    }

    /// The next message satisfying `pred`: from the backlog first, then the socket (others
    /// go to the backlog). `None` after `timeout`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i);
        }
        let t0 = Instant::now();
        loop {
            let left = timeout.saturating_sub(t0.elapsed());
            let m = self.recv(left)?;
            if pred(&m) {
                return Some(m);
            }
            self.backlog.push_back(m);
        }
    }

    /// Every message that arrives within `d` (the backlog first).
    pub fn collect(&mut self, d: Duration) -> Vec<Message> {
        let mut v: Vec<Message> = self.backlog.drain(..).collect();
        let t0 = Instant::now();
        while let Some(m) = self.recv(d.saturating_sub(t0.elapsed())) {
            v.push(m);
        }
        v
    }

    /// Sets seq (fresh) and pid on `m`, sends it and returns the reply to it: the message
    /// with its seq and pid and its type (or type 0 with an errno).
    pub fn request(&mut self, mut m: Message) -> Message {
        m.seq = self.next_seq();
        m.pid = self.pid;
        self.send(&m);
        self.reply_to(m.msg_type, m.seq)
    }

    /// Waits for the reply (type `t`, sequence `seq`, this client's pid).
    pub fn reply_to(&mut self, t: u8, seq: u32) -> Message {
        let pid = self.pid;
        self.wait_for(REPLY_TIMEOUT, |r| {
            r.seq == seq && r.pid == pid && (r.msg_type == t || (r.errno != 0 && r.msg_type == 0))
        })
        .unwrap_or_else(|| {
            panic!("no reply to message type {t} seq {seq} within {REPLY_TIMEOUT:?}")
        })
    }

    /// A request that must succeed.
    pub fn ok(&mut self, m: Message) -> Message {
        let t = m.msg_type;
        let r = self.request(m);
        assert_eq!(r.errno, 0, "type {t} refused: {r:?}");
        assert_eq!(r.msg_type, t);
        r
    }

    /// A request that must be refused with `errno` and diagnostic `diag`; the reply is a
    /// base header only.
    pub fn refused(&mut self, m: Message, errno: u8, diag: u16) {
        let t = m.msg_type;
        let r = self.request(m);
        assert_eq!(
            (r.errno, r.diagnostic),
            (errno, diag),
            "type {t}: wrong error reply {r:?}"
        );
        assert!(!r.has_extensions(), "error replies carry no extensions");
    }

    /// Sends raw bytes and returns the next message (which must be an error reply to the
    /// sender: the test client is alone on the daemon when it calls this).
    pub fn raw_request(&mut self, b: &[u8]) -> Message {
        self.send_raw(b);
        let r = self
            .recv(REPLY_TIMEOUT)
            .unwrap_or_else(|| panic!("no reply to raw message {b:?}"));
        if b.len() >= 16 {
            let h = MsgHeader::new_unchecked(b);
            assert_eq!((r.seq, r.pid), (h.seq(), h.pid()), "reply copies seq/pid");
        }
        r
    }

    /// DUMP of `satype`: the records (without the final seq-0 message, whose presence is
    /// checked).
    pub fn dump(&mut self, satype: u8) -> Vec<Message> {
        let mut m = Message::new(SADB_DUMP, satype);
        m.seq = self.next_seq();
        m.pid = self.pid;
        self.send(&m);
        let (seq, pid) = (m.seq, m.pid);
        let mut recs = Vec::new();
        loop {
            let r = self
                .wait_for(REPLY_TIMEOUT, |r| {
                    r.msg_type == SADB_DUMP && r.pid == pid && (r.seq == seq || r.seq == 0)
                })
                .expect("DUMP did not end (no seq 0 message)");
            assert_eq!(r.errno, 0, "DUMP: {r:?}");
            if r.seq == 0 {
                assert!(!r.has_extensions(), "DUMP end carries nothing");
                assert_eq!(r.satype, satype);
                return recs;
            }
            recs.push(r);
        }
    }

    /// The whole SADB as canonical bytes (sorted).
    pub fn snapshot(&mut self) -> Vec<Vec<u8>> {
        canon(&self.dump(SADB_SATYPE_UNSPEC), false)
    }

    /// The GET of an SA: `Ok(reply)` or `Err((errno, diagnostic))`.
    pub fn get(
        &mut self,
        satype: u8,
        spi: u32,
        src: &str,
        dst: &str,
    ) -> Result<Message, (u8, u16)> {
        let r = self.request(sel(SADB_GET, satype, spi, src, dst));
        if r.errno == 0 {
            Ok(r)
        } else {
            Err((r.errno, r.diagnostic))
        }
    }
}

/// DUMP records as sorted canonical bytes (seq and pid cleared; with `no_current`, the
/// CURRENT lifetime, whose add time is the time of loading, is removed too).
pub fn canon(recs: &[Message], no_current: bool) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = recs
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.seq = 0;
            r.pid = 0;
            if no_current {
                r.lifetime_current = None;
            }
            r.emit().unwrap()
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Request builders.

/// An address extension for `s` (an IP, port 0).
pub fn addr(s: &str) -> Address {
    let ip: IpAddr = s.parse().unwrap();
    Address::new(SocketAddr::new(ip, 0))
}

/// A mature SA extension.
pub fn sa_ext(spi: u32, auth: u8, encrypt: u8) -> SaExt {
    SaExt {
        spi,
        replay: 0,
        state: SADB_SASTATE_MATURE,
        auth,
        encrypt,
        flags: 0,
    }
}

/// ADD of an ESP AES-GCM-16 SA (PF_KEY 20, 128-bit key + salt).
pub fn esp_add(spi: u32, src: &str, dst: &str) -> Message {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.sa = Some(sa_ext(spi, 0, 20));
    m.src = Some(addr(src));
    m.dst = Some(addr(dst));
    m.key_encrypt = Key::new(&[0x5a; 20]);
    m
}

/// ADD of an AH HMAC-SHA-256 SA.
pub fn ah_add(spi: u32, src: &str, dst: &str) -> Message {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_AH);
    m.sa = Some(sa_ext(spi, 5, 0));
    m.src = Some(addr(src));
    m.dst = Some(addr(dst));
    m.key_auth = Key::new(&[0x33; 32]);
    m
}

/// A message naming an SA: `<base, SA, src, dst>`.
pub fn sel(t: u8, satype: u8, spi: u32, src: &str, dst: &str) -> Message {
    let mut m = Message::new(t, satype);
    m.sa = Some(sa_ext(spi, 0, 0));
    m.src = Some(addr(src));
    m.dst = Some(addr(dst));
    m
}

/// GETSPI for `satype` from `src` to `dst` in `[min, max]`.
pub fn getspi(satype: u8, src: &str, dst: &str, min: u32, max: u32) -> Message {
    let mut m = Message::new(SADB_GETSPI, satype);
    m.src = Some(addr(src));
    m.dst = Some(addr(dst));
    m.spirange = Some(SpiRange { min, max });
    m
}

/// A tiny deterministic generator (xorshift64*), for tests that want variety without a
/// dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
