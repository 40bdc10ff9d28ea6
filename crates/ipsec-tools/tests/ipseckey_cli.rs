//! End-to-end tests of the `ipseckey` command against a real `ipsecd` serving PF_KEY on a
//! temporary socket.
//!
//! `ipsecd` is the binary next to `ipseckey` in the target directory (`scripts/test.sh`
//! builds every binary first; by hand: `cargo build -p ipsecd`). ipsecd answers only
//! privileged peers (root or CAP_NET_ADMIN); without privilege the tests that need the
//! daemon say so and return.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/daemon.rs"]
mod daemon;
use daemon::{collect, privileged, wait_for};

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const IPSECKEY: &str = env!("CARGO_BIN_EXE_ipseckey");

const ESP_A: &str = "add esp spi 0x1000 src 10.0.0.1 dst 10.0.0.2 encr_alg aes \
    encrkey 00112233445566778899aabbccddeeff auth_alg sha256 \
    authkey 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
    soft_addtime 3000 hard_addtime 3600";
const AH_B: &str = "add ah spi 0x2000 src 10.0.0.2 dst 10.0.0.1 auth_alg sha1 \
    authkey 0102030405060708090a0b0c0d0e0f1011121314 replay 32 inbound";
const ESP_C: &str = "add esp spi 0x3000 src 2001:db8::1 dst 2001:db8::2 encr_alg aes-gcm \
    encrkey 00112233445566778899aabbccddeeff01020304 isrc 10.1.0.0/16 idst 10.2.0.0/16 \
    outbound";

fn scratch_dir() -> PathBuf {
    daemon::scratch_dir("ipseckey-cli")
}

fn ipsecd_path() -> PathBuf {
    daemon::ipsecd_path(IPSECKEY)
}

/// An ipsecd on a temporary socket, killed on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Daemon {
    fn start() -> Option<Self> {
        if !privileged() {
            eprintln!("skipping: ipsecd serves only root or CAP_NET_ADMIN peers");
            return None;
        }
        let dir = scratch_dir();
        let sock = dir.join("pfkey.sock");
        let child = Command::new(ipsecd_path())
            .arg("--pfkey-socket")
            .arg(&sock)
            .env("IRONSWAN_CONTROL_SOCKET", dir.join("control.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Self { child, dir, sock };
        let t0 = Instant::now();
        while !d.sock.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ipsecd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(d)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(IPSECKEY);
        c.env("IRONSWAN_PFKEY_SOCKET", &self.sock);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    fn load(&self, text: &str) {
        let f = self.file("load.keys", text);
        let o = self.run(&["-f", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
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

fn three() -> String {
    format!("# three SAs\n{ESP_A}\n{AH_B}\n{ESP_C}\n")
}

/// The records of a text dump without the lines that depend on the clock or the process.
fn stable_records(dump: &str) -> Vec<String> {
    let mut recs: Vec<String> = dump
        .split("\n\n")
        .filter(|r| r.starts_with("Base message"))
        .map(|r| {
            r.lines()
                .filter(|l| {
                    !l.starts_with("Message length")
                        && !l.starts_with("CLT:")
                        && !l.contains("expiration")
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    recs.sort();
    recs
}

#[test]
fn file_of_adds_then_dump_shows_every_field() {
    let Some(d) = Daemon::start() else { return };
    d.load(&three());
    let o = d.run(&["dump"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.matches("Base message (version 2) type DUMP").count(),
        3,
        "{out}"
    );
    for want in [
        "Base message (version 2) type DUMP, SA type ESP.",
        "Base message (version 2) type DUMP, SA type AH.",
        "SA: SADB_ASSOC spi=0x1000, replay window size=0, state=MATURE",
        "SA: SADB_ASSOC spi=0x2000, replay window size=32, state=MATURE",
        "SA: Authentication algorithm = hmac-sha256",
        "SA: Authentication algorithm = hmac-sha1",
        "SA: Encryption algorithm = aes-cbc",
        "SA: Encryption algorithm = aes-gcm",
        "SA: flags=0x4000 < X_INBOUND >",
        "SA: flags=0x28000 < X_OUTBOUND X_TUNNEL >",
        "SRC: Source address (proto=0/<unspecified>)",
        "SRC: AF_INET: port 0, 10.0.0.1.",
        "DST: AF_INET: port 0, 10.0.0.2.",
        "DST: AF_INET6: port 0, 2001:db8::2.",
        "INS: Inner source address (proto=0/<unspecified>)",
        "INS: AF_INET: port 0, 10.1.0.0/16.",
        "IND: AF_INET: port 0, 10.2.0.0/16.",
        "AKY: Authentication key.",
        "AKY: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f/256",
        "EKY: Encryption key.",
        "EKY: 00112233445566778899aabbccddeeff/128",
        "EKY: 00112233445566778899aabbccddeeff01020304/160",
        " LT: Lifetime information",
        "CLT: 0 bytes protected, 0 allocations used.",
        "SLT: 3000 seconds of post-add lifetime.",
        "HLT: 3600 seconds of post-add lifetime.",
        "Dump succeeded for SA type 0.",
    ] {
        assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
    }
    let esp = stdout(&d.run(&["dump", "esp"]));
    assert_eq!(esp.matches("Base message").count(), 2, "{esp}");
    assert!(esp.ends_with("Dump succeeded for SA type 3.\n"), "{esp}");
}

#[test]
fn get_then_delete_then_get_reports_the_missing_sa() {
    let Some(d) = Daemon::start() else { return };
    d.load(&three());
    let o = d.run(&["get", "ah", "spi", "0x2000", "dst", "10.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("Base message (version 2) type GET, SA type AH.\n"),
        "{out}"
    );
    assert!(out.contains("SA: SADB_ASSOC spi=0x2000"), "{out}");

    let o = d.run(&["delete", "ah", "spi", "0x2000", "dst", "10.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");

    for args in [
        &["get", "ah", "spi", "0x2000", "dst", "10.0.0.1"][..],
        &["delete", "ah", "spi", "0x2000", "dst", "10.0.0.1"][..],
    ] {
        let o = d.run(args);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(
            err.contains(
                "Association (type = ah) with spi 0x2000 and addr 10.0.0.1 does not exist."
            ),
            "{err}"
        );
        assert!(err.contains("Diagnostic code 78:"), "{err}");
    }
    let dump = stdout(&d.run(&["dump"]));
    assert_eq!(dump.matches("Base message").count(), 2, "{dump}");
}

#[test]
fn daemon_errors_print_errno_text_and_diagnostic() {
    let Some(d) = Daemon::start() else { return };
    d.load(ESP_A);
    // The same SA again: EEXIST.
    let f = d.file("again", &format!("{ESP_A}\n"));
    let o = d.run(&["-f", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(
            "again:1: Association (type = esp) with spi 0x1000 and addr 10.0.0.2 already exists."
        ),
        "{err}"
    );
    // A pair with an SA that does not exist: EINVAL with a diagnostic.
    let f = d.file(
        "pair",
        "add ah spi 0x2000 src 10.0.0.2 dst 10.0.0.1 auth_alg sha1 authkey 0102030405060708090a0b0c0d0e0f1011121314 pair-spi 0x7777\n",
    );
    let o = d.run(&["-f", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("One of the entered values is incorrect: Invalid argument."),
        "{err}"
    );
    assert!(err.contains("PF_KEY Diagnostic code 73:"), "{err}");
}

#[test]
fn flush_by_type_and_all() {
    let Some(d) = Daemon::start() else { return };
    d.load(&three());
    assert!(d.run(&["flush", "esp"]).status.success());
    let dump = stdout(&d.run(&["dump"]));
    assert_eq!(dump.matches("Base message").count(), 1, "{dump}");
    assert!(dump.contains("SA type AH."), "{dump}");
    assert!(d.run(&["flush"]).status.success());
    assert_eq!(stdout(&d.run(&["dump"])), "Dump succeeded for SA type 0.\n");
}

#[test]
fn save_then_reload_into_a_fresh_daemon_gives_the_same_sadb() {
    let Some(d) = Daemon::start() else { return };
    // A pair too: the link must survive the reload.
    let pair = "add esp spi 0x1001 src 10.0.0.2 dst 10.0.0.1 encr_alg aes \
        encrkey 00112233445566778899aabbccddee00 auth_alg sha256 \
        authkey 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e00 pair-spi 0x1000";
    d.load(&format!("{}{pair}\n", three()));
    let saved = d.dir.join("saved.keys");
    let o = d.run(&["-s", saved.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&saved).unwrap();
    assert_eq!(text.matches("\nadd ").count(), 4, "{text}");
    assert!(text.contains("00112233445566778899aabbccddeeff"), "{text}");

    let fresh = Daemon::start().unwrap();
    let o = fresh.run(&["-f", saved.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = stdout(&d.run(&["dump"]));
    let after = stdout(&fresh.run(&["dump"]));
    assert_eq!(stable_records(&before), stable_records(&after));
    assert!(after.contains("OTH: Paired with spi=0x"), "{after}");
    assert_eq!(
        stdout(&d.run(&["-s", "-"])),
        stdout(&fresh.run(&["-s", "-"]))
    );

    // The save command writes the same way.
    let one = d.dir.join("ah.keys");
    let o = d.run(&["save", "ah", one.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::metadata(&one).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let ah = std::fs::read_to_string(&one).unwrap();
    assert_eq!(ah.matches("\nadd ah ").count(), 1, "{ah}");
}

#[test]
fn paranoid_hides_keys_everywhere() {
    let Some(d) = Daemon::start() else { return };
    d.load(&three());
    for args in [
        &["-p", "dump"][..],
        &["-p", "get", "esp", "spi", "0x1000", "dst", "10.0.0.2"][..],
        &["-p", "-s", "-"][..],
        &["-p", "--json", "--show-keys", "dump"][..],
    ] {
        let o = d.run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(!out.contains("00112233445566778899"), "{args:?}: {out}");
        assert!(!out.contains("0102030405060708090a"), "{args:?}: {out}");
    }
    let out = stdout(&d.run(&["-p", "dump"]));
    assert!(
        out.contains("EKY: XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/128"),
        "{out}"
    );
    let saved = stdout(&d.run(&["-p", "-s", "-"]));
    assert!(saved.contains("encrkey XXXX"), "{saved}");
}

#[test]
fn json_objects_parse_and_keys_need_show_keys() {
    let Some(d) = Daemon::start() else { return };
    d.load(&three());
    let o = d.run(&["--json", "dump"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let objs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 3, "{out}");
    let esp = objs.iter().find(|v| v["sa"]["spi"] == "0x1000").unwrap();
    assert_eq!(esp["type"], "DUMP");
    assert_eq!(esp["satype"], "ESP");
    assert_eq!(esp["sa"]["encr"], "aes-cbc");
    assert_eq!(esp["sa"]["state"], "MATURE");
    assert_eq!(esp["src"]["addr"], "10.0.0.1");
    assert_eq!(esp["lifetime_hard"]["addtime"], 3600);
    assert_eq!(esp["encr_key"], serde_json::json!({"bits": 128}));
    assert!(!out.contains("00112233"));

    let o = d.run(&[
        "--json",
        "--show-keys",
        "get",
        "esp",
        "spi",
        "0x1000",
        "dst",
        "10.0.0.2",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["type"], "GET");
    assert_eq!(v["encr_key"]["hex"], "00112233445566778899aabbccddeeff");
}

#[test]
fn check_mode_needs_no_daemon_and_names_file_line_column() {
    let dir = scratch_dir();
    let good = dir.join("good");
    std::fs::write(&good, three()).unwrap();
    let bad = dir.join("bad");
    std::fs::write(
        &bad,
        format!("{ESP_A}\n\n   add esp spi 0x10 dst 10.0.0.9 encr_alg aes encrkey 0011\n"),
    )
    .unwrap();
    let dumpfile = dir.join("dump");
    std::fs::write(&dumpfile, "flush\ndump esp\n").unwrap();
    let run = |f: &Path| {
        Command::new(IPSECKEY)
            .args(["--socket", "/nonexistent/ipsecd.sock", "-c"])
            .arg(f)
            .output()
            .unwrap()
    };
    let o = run(&good);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&bad);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let want = format!("{}:3:", bad.display());
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("expected"), "{err}");
    let o = run(&dumpfile);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(":2:1: `dump` not appropriate in a command file"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn add_and_update_refused_on_the_command_line() {
    for cmd in ["add", "update", "update-pair"] {
        let o = Command::new(IPSECKEY)
            .args([
                "--socket",
                "/nonexistent/ipsecd.sock",
                cmd,
                "esp",
                "spi",
                "0x100",
            ])
            .args([
                "dst",
                "10.0.0.1",
                "encr_alg",
                "aes",
                "encrkey",
                "00112233445566778899aabbccddeeff",
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("can't do {cmd} from the command line")),
            "{err}"
        );
        assert!(err.contains("-f"), "{err}");
        assert!(!err.contains("0011223344"), "{err}");
    }
}

#[test]
fn daemon_not_running_is_a_clear_error() {
    let o = Command::new(IPSECKEY)
        .args(["--socket", "/nonexistent/ipsecd.sock", "dump"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot reach ipsecd at /nonexistent/ipsecd.sock:"),
        "{}",
        stderr(&o)
    );
    // The environment variable names the socket too.
    let o = Command::new(IPSECKEY)
        .env("IRONSWAN_PFKEY_SOCKET", "/nonexistent/env.sock")
        .args(["flush"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/env.sock"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn monitors_see_an_add_made_by_another_ipseckey() {
    let Some(d) = Daemon::start() else { return };
    let mut mon = d
        .cmd()
        .arg("monitor")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pmon = d
        .cmd()
        .args(["--json", "pmonitor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mb = collect(&mut mon);
    let pb = collect(&mut pmon);
    assert!(wait_for(&mb, "Actively monitoring the PF_KEY socket."));
    // The active monitor sees its own PROMISC reply once it is registered.
    assert!(wait_for(&mb, "type X_PROMISC"));
    std::thread::sleep(Duration::from_millis(200));
    d.load(AH_B);
    assert!(
        wait_for(&mb, "Base message (version 2) type ADD, SA type AH."),
        "{}",
        mb.lock().unwrap()
    );
    assert!(wait_for(&mb, "SA: SADB_ASSOC spi=0x2000"));
    assert!(wait_for(&pb, "\"type\":\"ADD\""), "{}", pb.lock().unwrap());
    let _ = mon.kill();
    let _ = pmon.kill();
    let _ = mon.wait();
    let _ = pmon.wait();
    let text = mb.lock().unwrap().clone();
    assert!(
        text.contains("Read 80 bytes.") || text.contains("Read "),
        "{text}"
    );
    assert!(
        !text.contains("0102030405060708090a"),
        "ADD echoes carry no keys: {text}"
    );
    for l in pb.lock().unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
}

#[test]
fn interactive_commands_from_a_pipe() {
    let Some(d) = Daemon::start() else { return };
    let input = format!(
        "{ESP_A}\n\
         bogus words here\n\
         get esp spi 0x1000 \\\n  dst 10.0.0.2\n\
         quit\n\
         flush\n"
    );
    let o = d.run_stdin(&["-n"], &input);
    assert_eq!(o.status.code(), Some(1), "the bogus line fails the run");
    let out = stdout(&o);
    assert!(
        !out.contains("ipseckey> "),
        "no prompt without a terminal: {out}"
    );
    assert!(out.contains("type GET, SA type ESP."), "{out}");
    assert!(out.contains("SRC: Source address (proto=0)\n"), "-n: {out}");
    let err = stderr(&o);
    assert!(err.contains("<stdin>:2:1: unexpected `bogus`"), "{err}");
    // quit stopped before the flush.
    let dump = stdout(&d.run(&["dump"]));
    assert_eq!(dump.matches("Base message").count(), 1, "{dump}");

    let o = d.run_stdin(&[], "dump esp\nexit\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Dump succeeded for SA type 3."));
}

#[test]
fn verbose_prints_each_message_sent() {
    let Some(d) = Daemon::start() else { return };
    let o = d.run(&["-v", "flush", "ah"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("VERBOSE ON:  Message to kernel looks like:\n"),
        "{out}"
    );
    assert!(
        out.contains("Base message (version 2) type FLUSH, SA type AH."),
        "{out}"
    );
}
