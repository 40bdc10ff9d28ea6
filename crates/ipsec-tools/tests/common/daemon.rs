//! What the command tests that talk to a real ipsecd share: a scratch directory, whether
//! this process may drive the daemon, and where the ipsecd binary is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh, empty directory under the system temp dir, named after `prefix` and this process.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Root or CAP_NET_ADMIN: what ipsecd requires of its clients.
pub fn privileged() -> bool {
    ipsec_sys::geteuid() == 0
        || ipsec_sys::seqpacket::has_capability(
            std::process::id() as i32,
            ipsec_sys::seqpacket::CAP_NET_ADMIN,
        )
}

/// The ipsecd binary next to the tool binary `sibling` (scripts/test.sh builds them all).
pub fn ipsecd_path(sibling: &str) -> PathBuf {
    let p = Path::new(sibling).with_file_name("ipsecd");
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build -p ipsecd` (scripts/test.sh builds every binary)",
        p.display()
    );
    p
}

/// Collects a child's standard output on a thread.
pub fn collect(child: &mut Child) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = Arc::clone(&buf);
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let mut g = b.lock().unwrap();
            g.push_str(&line);
            g.push('\n');
        }
    });
    buf
}

/// Whether `what` appears in `buf` within 10 s.
pub fn wait_for(buf: &Arc<Mutex<String>>, what: &str) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if buf.lock().unwrap().contains(what) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
