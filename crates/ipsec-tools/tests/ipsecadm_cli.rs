//! End-to-end tests of `ipsecadm` and of ipsecd's properties and reload against a real
//! `ipsecd` (control and PF_KEY sockets only, no data plane) on temporary sockets: the
//! ipadm-style property commands (validation, persistence, a restart), that each property
//! changes what the daemon does, SIGHUP and `ipsecadm reload` (a broken file changes
//! nothing and is reported by file, line and column; a good one takes effect), that
//! keys-file errors never put key material in the log, the logger pass-through and the
//! systemd readiness notification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/daemon.rs"]
mod daemon;
use daemon::{collect, privileged, wait_for};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipsec_pfkey::consts::{SADB_GETSPI, SADB_SATYPE_ESP};
use ipsec_pfkey::wire::{Address, Message, SpiRange};
use ipsec_sys::seqpacket::{Conn, Recv, Sent};

const IPSECADM: &str = env!("CARGO_BIN_EXE_ipsecadm");
const IPSECKEY: &str = env!("CARGO_BIN_EXE_ipseckey");

const POLICY_A: &str = "{raddr 10.0.0.2} ipsec {encr_algs aes-gcm}\n";
const POLICY_B: &str = "{raddr 10.0.0.3} ipsec {encr_algs aes-gcm}\n";
/// Column 35 is `nosuch`.
const POLICY_BROKEN: &str = "{raddr 10.0.0.4} ipsec {encr_algs nosuch}\n";

/// Key material of the keys files (must never reach the log).
const KEY1: &str = "00112233445566778899aabbccddeeff";
const KEY2: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e7ff";

fn keys_line(spi: u32, key: &str) -> String {
    format!("add esp spi {spi} src 10.0.0.1 dst 10.0.0.2 encr_alg aes encrkey {key}\n")
}

/// An ipsecd (no TUN) on temporary sockets, its standard error in `log`; killed on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
    ctl: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: Option<PathBuf>, extra: &[&str], env: &[(&str, &Path)]) -> Option<Self> {
        if !privileged() {
            eprintln!("skipping: ipsecd serves only root or CAP_NET_ADMIN peers");
            return None;
        }
        let dir = dir.unwrap_or_else(|| daemon::scratch_dir("ipsecadm-cli"));
        let ctl = dir.join("control.sock");
        let log = dir.join("ipsecd.log");
        // A killed daemon leaves its socket files behind.
        let _ = std::fs::remove_file(&ctl);
        let child = Command::new(daemon::ipsecd_path(IPSECADM))
            .arg("--pfkey-socket")
            .arg(dir.join("pfkey.sock"))
            .arg("--control-socket")
            .arg(&ctl)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Self {
            child,
            dir,
            ctl,
            log,
        };
        let t0 = Instant::now();
        while !d.ctl.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ipsecd did not start: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn adm(&self, args: &[&str]) -> Output {
        Command::new(IPSECADM)
            .env("IRONSWAN_CONTROL_SOCKET", &self.ctl)
            .args(args)
            .output()
            .unwrap()
    }

    fn adm_ok(&self, args: &[&str]) -> String {
        let o = self.adm(args);
        assert!(
            o.status.success(),
            "ipsecadm {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// `ipsecadm ARGS` fails with status 1 and a message containing each of `want`.
    fn adm_err(&self, args: &[&str], want: &[&str]) -> String {
        let o = self.adm(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "ipsecadm {args:?}: {}",
            stdout(&o)
        );
        let e = stderr(&o);
        for w in want {
            assert!(e.contains(w), "ipsecadm {args:?}: {e:?} lacks {w:?}");
        }
        e
    }

    /// One raw control request and its reply.
    fn ctl(&self, req: &str) -> String {
        let c = Conn::connect(&self.ctl).unwrap();
        c.set_nonblocking(false).unwrap();
        assert!(matches!(c.send(req.as_bytes()).unwrap(), Sent::Done));
        let mut buf = vec![0u8; 1 << 20];
        match c.recv(&mut buf).unwrap() {
            Recv::Msg(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            _ => panic!("no reply to {req:?}"),
        }
    }

    fn stat(&self, key: &str) -> String {
        let s = self.ctl("stats");
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {s}"))
            .to_owned()
    }

    /// The CURRENT and PERSISTENT columns of one property.
    fn prop(&self, name: &str) -> (String, String) {
        let t = self.adm_ok(&["show-prop", "-p", name]);
        let row: Vec<&str> = t.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[1], name, "{t}");
        (row[3].to_owned(), row[4].to_owned())
    }

    fn policy(&self) -> String {
        self.ctl("policy list order all")
    }

    fn hup(&self) {
        let s = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(s.success());
    }

    fn wait_stat(&self, key: &str, want: &str) {
        let t0 = Instant::now();
        while self.stat(key) != want {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{key} never became {want}: {}",
                self.ctl("stats")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::take(&mut self.dir)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn properties_are_shown_validated_persisted_and_reset() {
    if !privileged() {
        return;
    }
    let dir = daemon::scratch_dir("ipsecadm-props");
    let props = dir.join("ipsecd.props");
    let pa = props.to_str().unwrap().to_owned();
    let d = Daemon::start(
        Some(dir.clone()),
        &["--props-file", &pa, "--larval-timeout", "50"],
        &[],
    )
    .unwrap();
    let t = d.adm_ok(&["show-prop"]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "PROTO",
            "PROPERTY",
            "PERM",
            "CURRENT",
            "PERSISTENT",
            "DEFAULT",
            "POSSIBLE"
        ]
    );
    assert_eq!(lines.len(), 12, "{t}");
    for (row, want) in [
        (
            "icmp-accept-clear",
            "ip icmp-accept-clear rw on -- on on,off",
        ),
        (
            "persock-require-priv",
            "ip persock-require-priv rw on -- on on,off",
        ),
        ("replay-size", "ipsec replay-size rw 64 -- 64 1-255"),
        (
            "larval-timeout",
            "ipsec larval-timeout rw 50 -- 90 1-4294967295",
        ),
        (
            "default-soft-addtime",
            "ipsec default-soft-addtime rw 24000 -- 24000 0-4294967295",
        ),
        (
            "nat-keepalive-interval",
            "esp nat-keepalive-interval rw 20 -- 20 0-600",
        ),
        ("padding-check", "esp padding-check rw on -- on on,off"),
    ] {
        let l = lines.iter().find(|l| l.contains(row)).unwrap();
        assert_eq!(l.split_whitespace().collect::<Vec<_>>().join(" "), want);
    }
    // By protocol; by name.
    let t = d.adm_ok(&["show-prop", "esp"]);
    assert_eq!(t.lines().count(), 3, "{t}");
    let t = d.adm_ok(&["show-prop", "-p", "replay-size,pim-accept-clear"]);
    assert_eq!(t.lines().count(), 3, "{t}");

    // Persistent: written (0600) before it takes effect; temporary: not written.
    assert!(!props.exists());
    assert_eq!(d.adm_ok(&["set-prop", "-p", "replay-size=32", "ipsec"]), "");
    assert_eq!(d.prop("replay-size"), ("32".into(), "32".into()));
    let text = std::fs::read_to_string(&props).unwrap();
    assert!(text.contains("\nreplay-size=32\n"), "{text}");
    assert_eq!(
        std::fs::metadata(&props).unwrap().permissions().mode() & 0o777,
        0o600
    );
    d.adm_ok(&["set-prop", "-t", "-p", "icmp-accept-clear=off"]);
    assert_eq!(d.prop("icmp-accept-clear"), ("off".into(), "--".into()));
    assert!(!std::fs::read_to_string(&props).unwrap().contains("icmp"));
    d.adm_ok(&["set-prop", "-p", "larval-timeout=33"]);

    // Errors name the property and what it takes; nothing changes.
    d.adm_err(
        &["set-prop", "-p", "replay-size=256"],
        &["invalid value \"256\" for replay-size: expected an integer from 1 to 255"],
    );
    d.adm_err(
        &["set-prop", "-p", "pim-accept-clear=maybe"],
        &["for pim-accept-clear: expected on or off"],
    );
    d.adm_err(
        &["set-prop", "-p", "no-such-prop=1"],
        &["unknown property \"no-such-prop\"", "larval-timeout"],
    );
    d.adm_err(
        &["set-prop", "-p", "larval-timeout=5", "esp"],
        &["larval-timeout does not apply to protocol esp (it belongs to protocol ipsec)"],
    );
    d.adm_err(&["show-prop", "tcp"], &["unknown protocol \"tcp\""]);
    d.adm_err(
        &["set-prop", "-p", "default-soft-addtime=30000"],
        &["default-soft-addtime (30000) must not exceed default-hard-addtime (28800)"],
    );
    assert_eq!(d.prop("replay-size").0, "32");
    let o = d.adm(&["set-prop", "replay-size=1"]);
    assert_eq!(o.status.code(), Some(2), "usage error: {}", stderr(&o));

    // Reset: the default, and out of the file.
    d.adm_ok(&["reset-prop", "-p", "replay-size"]);
    assert_eq!(d.prop("replay-size"), ("64".into(), "--".into()));
    let text = std::fs::read_to_string(&props).unwrap();
    assert!(!text.contains("replay-size"), "{text}");
    assert!(text.contains("larval-timeout=33"), "{text}");

    // A restart reads the file: its value wins over the option; temporary ones are gone.
    let dir = d.stop();
    let d = Daemon::start(
        Some(dir),
        &["--props-file", &pa, "--larval-timeout", "50"],
        &[],
    )
    .unwrap();
    assert_eq!(d.prop("larval-timeout"), ("33".into(), "33".into()));
    assert_eq!(d.prop("icmp-accept-clear"), ("on".into(), "--".into()));

    // A bad properties file stops the start with file:line:column.
    let dir = d.stop();
    std::fs::write(&props, "# x\nacquire-timeout = 0\n").unwrap();
    let o = Command::new(daemon::ipsecd_path(IPSECADM))
        .arg("--pfkey-socket")
        .arg(dir.join("p2.sock"))
        .arg("--control-socket")
        .arg(dir.join("c2.sock"))
        .args(["--props-file", &pa])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "{pa}:2:19: invalid value \"0\" for acquire-timeout: expected an integer from 1 to 4294967295"
        )),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn properties_change_what_the_daemon_does() {
    let Some(d) = Daemon::start(None, &[], &[]) else {
        return;
    };
    // icmp-accept-clear: clear ICMP from a protected peer is accepted, then not.
    let add = d.ctl(&format!("policy add p.conf\n{POLICY_A}"));
    assert!(add.starts_with("ok "), "{add}");
    let explain = || d.ctl("policy explain in 10.0.0.2 10.0.0.1 icmp 8 0");
    assert!(
        explain().contains("outcome: accepted in clear"),
        "{}",
        explain()
    );
    d.adm_ok(&["set-prop", "-t", "-p", "icmp-accept-clear=off", "ip"]);
    assert!(
        explain().contains("outcome: dropped in clear"),
        "{}",
        explain()
    );
    d.adm_ok(&["reset-prop", "-t", "-p", "icmp-accept-clear"]);
    assert!(
        explain().contains("outcome: accepted in clear"),
        "{}",
        explain()
    );

    // replay-size and the default lifetimes: the ACQUIRE proposal a key manager sees.
    let mut mon = Command::new(IPSECKEY)
        .env("IRONSWAN_PFKEY_SOCKET", d.path("pfkey.sock"))
        .arg("monitor")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mb = collect(&mut mon);
    assert!(wait_for(&mb, "type X_PROMISC"));
    d.adm_ok(&["set-prop", "-t", "-p", "replay-size=32"]);
    d.adm_ok(&["set-prop", "-t", "-p", "default-soft-addtime=1500"]);
    d.adm_ok(&["set-prop", "-t", "-p", "default-hard-addtime=2000"]);
    let r = d.ctl("acquire esp 10.0.0.1 10.0.0.9");
    assert!(r.starts_with("ok sent"), "{r}");
    assert!(
        wait_for(&mb, "Proposal, replay counter = 32."),
        "{}",
        mb.lock().unwrap()
    );
    assert!(wait_for(&mb, "HARD: post-add secs=2000"));
    assert!(wait_for(&mb, "SOFT: post-add secs=1500"));
    let _ = mon.kill();
    let _ = mon.wait();

    // acquire-timeout: with the default (15 s) a second ACQUIRE 1.2 s later is suppressed;
    // at 1 s it is sent.
    let r = d.ctl("acquire esp 10.0.0.1 10.0.0.10");
    assert!(r.starts_with("ok sent"), "{r}");
    d.adm_ok(&["set-prop", "-t", "-p", "acquire-timeout=1"]);
    let r = d.ctl("acquire esp 10.0.0.1 10.0.0.11");
    assert!(r.starts_with("ok sent"), "{r}");
    assert!(d
        .ctl("acquire esp 10.0.0.1 10.0.0.11")
        .starts_with("ok suppressed"));
    std::thread::sleep(Duration::from_millis(2100));
    let r = d.ctl("acquire esp 10.0.0.1 10.0.0.10");
    assert!(r.starts_with("ok suppressed"), "default timeout: {r}");
    let r = d.ctl("acquire esp 10.0.0.1 10.0.0.11");
    assert!(r.starts_with("ok sent"), "1 s timeout: {r}");

    // larval-timeout: a GETSPI's larval SA goes after 1 s.
    d.adm_ok(&["set-prop", "-t", "-p", "larval-timeout=1"]);
    let pf = Conn::connect(&d.path("pfkey.sock")).unwrap();
    pf.set_nonblocking(false).unwrap();
    let mut m = Message::new(SADB_GETSPI, SADB_SATYPE_ESP);
    m.seq = 7;
    m.pid = std::process::id();
    m.src = Some(Address::new("10.0.0.1:0".parse().unwrap()));
    m.dst = Some(Address::new("10.0.0.2:0".parse().unwrap()));
    m.spirange = Some(SpiRange {
        min: 0x1000,
        max: 0x1fff,
    });
    assert!(matches!(pf.send(&m.emit().unwrap()).unwrap(), Sent::Done));
    let mut buf = vec![0u8; 4096];
    let Recv::Msg(n) = pf.recv(&mut buf).unwrap() else {
        panic!("no GETSPI reply")
    };
    assert_eq!(Message::parse(&buf[..n]).unwrap().errno, 0);
    assert_eq!(d.stat("sas"), "1");
    d.wait_stat("sas", "0");
}

#[test]
fn reload_keeps_the_working_configuration_and_says_why() {
    if !privileged() {
        return;
    }
    let dir = daemon::scratch_dir("ipsecadm-reload");
    let (pol, keys, props) = (
        dir.join("pol.conf"),
        dir.join("keys"),
        dir.join("ipsecd.props"),
    );
    std::fs::write(&pol, POLICY_A).unwrap();
    std::fs::write(&keys, keys_line(0x1000, KEY1)).unwrap();
    std::fs::write(&props, "larval-timeout=40\n").unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let d = Daemon::start(
        Some(dir),
        &[
            "--policy-file",
            &s(&pol),
            "--keys-file",
            &s(&keys),
            "--props-file",
            &s(&props),
        ],
        &[],
    )
    .unwrap();
    assert!(d.policy().contains("10.0.0.2"), "{}", d.policy());
    assert_eq!(d.stat("sas"), "1");
    assert_eq!(d.prop("larval-timeout").0, "40");

    // A broken policy file: SIGHUP changes nothing and says where.
    std::fs::write(&pol, POLICY_BROKEN).unwrap();
    std::fs::write(&props, "larval-timeout=41\n").unwrap();
    d.hup();
    d.wait_stat("reloads_failed", "1");
    assert_eq!(d.stat("last_reload_failed"), "1");
    let place = format!(
        "error: reload refused, configuration unchanged: {}:1:35: ",
        pol.display()
    );
    assert!(d.log_text().contains(&place), "{}", d.log_text());
    assert!(d.policy().contains("10.0.0.2"), "{}", d.policy());
    assert_eq!(d.prop("larval-timeout").0, "40");

    // Good files: the new policy and properties are in effect.
    std::fs::write(&pol, POLICY_B).unwrap();
    std::fs::write(
        &keys,
        format!("{}{}", keys_line(0x1000, KEY1), keys_line(0x1001, KEY2)),
    )
    .unwrap();
    d.hup();
    d.wait_stat("reloads_ok", "1");
    let p = d.policy();
    assert!(p.contains("10.0.0.3") && !p.contains("10.0.0.2"), "{p}");
    assert_eq!(d.prop("larval-timeout"), ("41".into(), "41".into()));
    assert_eq!(d.stat("sas"), "2");
    assert_eq!(d.stat("last_reload_failed"), "0");

    // ipsecadm reload is the same; a broken properties file is refused with its place.
    std::fs::write(&props, "larval-timeout=0\n").unwrap();
    d.adm_err(
        &["reload"],
        &[
            "reload refused, configuration unchanged",
            &format!(
                "{}:1:16: invalid value \"0\" for larval-timeout",
                props.display()
            ),
        ],
    );
    assert_eq!(d.stat("reloads_failed"), "2");
    // An SA added by other means (ipseckey -f) survives a reload that leaves the keys
    // file as it was: the SADB is not flushed.
    let extra = d.path("extra.keys");
    std::fs::write(&extra, keys_line(0x1003, KEY2)).unwrap();
    std::fs::set_permissions(&extra, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Command::new(IPSECKEY)
        .env("IRONSWAN_PFKEY_SOCKET", d.path("pfkey.sock"))
        .arg("-f")
        .arg(&extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.stat("sas"), "3");
    std::fs::write(&props, "larval-timeout=42\n").unwrap();
    let out = d.adm_ok(&["reload"]);
    assert!(
        out.contains(&format!("{} unchanged, SAs kept", keys.display())),
        "{out}"
    );
    assert_eq!(d.prop("larval-timeout").0, "42");
    assert_eq!(d.stat("sas"), "3");

    // A keys file with a syntax error: the SADB stays, and neither the log nor the reply
    // shows the offending text (it may be key material) or any key.
    std::fs::write(
        &keys,
        format!(
            "{}add esp spi 0x1002 src 10.0.0.1 dst 10.0.0.2 encr_alg aes encrkey {KEY2} {SECRET}\n",
            keys_line(0x1000, KEY1)
        ),
    )
    .unwrap();
    let e = d.adm_err(&["reload"], &[&format!("{}:2:", keys.display())]);
    d.hup();
    d.wait_stat("reloads_failed", "4");
    assert_eq!(d.stat("sas"), "3");
    let log = d.log_text();
    assert!(log.contains(&format!("{}:2:", keys.display())), "{log}");
    for text in [&e, &log] {
        for secret in [SECRET, KEY1, KEY2, "5ec7e7"] {
            assert!(!text.contains(secret), "key material in {text}");
        }
    }
}

#[test]
fn logger_requests_pass_through_and_systemd_hears_ready() {
    if !privileged() {
        return;
    }
    let dir = daemon::scratch_dir("ipsecadm-notify");
    let notify = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let d = Daemon::start(Some(dir), &[], &[("NOTIFY_SOCKET", &notify)]).unwrap();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    // Whatever the daemon's logger supports, an unknown action gets its error reply,
    // passed on verbatim, and a failure status.
    d.adm_err(&["logger", "no-such-action", "x=1"], &["no-such-action"]);
    let o = d.adm(&["logger"]);
    assert_eq!(o.status.code(), Some(2));
    // An unreachable daemon is a clear error.
    let o = Command::new(IPSECADM)
        .args(["--socket", "/nonexistent/ctl.sock", "reload"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot reach ipsecd at /nonexistent/ctl.sock"),
        "{}",
        stderr(&o)
    );
}
