//! The nftables table of `src/nft.rs` in two network namespaces joined by a veth pair
//! (root only; skipped otherwise).
//!
//! ```text
//!   ns A  10.99.0.1, 10.99.0.3 ──veth── 10.99.0.2  ns B (table inet ironswan, TUN ipsec0)
//! ```
//!
//! B's policy: rule 0 `{raddr 10.99.0.1 ulp udp lport 7004 dir in} drop`, rule 1
//! `{laddr 10.99.0.2 raddr 10.99.0.1} ipsec {encr_algs aes}`, rule 2
//! `{raddr 10.99.0.1 ulp udp lport 7003} bypass`, rule 3 `{raddr 10.99.0.3 ulp udp lport 7006
//! dir in} drop`. A sends cleartext UDP, TCP and ICMP, raw ESP and IKE to B; B's listeners
//! (python3) report what reached them, and a packet written into the TUN device must reach its
//! socket. Then B sends to A: cleartext to the protected peer is dropped unless it carries the
//! daemon's mark or is bypassed. The table is installed, read and removed by the module's own
//! functions, run inside B by this binary re-executed under `ip netns exec`.
//!
//! The module is compiled in from `src/nft.rs`, so its unit tests run here too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../src/nft.rs"]
mod nft;

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use ipsec_core::spd::{
    Action, AlgSpec, PolicyDir, PolicySet, PortRange, Prefix, Protection, Rule, Selector, Tunables,
};
use ipsec_crypto::EncrAlg;

const PYTHON: &str = "/usr/bin/python3";
const MARK: u32 = 0x1500;
const HELPER_ENV: &str = "IRONSWAN_NFT_HELPER";
const RULESET_ENV: &str = "IRONSWAN_NFT_RULESET";

/// Listens on UDP/TCP ports, raw ICMP and ESP, and optionally a TUN device; prints READY,
/// then obeys stdin: `inject` writes a UDP packet 10.99.0.1:9999 -> 10.99.0.2:7001 into the
/// TUN device, `done` (or EOF) prints one JSON list of what arrived and exits.
const LISTENER: &str = r#"
import sys, socket, select, os, json, struct, fcntl, subprocess
udp_ports = [int(p) for p in sys.argv[1].split(',') if p]
tcp_ports = [int(p) for p in sys.argv[2].split(',') if p]
raw = sys.argv[3] == '1'
tun_name = sys.argv[4] if len(sys.argv) > 4 else ''
socks = {}
for p in udp_ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', p))
    socks[s] = ('udp', p)
for p in tcp_ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', p))
    s.listen(8)
    socks[s] = ('tcp', p)
if raw:
    for proto in (1, 50):
        socks[socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)] = ('raw', proto)
tun = None
if tun_name:
    tun = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(tun, 0x400454ca, struct.pack('16sH', tun_name.encode(), 0x0001 | 0x1000))
    for path in ('all', 'default', tun_name):
        with open('/proc/sys/net/ipv4/conf/%s/rp_filter' % path, 'w') as f:
            f.write('0')
    subprocess.run(['ip', 'link', 'set', tun_name, 'up'], check=True)

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def udp_packet(src, dst, sport, dport, payload):
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
    return hdr + udp

events = []
print('READY', flush=True)
done = False
while not done:
    r, _, _ = select.select(list(socks) + [sys.stdin], [], [], 20)
    if not r:
        break
    for s in r:
        if s is sys.stdin:
            line = sys.stdin.readline().strip()
            if line == 'inject' and tun is not None:
                os.write(tun, udp_packet('10.99.0.1', '10.99.0.2', 9999, 7001, b'via-tun'))
                print('INJECTED', flush=True)
            elif line in ('done', ''):
                done = True
            continue
        kind, port = socks[s]
        if kind == 'tcp':
            c, a = s.accept()
            events.append(['tcp', port, a[0], ''])
            c.close()
        elif kind == 'udp':
            data, a = s.recvfrom(4096)
            events.append(['udp', port, a[0], data.decode(errors='replace')])
        else:
            data, a = s.recvfrom(65535)
            ihl = (data[0] & 15) * 4
            if port == 1:
                events.append(['icmp', data[ihl], a[0], str(data[ihl + 1])])
            else:
                events.append(['esp', 50, a[0], data[ihl + 8:].decode(errors='replace')])
print(json.dumps(events), flush=True)
"#;

/// Sends what its arguments say and prints one line per action:
/// `udp:SRC:DST:PORT:PAYLOAD:SPORT:MARK`, `tcp:DST:PORT`, `icmp:DST:TYPE:CODE`, `esp:DST:PAYLOAD`.
const SENDER: &str = r#"
import sys, socket, struct, time

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

for a in sys.argv[1:]:
    f = a.split(':')
    if f[0] == 'udp':
        src, dst, port, payload, sport, mark = f[1], f[2], int(f[3]), f[4], int(f[5]), int(f[6])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if mark:
            s.setsockopt(socket.SOL_SOCKET, 36, mark)
        s.bind((src, sport))
        try:
            s.sendto(payload.encode(), (dst, port))
            print('sent', a, flush=True)
        except OSError as e:
            print('error', a, e, flush=True)
        s.close()
    elif f[0] == 'tcp':
        try:
            c = socket.create_connection((f[1], int(f[2])), timeout=1.5)
            c.close()
            print('tcp-connected', a, flush=True)
        except OSError as e:
            print('tcp-failed', a, e, flush=True)
    elif f[0] == 'icmp':
        t, c = int(f[2]), int(f[3])
        body = b'\0\0\0\0'
        if t == 3:
            # An embedded IPv4+UDP header, as a real error would carry.
            body += struct.pack('!BBHHHBBH4s4sHHHH', 0x45, 0, 28, 1, 0, 64, 17, 0,
                                socket.inet_aton(f[1]), socket.inet_aton('10.99.0.1'),
                                40000, 53, 8, 0)
        else:
            body = struct.pack('!HH', 0x1234, 1) + b'ping'
        msg = struct.pack('!BBH', t, c, 0) + body
        msg = msg[:2] + struct.pack('!H', csum(msg)) + msg[4:]
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)
        s.sendto(msg, (f[1], 0))
        print('sent', a, flush=True)
    elif f[0] == 'esp':
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
        s.sendto(struct.pack('!II', 0x100, 1) + f[2].encode(), (f[1], 0))
        print('sent', a, flush=True)
time.sleep(0.3)
"#;

fn is_root() -> bool {
    ipsec_sys::geteuid() == 0
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces, deleted (with their veth pair and tables) on drop, also on failure.
struct Namespaces {
    a: String,
    b: String,
}

impl Namespaces {
    fn new() -> Self {
        let pid = std::process::id();
        let ns = Self {
            a: format!("ironswan-nft-{pid}-a"),
            b: format!("ironswan-nft-{pid}-b"),
        };
        for n in [&ns.a, &ns.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
            run(&["ip", "netns", "add", n]);
            run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        let (va, vb) = (format!("isn{pid}a"), format!("isn{pid}b"));
        run(&[
            "ip", "link", "add", &va, "netns", &ns.a, "type", "veth", "peer", "name", &vb, "netns",
            &ns.b,
        ]);
        run(&["ip", "-n", &ns.a, "addr", "add", "10.99.0.1/24", "dev", &va]);
        run(&["ip", "-n", &ns.a, "addr", "add", "10.99.0.3/24", "dev", &va]);
        run(&["ip", "-n", &ns.b, "addr", "add", "10.99.0.2/24", "dev", &vb]);
        run(&["ip", "-n", &ns.a, "link", "set", &va, "up"]);
        run(&["ip", "-n", &ns.b, "link", "set", &vb, "up"]);
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// A listener process, killed on drop.
struct Listener {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Listener {
    fn start(ns: &str, udp: &str, tcp: &str, raw: bool, tun: Option<&str>) -> Self {
        let mut args = vec![
            "netns",
            "exec",
            ns,
            PYTHON,
            "-c",
            LISTENER,
            udp,
            tcp,
            if raw { "1" } else { "0" },
        ];
        if let Some(t) = tun {
            args.push(t);
        }
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut l = Self {
            child,
            stdin,
            stdout,
        };
        assert_eq!(l.line(), "READY");
        l
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).unwrap();
        s.trim().to_owned()
    }

    fn command(&mut self, c: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{c}").unwrap();
        stdin.flush().unwrap();
    }

    /// Stops it; what arrived, as (kind, port or type, source, payload or code).
    fn finish(mut self) -> Vec<(String, u64, String, String)> {
        self.command("done");
        let line = self.line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e[0].as_str().unwrap().to_owned(),
                    e[1].as_u64().unwrap(),
                    e[2].as_str().unwrap().to_owned(),
                    e[3].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send(ns: &str, actions: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, PYTHON, "-c", SENDER])
        .args(actions)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sender: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs [`helper_in_netns`] in `ns` with `what` (install, counters, remove).
fn helper(ns: &str, what: &str, ruleset: Option<&Path>) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(exe)
        .args([
            "helper_in_netns",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, what);
    if let Some(p) = ruleset {
        cmd.env(RULESET_ENV, p);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "helper {what}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Not a test of its own: does what [`helper`] asks when re-executed inside a namespace.
#[test]
fn helper_in_netns() {
    let Ok(what) = std::env::var(HELPER_ENV) else {
        return;
    };
    match what.as_str() {
        "install" => {
            let path = std::env::var(RULESET_ENV).unwrap();
            let text = std::fs::read_to_string(path).unwrap();
            nft::install(&text).unwrap();
        }
        "counters" => {
            for c in nft::counters().unwrap() {
                println!(
                    "COUNTER {} {} {} {} {}",
                    c.dir, c.reason, c.rule, c.packets, c.bytes
                );
            }
        }
        "remove" => nft::remove().unwrap(),
        other => panic!("unknown helper request {other}"),
    }
}

fn host(a: &str) -> Prefix {
    Prefix::host(a.parse::<IpAddr>().unwrap())
}

fn policy() -> PolicySet {
    let a = host("10.99.0.1");
    let udp_lport = |p: u16| Selector {
        raddr: Some(a),
        ulp: Some(17),
        lport: Some(PortRange::single(p)),
        ..Selector::any()
    };
    PolicySet::from_rules(vec![
        Rule::new(udp_lport(7004), PolicyDir::In, Action::Drop),
        Rule::new(
            Selector {
                laddr: Some(host("10.99.0.2")),
                raddr: Some(a),
                ..Selector::any()
            },
            PolicyDir::Both,
            Action::ipsec(Protection::esp(AlgSpec::of(EncrAlg::AesCbc))),
        ),
        Rule::new(udp_lport(7003), PolicyDir::Both, Action::Bypass),
        Rule::new(
            Selector {
                raddr: Some(host("10.99.0.3")),
                ..udp_lport(7006)
            },
            PolicyDir::In,
            Action::Drop,
        ),
    ])
}

fn count(events: &[(String, u64, String, String)], kind: &str, port: u64, src: &str) -> usize {
    events
        .iter()
        .filter(|e| e.0 == kind && e.1 == port && e.2 == src)
        .count()
}

#[test]
fn cleartext_blocked_in_namespaces() {
    if std::env::var(HELPER_ENV).is_ok() {
        return;
    }
    if !is_root() {
        eprintln!("not root: nftables namespace test skipped");
        return;
    }
    if !have("nft", "--version") || !have(PYTHON, "--version") || !have("ip", "-V") {
        eprintln!("nft, ip or {PYTHON} missing: nftables namespace test skipped");
        return;
    }
    let ns = Namespaces::new();
    let cfg = nft::Config {
        tun: "ipsec0".into(),
        mark: MARK,
        log_group: Some(42),
    };
    let text = nft::ruleset(&policy(), &Tunables::default(), &cfg).unwrap();
    let file = std::env::temp_dir().join(format!("ironswan-nft-{}.nft", std::process::id()));
    std::fs::write(&file, &text).unwrap();
    helper(&ns.b, "install", Some(&file));
    // Loading again replaces the table atomically.
    helper(&ns.b, "install", Some(&file));
    let _ = std::fs::remove_file(&file);

    // --- inbound: A -> B -------------------------------------------------------------
    let mut lb = Listener::start(
        &ns.b,
        "7001,7003,7004,7006,500",
        "7002",
        true,
        Some("ipsec0"),
    );
    let sent = send(
        &ns.a,
        &[
            "udp:10.99.0.1:10.99.0.2:7001:protected:0:0",
            "udp:10.99.0.1:10.99.0.2:7003:bypassed:0:0",
            "udp:10.99.0.1:10.99.0.2:7004:drop-rule-loses:0:0",
            "udp:10.99.0.3:10.99.0.2:7006:explicit:0:0",
            "udp:10.99.0.1:10.99.0.2:500:ike:0:0",
            "esp:10.99.0.2:esp-payload",
            "icmp:10.99.0.2:8:0",
            "icmp:10.99.0.2:3:4",
            "icmp:10.99.0.2:3:3",
            "tcp:10.99.0.2:7002",
        ],
    );
    assert!(sent.contains("tcp-failed"), "{sent}");
    lb.command("inject");
    assert_eq!(lb.line(), "INJECTED");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ev = lb.finish();
    eprintln!("B received: {ev:?}");
    let a = "10.99.0.1";
    assert_eq!(
        count(&ev, "udp", 7003, a),
        1,
        "bypass rule lets UDP 7003 in"
    );
    assert_eq!(count(&ev, "udp", 500, a), 1, "IKE always passes");
    assert_eq!(
        count(&ev, "esp", 50, a),
        1,
        "ESP reaches ipsecd's raw socket"
    );
    assert_eq!(
        count(&ev, "icmp", 3, a),
        1,
        "only frag-needed passes (accept-clear)"
    );
    assert!(ev.iter().any(|e| e.0 == "icmp" && e.1 == 3 && e.3 == "4"));
    assert_eq!(count(&ev, "icmp", 8, a), 0, "clear echo request dropped");
    assert_eq!(
        count(&ev, "tcp", 7002, a),
        0,
        "TCP to a protected port never accepted"
    );
    assert_eq!(count(&ev, "udp", 7004, a), 0);
    assert_eq!(count(&ev, "udp", 7006, "10.99.0.3"), 0);
    let via_tun: Vec<_> = ev.iter().filter(|e| e.0 == "udp" && e.1 == 7001).collect();
    assert_eq!(
        via_tun.len(),
        1,
        "only the TUN copy of UDP 7001 arrives: {ev:?}"
    );
    assert_eq!(via_tun[0].3, "via-tun");

    // --- outbound: B -> A ------------------------------------------------------------
    let la = Listener::start(&ns.a, "7005", "", false, None);
    let mark = MARK.to_string();
    let sent = send(
        &ns.b,
        &[
            "udp:10.99.0.2:10.99.0.1:7005:clear:0:0",
            &format!("udp:10.99.0.2:10.99.0.1:7005:marked:0:{mark}"),
            "udp:10.99.0.2:10.99.0.1:7005:bypass:7003:0",
        ],
    );
    eprintln!("B sent: {sent}");
    let ev = la.finish();
    eprintln!("A received: {ev:?}");
    let payloads: Vec<&str> = ev.iter().map(|e| e.3.as_str()).collect();
    assert!(
        !payloads.contains(&"clear"),
        "fail-closed: clear packet left B"
    );
    assert!(
        payloads.contains(&"marked"),
        "the daemon's marked packets pass"
    );
    assert!(payloads.contains(&"bypass"), "bypassed flow passes");

    // --- counters ----------------------------------------------------------------------
    let out = helper(&ns.b, "counters", None);
    let get = |dir: &str, reason: &str, rule: usize| -> u64 {
        out.lines()
            .filter_map(|l| l.split_once("COUNTER ").map(|(_, r)| r))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w[0] == dir && w[1] == reason && w[2] == rule.to_string())
            .map(|w| w[3].parse::<u64>().unwrap())
            .sum()
    };
    // UDP 7001 and 7004, echo request, port unreachable and at least one TCP SYN.
    assert!(get("in", "spd_got_clear", 1) >= 5, "{out}");
    assert_eq!(
        get("in", "spd_explicit", 0),
        0,
        "ESP rule outranks the drop rule"
    );
    assert_eq!(get("in", "spd_explicit", 3), 1, "{out}");
    assert_eq!(get("out", "out_clear", 1), 1, "{out}");

    // --- removal -------------------------------------------------------------------------
    helper(&ns.b, "remove", None);
    helper(&ns.b, "remove", None);
    let tables = Command::new("ip")
        .args(["netns", "exec", &ns.b, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains("ironswan"));
}
