//! End-to-end: per-socket policy (IP_SEC_OPT, issue 8) between two namespaces, an ipsecd in
//! each. The Solaris manual's example program, compiled with gcc against ipsec_sock.h and
//! run with libipsec_sock.so preloaded (as root and as uid 65534), and the Rust API
//! (ipsec-sockopt, run by this test binary re-executed inside the namespace):
//! * REQUIRED with ESP protects the program's UDP and TCP traffic while global policy
//!   bypasses the peer (the capture holds only ESP between the hosts);
//! * NEVER from an unprivileged user fails with EPERM and the traffic stays protected;
//!   from root it passes in clear while global policy protects;
//! * UNIQUE gives two sockets two SAs (each ACQUIRE names its socket's ports);
//! * self-encapsulation sends the socket's packets through a tunnel-mode SA between the two
//!   hosts (an outer IP header, checked by tshark decrypting the capture);
//! * a TCP listener's policy goes to the sockets it accepts; the option on the listening
//!   socket is EINVAL;
//! * without ipsecd the option fails with EPROTONOSUPPORT;
//! * (Rust API) a connected socket's policy is latched (EINVAL), a listening TCP socket
//!   refuses the option (EINVAL), an unprivileged socket cannot choose an algorithm system
//!   policy does not use (persock-require-priv: EPERM) while root can.
//!
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipsec_pfkey::consts::{SADB_ACQUIRE, SADB_REGISTER, SADB_SATYPE_ESP, SADB_X_SAFLAGS_UNIQUE};
use ipsec_pfkey::wire::{Address, Message};
use netns::*;

/// The manual's request: ESP, AES-CBC with HMAC-SHA-256.
const PROPS: &str = "encr_algs aes encr_auth_algs sha256 sa shared";
/// A protected destination nobody uses: system policy then uses the request's algorithms
/// (persock-require-priv), and ipsecd has a route into its TUN device.
const ELSEWHERE: &str = "{raddr 10.9.9.9} ipsec {encr_algs aes encr_auth_algs sha256}\n";
const NOBODY: &str = "65534";

const TCP_ECHO: &str = r#"
import socket, sys
a, p = sys.argv[1], int(sys.argv[2])
l = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((a, p)); l.listen(4); l.settimeout(15)
print('ready', flush=True)
while True:
    try:
        c, _ = l.accept()
    except socket.timeout:
        break
    c.settimeout(5)
    while True:
        try:
            b = c.recv(65536)
        except OSError:
            break
        if not b:
            break
        c.sendall(b)
    c.close()
"#;

fn keys() -> String {
    cbc_sha256_keys(0x100, A4, B4)
}

/// ipsecd in `ns` with its per-socket policy service in the lab.
fn daemon(lab: &Lab, ns: &Ns, name: &str, keys: &str, policy: &str) -> (Daemon, PathBuf) {
    let sock = lab.dir.join(format!("{name}.sockpolicy"));
    let s = sock.display().to_string();
    let d = Daemon::start_with(lab, ns, name, keys, policy, &["--sockpolicy-socket", &s]);
    (d, sock)
}

/// [`daemon`] for host `a` whose global policy bypasses [`B4`] and protects [`ELSEWHERE`].
fn daemon_a_bypassing_b(lab: &Lab, a: &Ns, keys: &str) -> (Daemon, PathBuf) {
    let policy = format!("{{raddr {B4} dir both}} bypass {{}}\n{ELSEWHERE}");
    daemon(lab, a, "a", keys, &policy)
}

/// libipsec_sock.so next to this test's binary's directory (cargo builds it with the
/// workspace's lib targets).
fn preload_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("libipsec_sock.so");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p ipsec-sock`",
        p.display()
    );
    p
}

/// The manual's example compiled with gcc against the installed header.
fn compile_example(lab: &Lab) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ipsec-sock");
    let out = lab.dir.join("solaris_example");
    run_ok(
        Command::new("gcc").args([
            "-Wall",
            "-Werror",
            "-I",
            &root.join("include").display().to_string(),
            &root
                .join("examples/solaris_example.c")
                .display()
                .to_string(),
            "-o",
            &out.display().to_string(),
        ]),
    );
    out
}

/// Runs `prog args` in `ns` (as `user` if given) with `env` set; its stdout lines.
fn run_in(
    ns: &Ns,
    user: Option<&str>,
    env: &[(&str, String)],
    prog: &Path,
    args: &[&str],
) -> Vec<String> {
    let mut c = match user {
        Some(u) => {
            let mut c = ns.cmd("setpriv");
            c.args([
                &format!("--reuid={u}"),
                &format!("--regid={u}"),
                "--clear-groups",
                "--inh-caps=-all",
                "env",
            ]);
            c
        }
        None => ns.cmd("env"),
    };
    for (k, v) in env {
        c.arg(format!("{k}={v}"));
    }
    c.arg(prog).args(args);
    let o = c.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!(
        "{} {args:?}: {}\n{text}{}",
        prog.display(),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    text.lines().map(str::to_string).collect()
}

/// The example with `args` in `ns` as root, libipsec_sock.so preloaded and talking to the
/// per-socket policy service at `sock`, to spawn.
fn example_cmd(ns: &Ns, lab: &Lab, sock: &Path, args: &[&str]) -> Command {
    let mut c = ns.cmd("env");
    c.arg(format!("LD_PRELOAD={}", preload_lib().display()))
        .arg(format!("IRONSWAN_SOCKPOLICY_SOCKET={}", sock.display()))
        .arg(lab.dir.join("solaris_example"))
        .args(args);
    c
}

fn example(ns: &Ns, lab: &Lab, sock: &Path, user: Option<&str>, args: &[&str]) -> Vec<String> {
    let env = [
        ("LD_PRELOAD", preload_lib().display().to_string()),
        ("IRONSWAN_SOCKPOLICY_SOCKET", sock.display().to_string()),
    ];
    run_in(ns, user, &env, &lab.dir.join("solaris_example"), args)
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

/// A UDP echo server in `b` on `addr`, `port`, ready.
fn udp_echo_server(b: &Ns, addr: &str, port: u16) -> Proc {
    let u = b.python(UDP_ECHO, &[addr, &port.to_string()]);
    u.wait_stdout(Duration::from_secs(5), |l| l == "ready");
    u
}

/// UDP and TCP echo servers in `b` on `addr`, `port` (UDP) and `port + 1` (TCP).
fn echo_servers(b: &Ns, addr: &str, port: u16) -> (Proc, Proc) {
    let u = udp_echo_server(b, addr, port);
    let t = b.python(TCP_ECHO, &[addr, &(port + 1).to_string()]);
    t.wait_stdout(Duration::from_secs(5), |l| l == "ready");
    (u, t)
}

/// The example's UDP (to `port`) and TCP (to `port + 1`) echoes from `a` (address `src`)
/// to `b` (`dst`) with the manual's request, as `user`: all answered, and nothing but ESP
/// between the hosts on the wire.
#[allow(clippy::too_many_arguments)]
fn protected_round(
    lab: &Lab,
    a: &Ns,
    b: &Ns,
    sock: &Path,
    user: Option<&str>,
    src: &str,
    dst: &str,
    port: u16,
) {
    let (_u, _t) = echo_servers(b, dst, port);
    let cap = Capture::start(lab, b, "vb", &format!("wire{port}"));
    let p = port.to_string();
    let udp = example(a, lab, sock, user, &["udp", dst, &p, "esp", "5"]);
    let p = (port + 1).to_string();
    let tcp = example(a, lab, sock, user, &["tcp", dst, &p, "esp", "5"]);
    let pcap = cap.stop();
    for out in [&udp, &tcp] {
        assert!(has(out, "setsockopt 0 0"), "{user:?}: {out:?}");
        assert!(has(out, "getsockopt 2 12 5"), "{user:?}: {out:?}");
        assert!(has(out, "echoed 5"), "{user:?}: {out:?}");
    }
    assert_only_ipsec(&pcap, src, dst);
    let (x, y) = (src.parse().unwrap(), dst.parse().unwrap());
    let esp = pcap.count(50, x, y) + pcap.count(50, y, x);
    assert!(esp >= 20, "ESP frames: {esp}");
}

/// Cleartext frames between A and B whose UDP/TCP port is `port`.
fn clear_to_port(pcap: &Pcap, port: u16) -> usize {
    pcap.ip()
        .filter(|p| !matches!(p.proto, 50 | 51) && p.dport() == Some(port))
        .count()
}

/// No cleartext UDP from A to B in `pcap`.
fn assert_no_clear_udp(pcap: &Pcap) {
    let (a, b): (std::net::IpAddr, std::net::IpAddr) = (A4.parse().unwrap(), B4.parse().unwrap());
    // Named by ports and position in the capture, so a failure says which flow leaked.
    let clear: Vec<(usize, Option<u16>, Option<u16>)> = pcap
        .ip()
        .enumerate()
        .filter(|(_, p)| p.proto == 17 && p.src == a && p.dst == b)
        .map(|(i, p)| {
            (
                i,
                p.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])),
                p.dport(),
            )
        })
        .collect();
    assert_eq!(
        pcap.count(17, a, b),
        0,
        "no cleartext: (frame, sport, dport) {clear:?}"
    );
}

fn esp_between(pcap: &Pcap) -> usize {
    let (a, b) = (A4.parse().unwrap(), B4.parse().unwrap());
    pcap.count(50, a, b) + pcap.count(50, b, a)
}

#[test]
fn required_esp_protects_the_example_while_global_policy_bypasses_the_peer() {
    let Some(lab) = Lab::new("persock_required") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    compile_example(&lab);
    let (mut da, sock) = daemon_a_bypassing_b(&lab, &a, &keys());
    let policy_b = format!(
        "{{laddr {B4} ulp udp lport 7000}} ipsec {{{PROPS}}}\n\
         {{laddr {B4} ulp tcp lport 7001}} ipsec {{{PROPS}}}\n\
         {{laddr {B4} ulp udp lport 7002}} ipsec {{{PROPS}}}\n\
         {{laddr {B4} ulp tcp lport 7003}} ipsec {{{PROPS}}}\n\
         {{laddr {B4} ulp udp lport 7004}} ipsec {{{PROPS}}}\n"
    );
    let _db = Daemon::start(&lab, &b, "b", &keys(), &policy_b);

    // Without the option the traffic goes clear (global bypass) and b drops it.
    let _u = udp_echo_server(&b, B4, 7004);
    let out = example(&a, &lab, &sock, None, &["udp", B4, "7004", "none", "2"]);
    assert!(has(&out, "echoed 0"), "{out:?}");

    // Root, then uid 65534 (persock-require-priv: the request's algorithms are system
    // policy's, so no privilege is needed).
    for (user, port) in [(None, 7000u16), (Some(NOBODY), 7002)] {
        protected_round(&lab, &a, &b, &sock, user, A4, B4, port);
    }
    let c = da.counters();
    assert!(c.get("out_protected") >= 20, "{c:#?}");
    // The sockets are closed (the TCP connections once the kernel has finished them): their
    // rules and set elements are gone.
    let t0 = std::time::Instant::now();
    loop {
        let rules = a.ip(&["rule", "show"]);
        let sets = a.ok(&["nft", "list", "set", "inet", "ironswan", "persock_protect"]);
        if !rules.contains("sport") && !sets.contains("elements") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "per-socket rules or set elements left:\n{rules}\n{sets}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    da.stop();
}

#[test]
fn ipv6_sec_opt_protects_udp_and_tcp() {
    let Some(lab) = Lab::new("persock_v6") else {
        return;
    };
    let (a, b) = veth_pair(&lab, &format!("{A6}/64"), &format!("{B6}/64"));
    compile_example(&lab);
    let keys = cbc_sha256_keys(0x600, A6, B6);
    // Neighbour discovery passes in clear (ipsecconf(8)).
    let nd = "{ulp ipv6-icmp type 133-137 dir both} pass {}\n";
    let (_da, sock) = daemon(
        &lab,
        &a,
        "a",
        &keys,
        &format!("{nd}{{raddr {B6} dir both}} bypass {{}}\n{ELSEWHERE}"),
    );
    let policy_b = format!(
        "{nd}{{laddr {B6} ulp udp lport 7000}} ipsec {{{PROPS}}}\n\
         {{laddr {B6} ulp tcp lport 7001}} ipsec {{{PROPS}}}\n{ELSEWHERE}"
    );
    let _db = Daemon::start(&lab, &b, "b", &keys, &policy_b);
    // Resolve the neighbour first (a clear ping: global policy bypasses b), so that the
    // example's first datagram does not wait for neighbour discovery past its 1 s timeout.
    a.ping_ok(B6, 1);
    protected_round(&lab, &a, &b, &sock, None, A6, B6, 7000);
}

/// TCP client: `ADDR PORT COUNT`; sends COUNT messages, each waiting for its echo; prints
/// `echoed N`.
const TCP_CLIENT: &str = r#"
import socket, sys
a, p, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((a, p), timeout=5)
e = 0
for i in range(n):
    m = b'persock server %d' % i
    s.sendall(m)
    if s.recv(64) == m:
        e += 1
print('echoed', e, flush=True)
"#;

#[test]
fn an_accepted_socket_inherits_the_listeners_policy() {
    let Some(lab) = Lab::new("persock_accept") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    compile_example(&lab);
    let (_da, sock) = daemon_a_bypassing_b(&lab, &a, &keys());
    let policy_b = format!("{{laddr {B4} raddr {A4} ulp tcp rport 7300}} ipsec {{{PROPS}}}\n");
    let _db = Daemon::start(&lab, &b, "b", &keys(), &policy_b);
    let cap = Capture::start(&lab, &b, "vb", "wire");
    let mut c = example_cmd(&a, &lab, &sock, &["tcp-server", A4, "7300", "esp", "3"]);
    let mut server = Proc::spawn(&mut c, "example server");
    let first = server.wait_stdout(Duration::from_secs(5), |l| l == "listening");
    let mut client = b.python(TCP_CLIENT, &[A4, "7300", "3"]);
    let got = client.success(Duration::from_secs(15));
    let out = server.success(Duration::from_secs(10));
    let pcap = cap.stop();
    // Solaris: the option on a listening TCP socket is EINVAL.
    assert!(has(&out, "relisten -1 22"), "{first} {out:?}");
    assert!(has(&out, "getsockopt 2 12 5"), "{out:?}");
    assert!(has(&out, "served 3"), "{out:?}");
    assert!(has(&got, "echoed 3"), "{got:?}");
    assert_only_ipsec(&pcap, A4, B4);
    assert!(esp_between(&pcap) >= 6);
}

#[test]
fn never_needs_privilege_and_then_passes_in_clear() {
    let Some(lab) = Lab::new("persock_never") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    compile_example(&lab);
    let protect = |l: &str, r: &str| format!("{{laddr {l} raddr {r}}} ipsec {{{PROPS}}}\n");
    let (_da, sock) = daemon(&lab, &a, "a", &keys(), &protect(A4, B4));
    // b lets port 7100 pass in clear, and protects the rest.
    let policy_b = format!(
        "{{laddr {B4} ulp udp lport 7100 dir both}} bypass {{}}\n\
         {{laddr {B4} ulp udp lport 7101 dir both}} bypass {{}}\n{}",
        protect(B4, A4)
    );
    let _db = Daemon::start(&lab, &b, "b", &keys(), &policy_b);

    // Unprivileged: EPERM, and the traffic stays protected.
    let _u = udp_echo_server(&b, B4, 7000);
    let cap = Capture::start(&lab, &b, "vb", "unpriv");
    let out = example(
        &a,
        &lab,
        &sock,
        Some(NOBODY),
        &["udp", B4, "7000", "never", "3"],
    );
    let pcap = cap.stop();
    assert!(has(&out, "setsockopt -1 1"), "EPERM expected: {out:?}");
    assert!(has(&out, "echoed 3"), "{out:?}");
    assert_only_ipsec(&pcap, A4, B4);
    assert!(esp_between(&pcap) >= 6);

    // Root: the socket bypasses global policy; its datagrams go clear both ways.
    let _u = udp_echo_server(&b, B4, 7100);
    let cap = Capture::start(&lab, &b, "vb", "priv");
    let out = example(&a, &lab, &sock, None, &["udp", B4, "7100", "never", "3"]);
    let pcap = cap.stop();
    assert!(has(&out, "setsockopt 0 0"), "{out:?}");
    assert!(has(&out, "getsockopt 1 0 0"), "{out:?}");
    assert!(has(&out, "echoed 3"), "{out:?}");
    assert_eq!(clear_to_port(&pcap, 7100), 3, "clear datagrams to b");
    assert_eq!(esp_between(&pcap), 0, "nothing of this flow is protected");

    // The same through the Rust API: root in clear.
    let _u = udp_echo_server(&b, B4, 7101);
    let cap = Capture::start(&lab, &b, "vb", "rust");
    let out = run_rust(&a, None, &sock, &format!("udp {B4} 7101 never 3"));
    let pcap = cap.stop();
    assert!(has(&out, "set ok"), "{out:?}");
    assert!(has(&out, "get 1"), "{out:?}");
    assert!(has(&out, "echoed 3"), "{out:?}");
    assert_eq!(clear_to_port(&pcap, 7101), 3, "clear datagrams to b");
    assert_eq!(esp_between(&pcap), 0, "nothing of this flow is protected");
}

#[test]
fn unique_gives_each_socket_its_own_sa() {
    let Some(lab) = Lab::new("persock_unique") else {
        return;
    };
    let (a, _b) = two_hosts(&lab);
    compile_example(&lab);
    let (da, sock) = daemon_a_bypassing_b(&lab, &a, "");
    let mut km = common::Client::connect(&da.pfkey);
    km.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));

    let cap = Capture::start(&lab, &a, "va", "wire");
    let runs: Vec<Proc> = [41001u16, 41002]
        .iter()
        .map(|lport| {
            let lport = lport.to_string();
            let args = ["udp", B4, "7000", "unique", "30", &lport];
            Proc::spawn(&mut example_cmd(&a, &lab, &sock, &args), "unique client")
        })
        .collect();
    // One ACQUIRE per socket, each bound to the socket's ports and protocol.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let acq = km
            .wait_for(Duration::from_secs(5), |m| m.msg_type == SADB_ACQUIRE)
            .expect("an ACQUIRE per socket");
        let (s, d) = (acq.src.unwrap(), acq.dst.unwrap());
        assert_eq!((s.proto, d.proto), (17, 17), "unique binding names UDP");
        assert_eq!(d.addr, "10.0.0.2:7000".parse::<SocketAddr>().unwrap());
        if !seen.contains(&s.addr.port()) {
            seen.push(s.addr.port());
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, [41001, 41002]);
    // The key manager's answer: one unique SA per socket.
    for (spi, lport) in [(0x5001u32, 41001u16), (0x5002, 41002)] {
        let mut m = common::esp_add(spi, A4, B4);
        if let Some(sa) = m.sa.as_mut() {
            sa.flags |= SADB_X_SAFLAGS_UNIQUE;
        }
        m.src = Some(Address {
            proto: 17,
            prefixlen: 0,
            addr: SocketAddr::new(A4.parse().unwrap(), lport),
        });
        m.dst = Some(Address {
            proto: 17,
            prefixlen: 0,
            addr: SocketAddr::new(B4.parse().unwrap(), 7000),
        });
        km.ok(m);
    }
    std::thread::sleep(Duration::from_millis(800));
    for mut r in runs {
        r.signal("TERM");
        let _ = r.wait_exit(Duration::from_secs(5));
    }
    let pcap = cap.stop();
    let mut by_spi: std::collections::BTreeMap<u32, Vec<u16>> = Default::default();
    for p in pcap.ip().filter(|p| p.proto == 50) {
        by_spi.entry(p.spi().unwrap()).or_default();
    }
    assert_eq!(
        by_spi.keys().copied().collect::<Vec<_>>(),
        [0x5001, 0x5002],
        "each socket's datagrams under its own SA"
    );
    assert_no_clear_udp(&pcap);
}

#[test]
fn self_encapsulation_adds_an_outer_header() {
    let Some(lab) = Lab::new("persock_selfencap") else {
        return;
    };
    let (a, _b) = two_hosts(&lab);
    compile_example(&lab);
    // A tunnel-mode SA between the two hosts themselves (inner = outer addresses), and a
    // transport-mode one: the request must choose the tunnel-mode SA.
    let keys = format!(
        "add esp spi 0x300 src {A4} dst {B4} proto 4 isrc {A4}/32 idst {B4}/32 \
             encr_alg aes-cbc encrkey {CBC_AB} auth_alg sha256 authkey {SHA_AB}\n\
         add esp spi 0x100 src {A4} dst {B4} encr_alg aes-cbc encrkey {CBC_AB} \
             auth_alg sha256 authkey {SHA_AB}\n"
    );
    let (_da, sock) = daemon_a_bypassing_b(&lab, &a, &keys);
    let cap = Capture::start(&lab, &a, "va", "wire");
    let out = example(
        &a,
        &lab,
        &sock,
        None,
        &["udp", B4, "7005", "selfencap", "3"],
    );
    let pcap = cap.stop();
    assert!(has(&out, "setsockopt 0 0"), "{out:?}");
    let esp_sa = esp_sa_line(
        A4,
        B4,
        0x300,
        "AES-CBC [RFC3602]",
        CBC_AB,
        "HMAC-SHA-256-128 [RFC4868]",
        SHA_AB,
    );
    // Decrypted: an outer IP header (ESP) around the original one (UDP to 7005). (b has no
    // ipsecd: its ICMP protocol-unreachable quotes are left out.)
    let rows = tshark(
        &lab,
        &lab.dir.join("wire.pcap"),
        &esp_sa,
        "esp && !icmp",
        &["esp.spi", "ip.proto", "udp.dstport"],
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(tshark_num(&r[0]), Some(0x300), "{r:?}");
        assert_eq!(r[1], "50,17", "outer ESP, inner UDP: {r:?}");
        assert_eq!(r[2], "7005", "{r:?}");
    }
    assert_no_clear_udp(&pcap);
}

#[test]
fn without_ipsecd_the_option_is_not_supported() {
    let Some(lab) = Lab::new("persock_noipsecd") else {
        return;
    };
    let a = lab.ns("a");
    compile_example(&lab);
    let out = example(
        &a,
        &lab,
        &lab.dir.join("nothing-here"),
        None,
        &["udp", "127.0.0.1", "9", "esp", "0"],
    );
    assert!(
        has(&out, "setsockopt -1 93"),
        "EPROTONOSUPPORT expected: {out:?}"
    );
    let out = run_rust(
        &a,
        None,
        &lab.dir.join("nothing-here"),
        "udp 127.0.0.1 9 esp 0",
    );
    assert!(has(&out, "set EPROTONOSUPPORT"), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// The Rust API, run by this binary re-executed inside a namespace.

const CHILD_ENV: &str = "IRONSWAN_PERSOCK_CHILD";

fn run_rust(ns: &Ns, user: Option<&str>, sock: &Path, args: &str) -> Vec<String> {
    let env = [
        ("IRONSWAN_SOCKPOLICY_SOCKET", sock.display().to_string()),
        (CHILD_ENV, args.to_string()),
    ];
    let exe = std::env::current_exe().unwrap();
    run_in(
        ns,
        user,
        &env,
        &exe,
        &[
            "--ignored",
            "--exact",
            "rust_api_child",
            "--nocapture",
            "--test-threads=1",
        ],
    )
}

/// The Rust API's client: `udp|tcplisten ADDR PORT esp|esp3des|never COUNT` from
/// $IRONSWAN_PERSOCK_CHILD; prints `set ok|E...`, `get ESP_REQ`, `latched EINVAL` and
/// `echoed N` (tcplisten: `listen EINVAL`). Not a test by itself: the
/// namespace tests run it.
#[test]
#[ignore]
fn rust_api_child() {
    use ipsec_sockopt::{set_socket_policy, IpsecReq};
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    // libtest has printed the test's name without a newline.
    println!();
    let w: Vec<&str> = args.split_whitespace().collect();
    let [kind, addr, port, mode, count] = w[..] else {
        panic!("bad {CHILD_ENV}: {args}");
    };
    let req = match mode {
        "esp" => IpsecReq::esp(12, 5),
        // 3DES-CBC: not in system policy.
        "esp3des" => IpsecReq::esp(3, 5),
        _ => IpsecReq::bypass(),
    };
    if kind == "tcplisten" {
        // Solaris: IP_SEC_OPT on a listening TCP socket is EINVAL.
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let e = set_socket_policy(&l, &req).unwrap_err();
        println!(
            "listen {}",
            if e.raw_os_error() == Some(22) {
                "EINVAL"
            } else {
                "other"
            }
        );
        return;
    }
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut pol = match set_socket_policy(&s, &req) {
        Ok(p) => {
            println!("set ok");
            Some(p)
        }
        Err(e) => {
            let name = match e.raw_os_error() {
                Some(1) => "EPERM",
                Some(93) => "EPROTONOSUPPORT",
                _ => "other",
            };
            println!("set {name}");
            None
        }
    };
    s.connect(format!("{addr}:{port}")).unwrap();
    if let Some(p) = pol.as_mut() {
        p.update(&s).unwrap();
        println!("get {}", p.get(&s).unwrap().esp_req);
        // Connected: the policy latched.
        let e = p.set(&s, &IpsecReq::default()).unwrap_err();
        println!(
            "latched {}",
            if e.raw_os_error() == Some(22) {
                "EINVAL"
            } else {
                "other"
            }
        );
    }
    let mut echoed = 0;
    for i in 0..count.parse::<u32>().unwrap() {
        let msg = format!("rust persock {i}");
        if s.send(msg.as_bytes()).is_err() {
            continue;
        }
        let mut b = [0u8; 64];
        if let Ok(n) = s.recv(&mut b) {
            if &b[..n] == msg.as_bytes() {
                echoed += 1;
            }
        }
    }
    println!("echoed {echoed}");
}

#[test]
fn rust_api_required_and_never() {
    let Some(lab) = Lab::new("persock_rust") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    let (_da, sock) = daemon_a_bypassing_b(&lab, &a, &keys());
    let policy_b = format!("{{laddr {B4} ulp udp lport 7000}} ipsec {{{PROPS}}}\n");
    let _db = Daemon::start(&lab, &b, "b", &keys(), &policy_b);
    for user in [None, Some(NOBODY)] {
        let _u = udp_echo_server(&b, B4, 7000);
        let cap = Capture::start(&lab, &b, "vb", &format!("rust{}", user.is_some()));
        let out = run_rust(&a, user, &sock, &format!("udp {B4} 7000 esp 4"));
        let pcap = cap.stop();
        assert!(has(&out, "set ok"), "{user:?}: {out:?}");
        assert!(has(&out, "get 2"), "{user:?}: {out:?}");
        assert!(has(&out, "echoed 4"), "{user:?}: {out:?}");
        assert!(has(&out, "latched EINVAL"), "{user:?}: {out:?}");
        assert_only_ipsec(&pcap, A4, B4);
        assert!(esp_between(&pcap) >= 8);
        // Unprivileged: a bypass, or an algorithm system policy does not use
        // (persock-require-priv), is refused; root may choose it.
        if user.is_some() {
            let out = run_rust(&a, user, &sock, &format!("udp {B4} 7000 never 0"));
            assert!(has(&out, "set EPERM"), "{out:?}");
        }
        let out = run_rust(&a, user, &sock, &format!("udp {B4} 7000 esp3des 0"));
        let want = if user.is_some() {
            "set EPERM"
        } else {
            "set ok"
        };
        assert!(has(&out, want), "{user:?}: {out:?}");
        let out = run_rust(&a, user, &sock, "tcplisten 0 0 esp 0");
        assert!(has(&out, "listen EINVAL"), "{out:?}");
    }
}
