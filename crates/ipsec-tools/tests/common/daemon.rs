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

/// An ipsecd (no data plane) with its PF_KEY and control sockets in a scratch directory;
/// killed, and the directory removed, on drop.
pub struct Ipsecd {
    child: std::process::Child,
    /// The scratch directory.
    pub dir: PathBuf,
    /// The PF_KEY socket.
    pub pfkey: PathBuf,
    /// The control socket.
    pub control: PathBuf,
}

impl Ipsecd {
    /// Starts ipsecd (found next to `sibling`) with `extra` arguments and waits for its
    /// control socket; `None` (the test should return) without privilege.
    pub fn start(sibling: &str, prefix: &str, extra: &[&str]) -> Option<Self> {
        if !privileged() {
            eprintln!("skipping: ipsecd serves only root or CAP_NET_ADMIN peers");
            return None;
        }
        let dir = scratch_dir(prefix);
        let (pfkey, control) = (dir.join("pfkey.sock"), dir.join("control.sock"));
        let child = std::process::Command::new(ipsecd_path(sibling))
            .arg("--pfkey-socket")
            .arg(&pfkey)
            .arg("--control-socket")
            .arg(&control)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let d = Self {
            child,
            dir,
            pfkey,
            control,
        };
        let t0 = std::time::Instant::now();
        while !d.control.exists() || !d.pfkey.exists() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "ipsecd did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(d)
    }

    /// A command for the tool `bin` with this daemon's sockets in its environment.
    pub fn tool(&self, bin: &str) -> std::process::Command {
        let mut c = std::process::Command::new(bin);
        c.env("IRONSWAN_PFKEY_SOCKET", &self.pfkey)
            .env("IRONSWAN_CONTROL_SOCKET", &self.control);
        c
    }
}

impl Drop for Ipsecd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
