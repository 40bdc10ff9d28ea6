//! End-to-end: the policy logger of a real ipsecd (issue 7). Host `b` runs ipsecd with a
//! transport-mode ESP policy toward `a` and the logger enabled at message+packet+stack;
//! `a` has no IPsec. From `a`: an ESP packet with an SPI `b` does not know (dropped by the
//! data plane, `esp_no_sa`) and a cleartext UDP datagram the policy says must be protected
//! (dropped by the nftables table, `spd_got_clear` rule 0, reported over NFLOG); from `b`, a
//! datagram to an address policy rule 1 forbids (`spd_explicit`, outbound). The log
//! file must hold both records with reason, rule, addresses, SPI and sequence number,
//! ports, and the stage list. Then `logger setprop`/`refresh`/`restart` through the control
//! socket: the restart rotates the log (1-byte threshold) and the next record is minimal;
//! SIGHUP refreshes the properties as `logger refresh` does.
//! Last, ipsecd must refuse to start when the enabled logger's file cannot be opened.
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/netns.rs"]
mod netns;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use netns::*;

/// Sends one ESP packet (SPI, sequence number, 32 bytes of junk) to `dst`.
const SEND_ESP: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
s.sendto(struct.pack("!II", int(sys.argv[2], 0), int(sys.argv[3])) + bytes(32), (sys.argv[1], 0))
print("sent")
"#;

/// Sends one UDP datagram from port 4321 to `dst`:9999.
const SEND_UDP: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 4321))
s.sendto(b"clear text", (sys.argv[1], 9999))
print("sent")
"#;

/// Waits until a line of `path` satisfies `pred`; that line.
fn wait_line(path: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let t0 = Instant::now();
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| pred(l)) {
            return l.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no {what} record in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(ns: &Ns, script: &str, args: &[&str]) {
    let out = ns.python(script, args).success(Duration::from_secs(10));
    assert_eq!(out.last().map(String::as_str), Some("sent"));
}

fn ok(r: String) -> String {
    assert!(r.starts_with("ok"), "{r}");
    r
}

#[test]
fn dropped_packets_reach_the_log_with_every_level() {
    let Some(lab) = Lab::new("logger_e2e") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    let keys = gcm_keys(0x1000, "");
    // Rule 0 protects a; rule 1 forbids traffic to 10.0.0.3.
    let policy = format!(
        "{{laddr {B4} raddr {A4}}} ipsec {{encr_algs aes-gcm sa shared}}\n\
         {{laddr {B4} raddr 10.0.0.3 dir out}} drop {{}}\n"
    );
    let log = lab.dir.join("ipsec.log");
    let cfg = lab.file(
        "logger.conf",
        &format!(
            "log_file={}\nlog_level=stack+packet+message\nlog_interval_ms=0\n",
            log.display()
        ),
    );
    let cfg_s = cfg.display().to_string();
    let db = Daemon::start_with(
        &lab,
        &b,
        "b",
        &keys,
        &policy,
        &["--logger-config", &cfg_s, "--logger-enable"],
    );
    // The data-plane thread loads the nftables table on its first turn.
    let t0 = Instant::now();
    while !b
        .run(&["nft", "list", "table", "inet", "ironswan"])
        .status
        .success()
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "no nftables table");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = ok(db.control("logger status"));
    assert!(
        st.contains("state=online") && st.contains("log_level=message+packet+stack"),
        "{st}"
    );
    // The daemon was enabled at start: the properties file says so now.
    assert!(fs::read_to_string(&cfg).unwrap().contains("enabled=true"));

    // An ESP packet with an unknown SPI: the data plane drops it.
    send(&a, SEND_ESP, &[B4, "0xdead", "5"]);
    let l = wait_line(&log, "esp_no_sa", |l| l.contains("reason=esp_no_sa"));
    for want in [
        " dir=in reason=esp_no_sa rule=- spi=0x0000dead src=10.0.0.1 dst=10.0.0.2 |",
        " proto=esp(50) esp_spi=0x0000dead esp_seq=5",
        " ip=v4 ip_len=60 ",
        "| stack=wire_read>engine_inbound",
    ] {
        assert!(l.contains(want), "{want:?} not in {l}");
    }

    // Cleartext that policy rule 0 protects: the nftables table drops it, NFLOG reports it.
    send(&a, SEND_UDP, &[B4]);
    let l = wait_line(&log, "spd_got_clear", |l| {
        l.contains("reason=spd_got_clear")
    });
    for want in [
        " dir=in reason=spd_got_clear rule=0 spi=- src=10.0.0.1 dst=10.0.0.2 |",
        " proto=udp(17) sport=4321 dport=9999",
        "| stack=netfilter_input>table_inet_ironswan>spd_rule_drop",
    ] {
        assert!(l.contains(want), "{want:?} not in {l}");
    }
    // Outbound: b sends to the address rule 1 forbids.
    let o = b.run(&[PYTHON, "-c", &SEND_UDP.replace("0.0.0.0", B4), "10.0.0.3"]);
    assert!(o.status.success(), "{o:?}");
    let l = wait_line(&log, "outbound spd_explicit", |l| l.contains("dir=out"));
    for want in [
        " dir=out reason=spd_explicit rule=1 spi=- src=10.0.0.2 dst=10.0.0.3 |",
        " proto=udp(17) sport=4321 dport=9999",
        "| stack=tun_read>packet_key>spd_outbound",
    ] {
        assert!(l.contains(want), "{want:?} not in {l}");
    }
    let c = db.counters();
    assert!(c.get("nflog_records") >= 1, "nflog_records");
    assert!(c.get("log_written") >= 2, "log_written");
    assert_eq!(c.get("log_queue_full"), 0);

    // SMF semantics: setprop stores, refresh reads, restart applies (and rotates: 1 byte).
    let r = db.control("logger setprop log_level=minimal+packet");
    assert!(r.starts_with("error log_level: minimal excludes"), "{r}");
    ok(db.control("logger setprop log_level=minimal"));
    ok(db.control("logger setprop format=json"));
    assert_eq!(
        ok(db.control("logger getprop log_level")),
        "ok\nlog_level=minimal\n"
    );
    assert!(db
        .control("logger status")
        .contains("log_level=message+packet+stack"));
    assert!(ok(db.control("logger refresh")).contains("restart"));
    assert!(ok(db.control("logger restart")).contains("log rotated"));
    let old = fs::read_to_string(lab.dir.join("ipsec.log.0")).unwrap();
    assert!(
        [
            "reason=esp_no_sa",
            "reason=spd_got_clear",
            "reason=spd_explicit"
        ]
        .iter()
        .all(|r| old.contains(r)),
        "{old}"
    );
    send(&a, SEND_ESP, &[B4, "0xbeef", "9"]);
    let l = wait_line(&log, "minimal JSON", |l| l.contains("esp_no_sa"));
    let v: serde_json::Value = serde_json::from_str(&l).unwrap();
    assert_eq!(v["reason"], "esp_no_sa");
    assert_eq!(v["dir"], "in");
    assert!(
        v.get("spi").is_none() && v.get("packet").is_none(),
        "minimal: {l}"
    );

    // SIGHUP refreshes the properties too (they wait for a restart).
    ok(db.control("logger setprop format=text"));
    assert!(!db.control("logger status").contains("pending="));
    signal(db.pid(), "HUP");
    let t0 = Instant::now();
    while !db.control("logger status").contains("pending=") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "SIGHUP did not refresh the logger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(db.control("logger status").contains("format=json\n"));

    // Disabled: nothing more is written; the state is stored.
    assert!(ok(db.control("logger disable")).contains("disabled"));
    assert!(fs::read_to_string(&cfg).unwrap().contains("enabled=false"));
    let before = fs::read_to_string(&log).unwrap();
    send(&a, SEND_ESP, &[B4, "0xfeed", "1"]);
    let t0 = Instant::now();
    while db.counters().get("esp_no_sa") < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "third esp_no_sa not counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fs::read_to_string(&log).unwrap(), before);
    assert!(db
        .control("logger frobnicate")
        .starts_with("error unknown logger request"));
}

/// Runs ipsecd outside the namespaces with its sockets in the lab and `args`, until it
/// exits: its status and stderr.
fn ipsecd_exit(lab: &Lab, args: &[&str]) -> (std::process::ExitStatus, String) {
    let o = std::process::Command::new(ipsecd_bin())
        .args([
            "--pfkey-socket",
            &lab.dir.join("pfkey").display().to_string(),
        ])
        .args([
            "--control-socket",
            &lab.dir.join("control").display().to_string(),
        ])
        .args(args)
        .output()
        .unwrap();
    (o.status, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn ipsecd_refuses_to_start_when_the_log_file_cannot_be_opened() {
    let Some(lab) = Lab::new("logger_start_fails") else {
        return;
    };
    // A directory where the log file should be.
    let bad = lab.dir.join("not-a-file");
    fs::create_dir(&bad).unwrap();
    let cfg = lab.file("logger.conf", &format!("log_file={}\n", bad.display()));
    let cfg_s = cfg.display().to_string();
    let (status, err) = ipsecd_exit(&lab, &["--logger-config", &cfg_s, "--logger-enable"]);
    assert!(!status.success(), "ipsecd started: {err}");
    assert!(
        err.contains("policy logger: log_file") && err.contains("not-a-file"),
        "{err}"
    );
    // A properties file with an error names the file, line and column.
    let cfg = lab.file("bad.conf", "log_level=message\nlog_size_units=q\n");
    let cfg_s = cfg.display().to_string();
    let (status, err) = ipsecd_exit(&lab, &["--logger-config", &cfg_s]);
    assert!(!status.success());
    assert!(
        err.contains(&format!("{}:2:16: log_size_units", cfg.display())),
        "{err}"
    );
}
