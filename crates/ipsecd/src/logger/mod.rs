//! The policy logger: Solaris 11.4's `svc:/network/ipsec/policy:logger` for ipsecd. It
//! records every packet IPsec drops (the data plane's drops and the cleartext the nftables
//! table drops, reported through NFLOG) in a log file, at the detail its `log_level` asks for
//! (see [`record`]), with the Solaris properties, rotation and actions.
//!
//! ```text
//!  data plane / NFLOG reader ──enabled? (one atomic load; nothing else when off)
//!     └─ rate limit (log_interval_ms, one atomic CAS) ──limited──► log_rate_limited += 1
//!         └─ DropEvent (fixed size, first 128 bytes) ──try_send──► bounded queue (QUEUE_CAP)
//!                                                       └─full──► log_queue_full += 1
//!  logger thread ◄── queue: woken by the first event, gathers for 20 ms, then formats
//!                   (text | JSON lines) the batch into BufWriter<log_file> and flushes
//! ```
//!
//! The data path never waits for the logger: the push is a non-blocking send into a
//! bounded channel whose slots are allocated once, so memory stays bounded whatever the drop
//! rate, and what cannot be queued is counted.
//!
//! Properties live in three places, as with SMF: the properties file (`--logger-config`,
//! what `logger setprop` writes), the snapshot (read at start and by `logger refresh`) and
//! the running configuration (taken from the snapshot by `logger enable` and `logger
//! restart`, which also rotate the log: when it has reached `log_rotation_size`
//! `log_size_units`, `log_file` becomes `log_file.0`, `.0` becomes `.1` ... up to `.9`, and the
//! oldest is deleted; otherwise the logger appends). An enable or restart whose log file
//! cannot be opened fails with the reason and leaves the logger as it was. The enable state
//! is stored in the properties file too (`enabled=`), as SMF keeps `general/enabled`.
//!
//! Control requests (`logger ARGS`, forwarded verbatim by `ipsecadm logger ARGS`):
//! `status`, `getprop [NAME]`, `setprop NAME=VALUE`, `enable`, `disable`, `refresh`,
//! `restart`; replies start with `ok` or `error`.

pub mod nflog;
pub mod props;
pub mod record;

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use props::{Props, Stored};
use record::{Dir, DropEvent};

/// Events the queue holds; what arrives while it is full is counted and lost.
pub const QUEUE_CAP: usize = 4096;
/// Old log files kept by rotation (`log_file.0` ... `log_file.9`).
pub const KEPT_FILES: usize = 10;

/// The bounded, non-blocking queue between the data path and the logger thread, with its
/// rate limit and counters.
pub struct DropQueue {
    tx: SyncSender<DropEvent>,
    len: AtomicUsize,
    max_len: AtomicUsize,
    interval_ms: AtomicU64,
    /// Milliseconds since `epoch` (plus one) of the last event let through; 0: none yet.
    last_ms: AtomicU64,
    epoch: Instant,
    queued: AtomicU64,
    full: AtomicU64,
    rate_limited: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
}

/// What became of a pushed event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// In the queue.
    Queued,
    /// The queue was full: counted as `log_queue_full`.
    Full,
    /// Within the rate-limit interval of the previous record: counted as `log_rate_limited`.
    RateLimited,
}

impl DropQueue {
    fn new(cap: usize) -> (Self, Receiver<DropEvent>) {
        let (tx, rx) = mpsc::sync_channel(cap);
        let q = Self {
            tx,
            len: AtomicUsize::new(0),
            max_len: AtomicUsize::new(0),
            interval_ms: AtomicU64::new(props::DEFAULT_INTERVAL_MS),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            queued: AtomicU64::new(0),
            full: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        };
        (q, rx)
    }

    /// Queues the event `make` builds, unless rate limiting or a full queue stops it (then
    /// `make` is not called, or its event is dropped, and the loss is counted). Never waits.
    pub fn push_with(&self, make: impl FnOnce() -> DropEvent) -> Pushed {
        let iv = self.interval_ms.load(Relaxed);
        if iv != 0 {
            let now = u64::try_from(self.epoch.elapsed().as_millis())
                .unwrap_or(u64::MAX - 1)
                .saturating_add(1);
            let last = self.last_ms.load(Relaxed);
            if (last != 0 && now.saturating_sub(last) < iv)
                || self
                    .last_ms
                    .compare_exchange(last, now, Relaxed, Relaxed)
                    .is_err()
            {
                self.rate_limited.fetch_add(1, Relaxed);
                return Pushed::RateLimited;
            }
        }
        let n = self.len.fetch_add(1, Relaxed) + 1;
        match self.tx.try_send(make()) {
            Ok(()) => {
                self.max_len.fetch_max(n, Relaxed);
                self.queued.fetch_add(1, Relaxed);
                Pushed::Queued
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.len.fetch_sub(1, Relaxed);
                self.full.fetch_add(1, Relaxed);
                Pushed::Full
            }
        }
    }

    /// Events waiting now.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// The most events ever waiting.
    pub fn max_len(&self) -> usize {
        self.max_len.load(Relaxed)
    }
}

struct State {
    /// The properties file (`--logger-config`), if any.
    config: Option<PathBuf>,
    /// The properties read at start or by the last refresh.
    snapshot: Props,
    /// The running properties (Some while enabled).
    active: Option<Props>,
    out: Option<BufWriter<File>>,
    line: String,
}

/// One policy logger: its queue, its state and (running on its own thread) its writer.
pub struct Logger {
    enabled: AtomicBool,
    queue: DropQueue,
    state: Mutex<State>,
}

static GLOBAL: OnceLock<Arc<Logger>> = OnceLock::new();

/// Creates the daemon's logger from the properties file `config` (missing: defaults) and
/// enables it when `enable` is set or the file says so. An error (bad properties file,
/// unwritable log file) must stop the daemon.
pub fn init(config: Option<PathBuf>, enable: bool) -> Result<(), String> {
    let stored = match &config {
        Some(p) => Stored::load(p)?,
        None => Stored::default(),
    };
    let lg = Logger::new(config, stored.props, QUEUE_CAP)
        .map_err(|e| format!("policy logger thread: {e}"))?;
    if enable || stored.enabled {
        lg.enable().map_err(|e| format!("policy logger: {e}"))?;
    }
    let _ = GLOBAL.set(lg);
    Ok(())
}

/// Records a drop when the logger is enabled (one atomic load otherwise). `pkt` is the
/// packet as it was when dropped; its first [`record::CAPTURE`] bytes are copied.
#[inline]
pub fn drop_event(
    dir: Dir,
    reason: &'static str,
    rule: Option<usize>,
    spi: Option<u32>,
    stack: &'static [&'static str],
    pkt: &[u8],
) {
    if let Some(l) = GLOBAL.get() {
        if l.enabled.load(Relaxed) {
            l.push(dir, reason, rule, spi, stack, pkt);
        }
    }
}

/// The logger's counters, for the `counters` control request.
pub fn counters() -> Vec<(&'static str, u64)> {
    GLOBAL.get().map_or_else(Vec::new, |l| l.counters())
}

/// Handles the control request `logger ARGS` (`args` without the word `logger`).
pub fn request(args: &str) -> String {
    match GLOBAL.get() {
        Some(l) => l.request(args),
        None => "error the policy logger is not running\n".into(),
    }
}

impl Logger {
    /// A disabled logger with `snapshot` as its properties and its writer thread started.
    pub fn new(config: Option<PathBuf>, snapshot: Props, cap: usize) -> io::Result<Arc<Self>> {
        let (queue, rx) = DropQueue::new(cap);
        let lg = Arc::new(Self {
            enabled: AtomicBool::new(false),
            queue,
            state: Mutex::new(State {
                config,
                snapshot,
                active: None,
                out: None,
                line: String::with_capacity(512),
            }),
        });
        let weak = Arc::downgrade(&lg);
        std::thread::Builder::new()
            .name("policy-logger".into())
            .spawn(move || writer(&weak, &rx))?;
        Ok(lg)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the logger is enabled.
    #[cfg(test)]
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    #[cold]
    #[inline(never)]
    fn push(
        &self,
        dir: Dir,
        reason: &'static str,
        rule: Option<usize>,
        spi: Option<u32>,
        stack: &'static [&'static str],
        pkt: &[u8],
    ) -> Pushed {
        self.queue.push_with(|| {
            let rule = rule.and_then(|r| u32::try_from(r).ok());
            DropEvent::new(dir, reason, rule, spi, stack, pkt)
        })
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let q = &self.queue;
        vec![
            ("log_queued", q.queued.load(Relaxed)),
            ("log_written", q.written.load(Relaxed)),
            ("log_queue_full", q.full.load(Relaxed)),
            ("log_rate_limited", q.rate_limited.load(Relaxed)),
            ("log_write_errors", q.write_errors.load(Relaxed)),
            ("log_queue_len", q.len() as u64),
            ("log_queue_max", q.max_len() as u64),
        ]
    }

    /// Handles `logger ARGS`.
    pub fn request(&self, args: &str) -> String {
        let args = args.trim();
        let (verb, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let rest = rest.trim();
        let r = match (verb, rest) {
            ("status", "") => Ok(self.status()),
            ("getprop", name) => self.getprop(name),
            ("setprop", nv) => self.setprop(nv),
            ("enable", "") => self.enable(),
            ("disable", "") => Ok(self.disable()),
            ("refresh", "") => self.refresh(),
            ("restart", "") => self.restart(),
            _ => Err(format!(
                "unknown logger request {args:?} (expected status, getprop [NAME], setprop NAME=VALUE, enable, disable, refresh or restart)"
            )),
        };
        match r {
            Ok(s) if s.starts_with('\n') => format!("ok{s}"),
            Ok(s) => format!("ok {s}"),
            Err(e) => format!("error {e}\n"),
        }
    }

    fn status(&self) -> String {
        let st = self.lock();
        let mut o = String::from("\n");
        o.push_str(&format!(
            "state={}\n",
            if st.active.is_some() {
                "online"
            } else {
                "disabled"
            }
        ));
        o.push_str(&format!(
            "config={}\n",
            st.config
                .as_ref()
                .map_or_else(|| "-".into(), |p| p.display().to_string())
        ));
        if let Some(a) = &st.active {
            for n in props::NAMES {
                o.push_str(&format!("{n}={}\n", a.get(n).unwrap_or_default()));
            }
        }
        if st.active.as_ref().is_some_and(|a| *a != st.snapshot) {
            o.push_str("pending=restart applies the refreshed properties\n");
        }
        drop(st);
        for (k, v) in self.counters() {
            o.push_str(&format!("{k}={v}\n"));
        }
        o
    }

    /// The stored properties (the file, or the snapshot without one).
    fn stored(&self, st: &State) -> Result<Stored, String> {
        match &st.config {
            Some(p) => Stored::load(p),
            None => Ok(Stored {
                props: st.snapshot.clone(),
                enabled: st.active.is_some(),
            }),
        }
    }

    fn getprop(&self, name: &str) -> Result<String, String> {
        let st = self.lock();
        let s = self.stored(&st)?;
        if name.is_empty() {
            let mut o = String::from("\n");
            for n in props::NAMES {
                o.push_str(&format!("{n}={}\n", s.props.get(n).unwrap_or_default()));
            }
            return Ok(o);
        }
        match s.props.get(name) {
            Some(v) => Ok(format!("\n{name}={v}\n")),
            None => Err(format!(
                "unknown property {name:?} (expected one of {})",
                props::NAMES.join(", ")
            )),
        }
    }

    fn setprop(&self, nv: &str) -> Result<String, String> {
        let Some((name, value)) = nv.split_once('=') else {
            return Err(format!("setprop: expected NAME=VALUE, found {nv:?}"));
        };
        let (name, value) = (name.trim(), value.trim());
        let st = self.lock();
        let Some(path) = st.config.clone() else {
            return Err(
                "setprop: no properties file (start ipsecd with --logger-config FILE)".into(),
            );
        };
        let mut s = Stored::load(&path)?;
        s.props.set(name, value)?;
        s.save(&path)?;
        Ok(format!(
            "{name}={} stored in {}; refresh and restart the logger to apply it\n",
            s.props.get(name).unwrap_or_default(),
            path.display()
        ))
    }

    /// Enables the logger with the snapshot's properties (rotating the log first when it has
    /// reached the threshold). On an error the logger stays as it was.
    pub fn enable(&self) -> Result<String, String> {
        let mut st = self.lock();
        if st.active.is_some() {
            return Ok("already enabled\n".into());
        }
        let props = st.snapshot.clone();
        let (out, rotated) = open_log(&props)?;
        self.start(&mut st, props, out);
        let note = persist(&st, true);
        Ok(format!("enabled{}{note}\n", rotated_note(rotated)))
    }

    fn start(&self, st: &mut State, props: Props, out: BufWriter<File>) {
        self.queue.interval_ms.store(props.interval_ms, Relaxed);
        self.queue.last_ms.store(0, Relaxed);
        if let Some(mut old) = st.out.replace(out) {
            let _ = old.flush();
        }
        st.active = Some(props);
        self.enabled.store(true, Relaxed);
    }

    /// Disables the logger (what is queued is discarded by the writer).
    pub fn disable(&self) -> String {
        self.enabled.store(false, Relaxed);
        let mut st = self.lock();
        st.active = None;
        if let Some(mut o) = st.out.take() {
            let _ = o.flush();
        }
        let note = persist(&st, false);
        format!("disabled{note}\n")
    }

    /// Re-reads the properties file into the snapshot (a restart applies it). A bad file
    /// leaves the snapshot as it was.
    pub fn refresh(&self) -> Result<String, String> {
        let mut st = self.lock();
        let Some(path) = st.config.clone() else {
            return Ok("refreshed (no properties file: properties unchanged)\n".into());
        };
        let s = Stored::load(&path)?;
        st.snapshot = s.props;
        let pending = st.active.as_ref().is_some_and(|a| *a != st.snapshot);
        Ok(format!(
            "refreshed from {}{}\n",
            path.display(),
            if pending {
                "; restart the logger to apply the new properties"
            } else {
                ""
            }
        ))
    }

    /// Restarts the enabled logger with the snapshot's properties (rotating the log when it
    /// has reached the threshold); on an error it keeps running as it was.
    pub fn restart(&self) -> Result<String, String> {
        let mut st = self.lock();
        if st.active.is_none() {
            return Err("the logger is disabled (enable it instead)".into());
        }
        if let Some(o) = st.out.as_mut() {
            let _ = o.flush();
        }
        let props = st.snapshot.clone();
        let (out, rotated) = open_log(&props)?;
        self.start(&mut st, props, out);
        Ok(format!("restarted{}\n", rotated_note(rotated)))
    }
}

fn rotated_note(rotated: bool) -> &'static str {
    if rotated {
        " (log rotated)"
    } else {
        ""
    }
}

/// Stores the enable state in the properties file, if there is one; a note on failure.
fn persist(st: &State, enabled: bool) -> String {
    let Some(path) = &st.config else {
        return String::new();
    };
    let r = Stored::load(path).and_then(|mut s| {
        s.enabled = enabled;
        s.save(path)
    });
    match r {
        Ok(()) => String::new(),
        Err(e) => format!(" (enable state not stored: {e})"),
    }
}

/// Rotates the log when needed and opens it for appending; whether it rotated.
fn open_log(p: &Props) -> Result<(BufWriter<File>, bool), String> {
    let f = &p.file;
    let what = |e: io::Error| format!("log_file {}: {e}", f.display());
    if let Some(dir) = f.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("log_file {}: directory {}: {e}", f.display(), dir.display()))?;
    }
    let rotated = rotate(f, p.threshold()).map_err(what)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(f)
        .map_err(|e| format!("log_file {}: cannot open for writing: {e}", f.display()))?;
    Ok((BufWriter::with_capacity(64 * 1024, file), rotated))
}

/// `path.N`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// When `path` holds at least `threshold` bytes: deletes `path.9`, renames `path.8` to
/// `path.9` ... `path.0` to `path.1`, and `path` to `path.0`. Whether it rotated.
pub fn rotate(path: &Path, threshold: u64) -> io::Result<bool> {
    let size = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ))
        }
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if size < threshold {
        return Ok(false);
    }
    match std::fs::remove_file(numbered(path, KEPT_FILES - 1)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for i in (0..KEPT_FILES - 1).rev() {
        match std::fs::rename(numbered(path, i), numbered(path, i + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(path, 0))?;
    Ok(true)
}

/// How long the logger thread gathers events after the first one woke it. While it sleeps
/// it is not waiting on the channel, so the data path's pushes wake nobody (no system call
/// per drop), and a burst is written and flushed at once.
const GATHER: Duration = Duration::from_millis(20);

/// The logger thread: formats and writes queued events in batches (see [`GATHER`]), flushing
/// after each; ends when its logger is gone.
fn writer(weak: &Weak<Logger>, rx: &Receiver<DropEvent>) {
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) if weak.strong_count() > 0 => continue,
            Err(_) => return,
        };
        let Some(lg) = weak.upgrade() else { return };
        lg.queue.len.fetch_sub(1, Relaxed);
        std::thread::sleep(GATHER);
        let mut st = lg.lock();
        write_one(&lg.queue, &mut st, &first);
        // At most one queue's worth per lock hold, so that control requests get their turn
        // during a flood.
        for _ in 0..QUEUE_CAP {
            let Ok(ev) = rx.try_recv() else { break };
            lg.queue.len.fetch_sub(1, Relaxed);
            write_one(&lg.queue, &mut st, &ev);
        }
        if let Some(o) = st.out.as_mut() {
            if o.flush().is_err() {
                lg.queue.write_errors.fetch_add(1, Relaxed);
            }
        }
    }
}

fn write_one(q: &DropQueue, st: &mut State, ev: &DropEvent) {
    let State {
        active, out, line, ..
    } = st;
    let (Some(p), Some(o)) = (active.as_ref(), out.as_mut()) else {
        return;
    };
    line.clear();
    record::format(ev, p.level, p.format, p.backtrace_depth as usize, line);
    match o.write_all(line.as_bytes()) {
        Ok(()) => q.written.fetch_add(1, Relaxed),
        Err(_) => q.write_errors.fetch_add(1, Relaxed),
    };
}

#[cfg(test)]
mod tests;
