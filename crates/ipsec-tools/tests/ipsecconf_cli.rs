//! End-to-end tests of the `ipsecconf` command against a real `ipsecd` (control socket only,
//! no data plane) on temporary sockets.
//!
//! `ipsecd` is the binary next to `ipsecconf` in the target directory (`scripts/test.sh`
//! builds every binary first; by hand: `cargo build -p ipsecd`). ipsecd answers only
//! privileged peers (root or CAP_NET_ADMIN); without privilege the tests that need the
//! daemon say so and return.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/daemon.rs"]
mod daemon;
use daemon::privileged;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const IPSECCONF: &str = env!("CARGO_BIN_EXE_ipsecconf");

/// Two host entries: an ESP entry and a bypass entry (which matches first).
const TWO: &str = "# two entries\n\
    {laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-gcm}\n\
    {raddr 10.0.0.3 dir both} bypass {}\n";
const THIRD: &str = "{laddr 10.0.0.1 raddr 10.0.0.4 ulp tcp rport 443} ipsec {encr_algs aes-cbc encr_auth_algs hmac-sha256}\n";

fn scratch_dir() -> PathBuf {
    daemon::scratch_dir("ipsecconf-cli")
}

fn ipsecd_path() -> PathBuf {
    daemon::ipsecd_path(IPSECCONF)
}

/// An ipsecd (no TUN) on temporary sockets, killed on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
    ctl: PathBuf,
}

impl Daemon {
    fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Option<Self> {
        if !privileged() {
            eprintln!("skipping: ipsecd serves only root or CAP_NET_ADMIN peers");
            return None;
        }
        let dir = scratch_dir();
        let ctl = dir.join("control.sock");
        let child = Command::new(ipsecd_path())
            .arg("--pfkey-socket")
            .arg(dir.join("pfkey.sock"))
            .arg("--control-socket")
            .arg(&ctl)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Self { child, dir, ctl };
        let t0 = Instant::now();
        while !d.ctl.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ipsecd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(d)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(IPSECCONF);
        c.env("IRONSWAN_CONTROL_SOCKET", &self.ctl);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "ipsecconf {args:?} failed: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `#INDEX` lines of a listing.
fn indexes(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| l.starts_with("#INDEX"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn add_then_list() {
    let Some(d) = Daemon::start() else { return };
    assert_eq!(d.ok(&["-l"]), "", "a new daemon has no policy");
    let f = d.file("two.conf", TWO);
    assert_eq!(d.ok(&["-a", &f]), "");
    // -l: match order (the bypass entry first); each entry after its #INDEX line.
    let l = d.ok(&["-l"]);
    assert_eq!(
        l,
        "#INDEX 2\n{raddr 10.0.0.3 dir both} bypass {}\n\
         #INDEX 1\n{laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-gcm}\n"
    );
    // No flags: the entries in the order they were added.
    assert_eq!(indexes(&d.ok(&[])), ["#INDEX 1", "#INDEX 2"]);
    // The listing is itself a policy file: -c accepts it.
    let again = d.file("again.conf", &l);
    assert!(d
        .ok(&["-c", &again])
        .contains("does not contain any errors"));
    // A second file's entries follow.
    let g = d.file("third.conf", THIRD);
    d.ok(&["-a", &g]);
    assert_eq!(
        indexes(&d.ok(&["-l"])),
        ["#INDEX 2", "#INDEX 1", "#INDEX 3"]
    );
    assert!(d.ok(&["-l"]).contains(
        "{laddr 10.0.0.1 raddr 10.0.0.4 rport 443 ulp tcp} ipsec {encr_algs aes-cbc encr_auth_algs hmac-sha256}"
    ));
}

#[test]
fn syntax_error_changes_nothing() {
    let Some(d) = Daemon::start() else { return };
    let f = d.file("two.conf", TWO);
    d.ok(&["-a", &f]);
    let before = d.ok(&["-l"]);
    // A good entry first, then an error on line 3: nothing of the file is added.
    let bad = d.file(
        "bad.conf",
        "{raddr 10.0.0.9 dir out} drop {}\n\n{laddr 10.0.0.1} ipsec {encr_algs nosuch}\n",
    );
    let o = d.run(&["-a", &bad]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{bad}:3:35: unexpected `nosuch`")),
        "{e}"
    );
    assert_eq!(d.ok(&["-l"]), before);
    // A semantic error (bypass without a direction) is reported with its place too.
    let bad2 = d.file("bad2.conf", "{raddr 10.0.0.9}\n  bypass {}\n");
    let o = d.run(&["-a", &bad2]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("{bad2}:")), "{}", stderr(&o));
    assert_eq!(d.ok(&["-l"]), before);
    // So is -Fa: the active policy stays.
    let o = d.run(&["-Fa", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(d.ok(&["-l"]), before);
}

#[test]
fn flush_delete_replace_remove() {
    let Some(d) = Daemon::start() else { return };
    let two = d.file("two.conf", TWO);
    let third = d.file("third.conf", THIRD);
    d.ok(&["-a", &two]);
    d.ok(&["-a", &third]);
    // -d: one entry; indexes are not reused or renumbered.
    d.ok(&["-d", "2"]);
    assert_eq!(indexes(&d.ok(&["-l"])), ["#INDEX 1", "#INDEX 3"]);
    let o = d.run(&["-d", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Non-existent index 2"),
        "{}",
        stderr(&o)
    );
    let o = d.run(&["-d", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Invalid index"), "{}", stderr(&o));
    // -r: removes the entries of a file that are active; others draw a warning.
    let o = d.run(&["-r", &two]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not in the active policy"),
        "{}",
        stderr(&o)
    );
    assert_eq!(indexes(&d.ok(&["-l"])), ["#INDEX 3"]);
    // -Fa: exactly the file, in one step, with new indexes.
    d.ok(&["-Fa", &two]);
    assert_eq!(indexes(&d.ok(&[])), ["#INDEX 4", "#INDEX 5"]);
    assert!(!d.ok(&["-l"]).contains("rport 443"));
    // -F: nothing left.
    d.ok(&["-F"]);
    assert_eq!(d.ok(&["-l"]), "");
    assert_eq!(d.ok(&[]), "");
    // Standard input.
    let mut c = d
        .cmd()
        .args(["-a", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(THIRD.as_bytes()).unwrap();
    assert!(c.wait_with_output().unwrap().status.success());
    assert_eq!(indexes(&d.ok(&["-l"])), ["#INDEX 6"]);
}

#[test]
fn tunnels() {
    let Some(d) = Daemon::start() else { return };
    let f = d.file(
        "tun.conf",
        "{laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-gcm}\n\
         {tunnel ip.tun0 negotiate tunnel laddr 10.1.0.0/16 raddr 10.2.0.0/16} ipsec {encr_algs aes-gcm}\n",
    );
    d.ok(&["-a", &f]);
    assert_eq!(indexes(&d.ok(&["-l"])), ["#INDEX 1"]);
    assert_eq!(
        indexes(&d.ok(&["-l", "-i", "ip.tun0"])),
        ["#INDEX ip.tun0,2"]
    );
    assert_eq!(indexes(&d.ok(&["-L"])), ["#INDEX 1", "#INDEX ip.tun0,2"]);
    // A tunnel's entry is deleted through its tunnel.
    let o = d.run(&["-d", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("-i ip.tun0"), "{}", stderr(&o));
    d.ok(&["-d", "ip.tun0,2"]);
    assert_eq!(indexes(&d.ok(&["-L"])), ["#INDEX 1"]);
    // -f -i: one tunnel's policy only; -f: the host's only.
    d.ok(&["-a", &f]);
    d.ok(&["-f", "-i", "ip.tun0"]);
    assert_eq!(indexes(&d.ok(&["-L"])), ["#INDEX 1", "#INDEX 3"]);
    d.ok(&["-a", &f]);
    d.ok(&["-f"]);
    assert_eq!(indexes(&d.ok(&["-L"])), ["#INDEX ip.tun0,6"]);
    // -Fa empties the tunnels too; -fa keeps them.
    let host = d.file("host.conf", THIRD);
    d.ok(&["-fa", &host]);
    assert_eq!(indexes(&d.ok(&["-L"])), ["#INDEX 7", "#INDEX ip.tun0,6"]);
    d.ok(&["-Fa", &host]);
    assert_eq!(indexes(&d.ok(&["-L"])), ["#INDEX 8"]);
}

#[test]
fn check_needs_no_daemon() {
    let dir = scratch_dir();
    let good = dir.join("good.conf");
    std::fs::write(&good, TWO).unwrap();
    let bad = dir.join("bad.conf");
    std::fs::write(
        &bad,
        "{laddr 10.0.0.1 raddr 10.0.0.2}\n ipsec {encr_algs aes-gcm\n",
    )
    .unwrap();
    let nowhere = dir.join("no.sock");
    let run = |f: &Path| {
        Command::new(IPSECCONF)
            .arg("--socket")
            .arg(&nowhere)
            .arg("-c")
            .arg(f)
            .output()
            .unwrap()
    };
    let o = run(&good);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "IPsec configuration does not contain any errors.\nIPsec policy was not modified.\n"
    );
    let o = run(&bad);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("{}:3:1: unexpected `end of input`", bad.display())),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    let o = run(&dir.join("missing.conf"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot be opened"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn daemon_down() {
    let dir = scratch_dir();
    let sock = dir.join("control.sock");
    let f = dir.join("p.conf");
    std::fs::write(&f, TWO).unwrap();
    for args in [
        vec!["-l"],
        vec!["-a", f.to_str().unwrap()],
        vec!["-F"],
        vec![],
    ] {
        let o = Command::new(IPSECCONF)
            .env("IRONSWAN_CONTROL_SOCKET", &sock)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!("cannot reach ipsecd at {}", sock.display()))
                && e.contains("is ipsecd running"),
            "{e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unprivileged_refused() {
    if ipsec_sys::geteuid() != 0 {
        eprintln!("skipping: needs root to run ipsecconf as nobody");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipping: no setpriv");
        return;
    }
    let Some(d) = Daemon::start() else { return };
    let f = d.file("two.conf", TWO);
    d.ok(&["-a", &f]);
    let before = d.ok(&["-l"]);
    let nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(IPSECCONF)
            .args(args)
            .env("IRONSWAN_CONTROL_SOCKET", &d.ctl)
            .output()
            .unwrap()
    };
    // The socket (mode 0600) keeps nobody out...
    let o = nobody(&["-F"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // ...and so does ipsecd itself when the socket is opened up.
    std::fs::set_permissions(&d.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.ctl, std::fs::Permissions::from_mode(0o666)).unwrap();
    for args in [&["-F"][..], &["-l"][..]] {
        let o = nobody(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).contains("permission denied: needs root or CAP_NET_ADMIN"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(d.ok(&["-l"]), before);
}

#[test]
fn warnings_unless_quiet() {
    let Some(d) = Daemon::start() else { return };
    // Encryption without authentication (Solaris' DANGER warning), and an entry that the
    // bypass entry before it shadows (the SPD analysis).
    let f = d.file(
        "warn.conf",
        "{laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-cbc}\n\
         {raddr 10.0.0.3 dir both} bypass {}\n\
         {laddr 10.0.0.1 raddr 10.0.0.3 ulp tcp} ipsec {encr_algs aes-gcm}\n",
    );
    let o = d.run(&["-a", &f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "{f}:1: warning: encryption with no authentication"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "{f}:3: warning: entry #INDEX 3 can never match: every packet it matches is decided first by #INDEX 2"
        )),
        "{e}"
    );
    assert_eq!(stdout(&o), "");
    let o = d.run(&["-Fa", &f, "-q"]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
    let o = d.run(&["-q", "-a", &f]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
    // -c warns the same way, naming lines.
    let o = d.run(&["-c", &f]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("warning: encryption with no authentication")
            && stderr(&o).contains("the entry on line 3 can never match"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn policy_file_loaded_at_start() {
    if !privileged() {
        return;
    }
    let dir = scratch_dir();
    let f = dir.join("init.conf");
    std::fs::write(&f, TWO).unwrap();
    let Some(d) = Daemon::start_with(&["--policy-file", f.to_str().unwrap()]) else {
        return;
    };
    // Listed as written in the file (it goes through the same store as -a), in match
    // order, with indexes that -d accepts.
    let l = d.ok(&["-l"]);
    assert_eq!(
        l,
        "#INDEX 2\n{raddr 10.0.0.3 dir both} bypass {}\n\
         #INDEX 1\n{laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-gcm}\n"
    );
    d.ok(&["-d", "1"]);
    assert_eq!(indexes(&d.ok(&["-l"])), ["#INDEX 2"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn numeric_and_explain() {
    let Some(d) = Daemon::start() else { return };
    let f = d.file(
        "names.conf",
        "{raddr localhost dir out} drop {}\n\
         {laddr 10.0.0.1 raddr 10.0.0.4 ulp tcp rport 443} ipsec {encr_algs aes-gcm}\n",
    );
    let o = d.run(&["-a", &f]);
    if !o.status.success() {
        eprintln!("skipping the name part: {}", stderr(&o));
        return;
    }
    assert!(d.ok(&["-l"]).contains("{raddr localhost dir out} drop {}"));
    let n = d.ok(&["-l", "-n"]);
    assert!(!n.contains("localhost"), "{n}");
    assert!(
        n.contains("{raddr 127.0.0.1 dir out} drop {}")
            || n.contains("{raddr ::1 dir out} drop {}"),
        "{n}"
    );
    let x = d.ok(&["--explain", "10.0.0.1 10.0.0.4 tcp 40000 443"]);
    assert!(x.contains("decided by rule 1"), "{x}");
    assert!(
        x.contains(&format!("rule 1 is entry #INDEX 2 ({f}:2)")),
        "{x}"
    );
    assert!(x.contains("outcome: protected in transport mode"), "{x}");
    let x = d.ok(&[
        "--explain",
        "10.0.0.4 10.0.0.1 tcp 443 40000",
        "--dir",
        "in",
    ]);
    assert!(x.contains("dropped in clear"), "{x}");
    let o = d.run(&["--explain", "10.0.0.1 nonsense tcp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not an IP address"), "{}", stderr(&o));
}

#[test]
fn large_policy_is_paged() {
    let Some(d) = Daemon::start() else { return };
    // About 3000 entries: the request (~200 KB) and the listing need more than one page.
    let mut text = String::new();
    for i in 0..3000u32 {
        text.push_str(&format!(
            "{{laddr 10.0.0.1 raddr 10.{}.{}.{} ulp tcp rport 443}} ipsec {{encr_algs aes-gcm}}\n",
            1 + i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    let f = d.file("big.conf", &text);
    d.ok(&["-q", "-a", &f]);
    let l = d.ok(&["-l"]);
    assert_eq!(indexes(&l).len(), 3000);
    assert_eq!(indexes(&l).first().map(String::as_str), Some("#INDEX 1"));
    assert_eq!(indexes(&l).last().map(String::as_str), Some("#INDEX 3000"));
}
