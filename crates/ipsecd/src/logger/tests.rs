//! The logger's own tests: rotation, unwritable files, refresh and restart, rate limiting
//! and the flood through the real enqueue API with a blocked writer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::sync::atomic::{AtomicU32, Ordering};

use super::record::stage;
use super::*;

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh directory for one test (removed by [`Dir::drop`]).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("ironswan-logger-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An IPv4 UDP packet 192.0.2.1:1000 -> 192.0.2.2:2000.
fn udp() -> Vec<u8> {
    let mut p = vec![0u8; 60];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&60u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[192, 0, 2, 1]);
    p[16..20].copy_from_slice(&[192, 0, 2, 2]);
    p[20..22].copy_from_slice(&1000u16.to_be_bytes());
    p[22..24].copy_from_slice(&2000u16.to_be_bytes());
    p
}

/// A logger with a properties file in `dir` whose log file is `dir/ipsec.log`, interval 0.
fn logger(dir: &Path, extra: &str) -> (Arc<Logger>, PathBuf) {
    let cfg = dir.join("logger.conf");
    let log = dir.join("ipsec.log");
    fs::write(
        &cfg,
        format!("log_file={}\nlog_interval_ms=0\n{extra}", log.display()),
    )
    .unwrap();
    let s = Stored::load(&cfg).unwrap();
    (Logger::new(Some(cfg), s.props, QUEUE_CAP).unwrap(), log)
}

fn push(lg: &Logger, rule: usize) -> Pushed {
    lg.push(
        Dir::Out,
        "spd_explicit",
        Some(rule),
        None,
        stage::OUT_SPD,
        &udp(),
    )
}

/// Waits until the writer has written `n` records in all (a hang fails after 20 s).
fn wait_written(lg: &Logger, n: u64) {
    let t0 = Instant::now();
    while lg.queue.written.load(Relaxed) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "writer wrote {} of {n}",
            lg.queue.written.load(Relaxed)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // The flush follows the batch.
    std::thread::sleep(Duration::from_millis(20));
}

fn ok(r: String) -> String {
    assert!(r.starts_with("ok"), "{r}");
    r
}

#[test]
fn rotation_at_the_threshold_keeps_exactly_ten_old_files() {
    let d = TempDir::new("rotate");
    let (lg, log) = logger(&d.0, "");
    ok(lg.request("enable"));
    for generation in 0..13 {
        assert_eq!(push(&lg, generation), Pushed::Queued);
        wait_written(&lg, generation as u64 + 1);
        let r = ok(lg.request("restart"));
        assert!(
            r.contains("log rotated"),
            "1 byte threshold: rotates every restart: {r}"
        );
    }
    // The live log is new and empty; .0 holds generation 12 ... .9 generation 3.
    assert_eq!(fs::read_to_string(&log).unwrap(), "");
    for i in 0..KEPT_FILES {
        let t = fs::read_to_string(numbered(&log, i)).unwrap();
        assert!(t.contains(&format!(" rule={} ", 12 - i)), "{i}: {t}");
        assert_eq!(t.lines().count(), 1);
    }
    assert!(!numbered(&log, KEPT_FILES).exists());
    let files = fs::read_dir(&d.0).unwrap().count();
    assert_eq!(
        files,
        1 + 1 + KEPT_FILES,
        "logger.conf, ipsec.log and ten old files"
    );
}

#[test]
fn below_the_threshold_the_log_is_appended() {
    let d = TempDir::new("append");
    let (lg, log) = logger(&d.0, "log_rotation_size=2\nlog_size_units=K\n");
    ok(lg.request("enable"));
    push(&lg, 1);
    wait_written(&lg, 1);
    let r = ok(lg.request("restart"));
    assert!(!r.contains("rotated"), "{r}");
    push(&lg, 2);
    wait_written(&lg, 2);
    ok(lg.request("disable"));
    let r = ok(lg.request("enable"));
    assert!(!r.contains("rotated"), "{r}");
    let t = fs::read_to_string(&log).unwrap();
    assert_eq!(t.lines().count(), 2, "{t}");
    assert!(!numbered(&log, 0).exists());
    // Past 2 KiB the next enable rotates.
    fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&[b'x'; 2048])
        .unwrap();
    ok(lg.request("disable"));
    assert!(ok(lg.request("enable")).contains("rotated"));
    assert!(numbered(&log, 0).exists());
}

#[test]
fn unwritable_log_file_fails_enable_and_restart_keeping_the_previous_state() {
    let d = TempDir::new("unwritable");
    let (lg, log) = logger(&d.0, "");
    let cfg = d.0.join("logger.conf");
    // A directory where the log file should be (root ignores permission bits).
    let dir_as_file = d.0.join("adir");
    fs::create_dir(&dir_as_file).unwrap();
    ok(lg.request(&format!("setprop log_file={}", dir_as_file.display())));
    ok(lg.request("refresh"));
    let r = lg.request("enable");
    assert!(
        r.starts_with("error log_file ") && r.contains("adir") && r.contains("not a regular file"),
        "{r}"
    );
    assert!(!lg.is_enabled());
    assert!(lg.request("status").contains("state=disabled"));
    assert!(
        Stored::load(&cfg).unwrap().enabled.eq(&false),
        "a failed enable is not stored"
    );
    // A path below a regular file.
    ok(lg.request(&format!("setprop log_file={}/x/ipsec.log", log.display())));
    fs::write(&log, "").unwrap();
    ok(lg.request("refresh"));
    let r = lg.request("enable");
    assert!(
        r.starts_with("error log_file ") && r.contains("ipsec.log/x"),
        "{r}"
    );
    assert!(!lg.is_enabled());

    // Enabled on a good file, a restart onto a bad one fails and keeps logging as before.
    ok(lg.request(&format!("setprop log_file={}", log.display())));
    ok(lg.request("refresh"));
    ok(lg.request("enable"));
    assert!(Stored::load(&cfg).unwrap().enabled);
    ok(lg.request(&format!("setprop log_file={}", dir_as_file.display())));
    ok(lg.request("refresh"));
    let r = lg.request("restart");
    assert!(r.starts_with("error log_file "), "{r}");
    assert!(lg.is_enabled());
    let s = lg.request("status");
    assert!(s.contains(&format!("log_file={}\n", log.display())), "{s}");
    push(&lg, 7);
    wait_written(&lg, 1);
    assert!(fs::read_to_string(&log).unwrap().contains(" rule=7 "));

    // A start whose log file cannot be opened fails with the reason.
    let Err(e) = init_check(&cfg) else {
        panic!("enabled on an unwritable log file")
    };
    assert!(e.contains("log_file") && e.contains("adir"), "{e}");
}

/// What [`init`] does, without installing the global logger.
fn init_check(cfg: &Path) -> Result<Arc<Logger>, String> {
    let s = Stored::load(cfg)?;
    let lg = Logger::new(Some(cfg.to_path_buf()), s.props, 16).map_err(|e| e.to_string())?;
    lg.enable()?;
    Ok(lg)
}

#[test]
fn setprop_refresh_and_restart_semantics() {
    let d = TempDir::new("refresh");
    let (lg, log) = logger(&d.0, "");
    ok(lg.request("enable"));
    let r = lg.request("setprop log_level=minimal+stack");
    assert!(r.starts_with("error log_level: minimal excludes"), "{r}");
    let r = lg.request("setprop colour=red");
    assert!(r.starts_with("error unknown property"), "{r}");
    assert!(lg
        .request("bogus")
        .starts_with("error unknown logger request"));
    ok(lg.request("setprop log_level=stack+message"));
    // Stored, not yet read.
    assert_eq!(
        ok(lg.request("getprop log_level")),
        "ok\nlog_level=message+stack\n"
    );
    assert!(lg.request("status").contains("log_level=message+packet\n"));
    assert!(!lg.request("status").contains("pending"));
    // Refresh reads it; restart applies it.
    assert!(ok(lg.request("refresh")).contains("restart the logger to apply"));
    let s = lg.request("status");
    assert!(
        s.contains("log_level=message+packet\n") && s.contains("pending="),
        "{s}"
    );
    push(&lg, 1);
    wait_written(&lg, 1);
    ok(lg.request("setprop log_rotation_size=1"));
    ok(lg.request("setprop log_size_units=g"));
    ok(lg.request("refresh"));
    ok(lg.request("restart"));
    assert!(lg.request("status").contains("log_level=message+stack\n"));
    push(&lg, 2);
    wait_written(&lg, 2);
    let t = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert!(
        lines[0].contains(" | len=60 ip=v4") && !lines[0].contains("stack="),
        "{t}"
    );
    assert!(
        !lines[1].contains(" | len=")
            && lines[1].ends_with("| stack=tun_read>packet_key>spd_outbound"),
        "{t}"
    );
    // A bad properties file: refresh fails, naming file, line and column; the snapshot stays.
    let cfg = d.0.join("logger.conf");
    fs::write(&cfg, "log_level=message\nformat = yaml\n").unwrap();
    let r = lg.request("refresh");
    assert!(
        r.starts_with(&format!("error {}:2:10: format: \"yaml\"", cfg.display())),
        "{r}"
    );
    ok(lg.request("restart"));
    assert!(lg.request("status").contains("log_level=message+stack\n"));
}

#[test]
fn json_lines_format() {
    let d = TempDir::new("json");
    let (lg, log) = logger(&d.0, "format=json\nlog_level=message+packet+stack\n");
    ok(lg.request("enable"));
    push(&lg, 4);
    wait_written(&lg, 1);
    let t = fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(t.trim_end()).unwrap();
    assert_eq!(v["rule"], "4");
    assert_eq!(v["src"], "192.0.2.1");
    assert_eq!(v["packet"]["dport"], "2000");
    assert_eq!(v["stack"][2], "spd_outbound");
}

#[test]
fn rate_limit_lets_one_record_through_per_interval() {
    let d = TempDir::new("rate");
    let (lg, log) = logger(&d.0, "log_interval_ms=60000\n");
    ok(lg.request("enable"));
    let results: Vec<Pushed> = (0..1000).map(|i| push(&lg, i)).collect();
    assert_eq!(results[0], Pushed::Queued);
    assert!(results[1..].iter().all(|r| *r == Pushed::RateLimited));
    wait_written(&lg, 1);
    assert_eq!(lg.queue.rate_limited.load(Relaxed), 999);
    assert!(lg.request("status").contains("log_rate_limited=999\n"));
    assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 1);
    // Interval 0: no limit.
    ok(lg.request("setprop log_interval_ms=0"));
    ok(lg.request("refresh"));
    ok(lg.request("restart"));
    assert!((0..100).all(|i| push(&lg, i) == Pushed::Queued));
    // A short interval: the next record passes once it has elapsed.
    ok(lg.request("setprop log_interval_ms=50"));
    ok(lg.request("refresh"));
    ok(lg.request("restart"));
    assert_eq!(push(&lg, 0), Pushed::Queued);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(push(&lg, 0), Pushed::Queued);
}

fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A million drops pushed while the writer is blocked: the pusher never waits, the queue
/// never holds more than its capacity (plus the one event the blocked writer took), every
/// loss is counted, and memory does not grow with the flood.
#[test]
fn flood_of_a_million_drops_with_a_blocked_writer() {
    let d = TempDir::new("flood");
    let (lg, _log) = logger(&d.0, "");
    ok(lg.request("enable"));
    let rss0 = rss_kib();
    let blocked = lg.lock(); // the writer cannot write while this is held
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let lg2 = Arc::clone(&lg);
    std::thread::spawn(move || {
        let mut max_seen = 0;
        for i in 0..1_000_000usize {
            push(&lg2, i);
            max_seen = max_seen.max(lg2.queue.len());
        }
        let _ = done_tx.send(max_seen);
    });
    // A pusher that blocked on the writer would never finish while the lock is held.
    let max_seen = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the pusher blocked behind the logger");
    let q = &lg.queue;
    let (queued, full) = (q.queued.load(Relaxed), q.full.load(Relaxed));
    assert_eq!(queued + full, 1_000_000, "every event queued or counted");
    assert_eq!(q.rate_limited.load(Relaxed), 0);
    assert!(queued <= (QUEUE_CAP + 1) as u64, "queued {queued}");
    assert!(queued >= QUEUE_CAP as u64, "the queue filled: {queued}");
    assert!(q.max_len() <= QUEUE_CAP + 1, "max {}", q.max_len());
    assert!(max_seen <= QUEUE_CAP + 1);
    let grown = rss_kib().saturating_sub(rss0);
    // 1,000,000 events of ~170 bytes would be ~170 MB; the queue's slots are ~0.7 MB (the
    // margin is for whatever tests running alongside allocate).
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    drop(blocked);
    assert!(lg
        .request("status")
        .contains(&format!("log_queue_full={full}\n")));
    wait_written(&lg, queued);
    assert_eq!(q.len(), 0);
}
