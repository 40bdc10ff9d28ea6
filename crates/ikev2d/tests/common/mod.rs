//! What the in.ikev2d end-to-end tests share: starting the daemon in a namespace next
//! to an ipsecd, and reading what it logged.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::netns::{veth, Daemon, Lab, Ns, Proc};

pub mod charon;

/// Namespaces `a` and `b` of `lab` joined by the veth pair va/vb, with addresses `a_addr`
/// and `b_addr` (/24 for IPv4, /64 for IPv6).
pub fn two_namespaces(lab: &Lab, a_addr: &str, b_addr: &str) -> (Ns, Ns) {
    let a = lab.ns("a");
    let b = lab.ns("b");
    veth(&a, "va", &b, "vb");
    let len = if a_addr.contains(':') { 64 } else { 24 };
    a.addr("va", &format!("{a_addr}/{len}"));
    b.addr("vb", &format!("{b_addr}/{len}"));
    (a, b)
}

/// Daemon options for quick dead-peer detection: a liveness check after 1 s of silence,
/// retransmitted after 0.2 and 0.4 s, the peer dead 1.4 s after the check.
pub const FAST_DPD: [&str; 6] = [
    "--dpd-seconds",
    "1",
    "--retransmit-ms",
    "200",
    "--retransmit-sends",
    "3",
];

/// The pre-shared key of the tests.
pub const PSK: &str = "correct horse battery staple";

pub const IKEV2D: &str = env!("CARGO_BIN_EXE_in-ikev2d");
/// The administration tool.
pub const IKEV2ADM: &str = env!("CARGO_BIN_EXE_ikev2adm");

/// One in.ikev2d in a namespace.
pub struct Ike {
    /// The process.
    proc: Proc,
    /// Its namespace.
    ns: Ns,
    /// Its administration socket.
    admin: String,
}

impl Ike {
    /// Starts in-ikev2d in `ns` with `config` (the key of rule \"a-b\" is [`PSK`]) and
    /// waits until it registered with ipsecd `d`.
    pub fn start(lab: &Lab, ns: &Ns, name: &str, d: &Daemon, config: &str, extra: &[&str]) -> Self {
        let cfg = lab.file(&format!("{name}.ikev2.config"), config);
        let psk = lab.file(
            &format!("{name}.ikev2.preshared"),
            &format!("{{ label \"a-b\" key \"{PSK}\" }}\n"),
        );
        let (cfg, psk, pf) = (
            cfg.display().to_string(),
            psk.display().to_string(),
            d.pfkey.display().to_string(),
        );
        let admin = lab
            .dir
            .join(format!("{name}.ikev2adm"))
            .display()
            .to_string();
        let mut args = vec![
            IKEV2D,
            "-f",
            &cfg,
            "--preshared",
            &psk,
            "--pfkey-socket",
            &pf,
            "--admin-socket",
            &admin,
        ];
        args.extend_from_slice(extra);
        let proc = ns.spawn(&args);
        proc.wait_stderr(Duration::from_secs(10), |l| {
            l.contains("registered for ESP")
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: in-ikev2d did not register:\n{}",
                proc.stderr().join("\n")
            )
        });
        Self {
            proc,
            ns: ns.clone(),
            admin,
        }
    }

    /// Runs ikev2adm against this daemon: (success, stdout, stderr).
    pub fn adm(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec![IKEV2ADM, "-s", &self.admin];
        all.extend_from_slice(args);
        let o = self.ns.run(&all);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Kills it (SIGKILL): no goodbye to its peers.
    pub fn kill(&self) {
        self.proc.signal("KILL");
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.proc.stderr().join("\n")
    }

    /// The Child SA pairs installed so far: (inbound SPI, outbound SPI).
    pub fn pairs(&self) -> Vec<(u32, u32)> {
        self.proc
            .stderr()
            .iter()
            .filter_map(|l| {
                let rest = l.split("inbound SPI 0x").nth(1)?;
                let (inb, rest) = rest.split_once(", outbound SPI 0x")?;
                Some((
                    u32::from_str_radix(inb, 16).ok()?,
                    u32::from_str_radix(rest.trim(), 16).ok()?,
                ))
            })
            .collect()
    }

    /// Waits until `what` was logged `n` times.
    pub fn wait_log(&self, what: &str, n: usize, timeout: Duration) {
        let t0 = Instant::now();
        while self
            .proc
            .stderr()
            .iter()
            .filter(|l| l.contains(what))
            .count()
            < n
        {
            assert!(
                t0.elapsed() < timeout,
                "no {n} x {what:?} within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Makes `n` a NAT router: forwarding on, and masquerade (nftables) of what leaves
/// through `out_if`.
pub fn masquerade(n: &Ns, out_if: &str) {
    n.forwarding();
    n.ok(&["nft", "add", "table", "ip", "nat"]);
    n.ok(&[
        "nft",
        "add chain ip nat post { type nat hook postrouting priority 100 ; }",
    ]);
    n.ok(&[
        "nft",
        "add",
        "rule",
        "ip",
        "nat",
        "post",
        "oifname",
        out_if,
        "masquerade",
    ]);
}

/// Runs `ipseckey -n ARGS` in `ns` against ipsecd `d`'s PF_KEY socket (or, with
/// `spawn`, starts it): the command line.
pub fn ipseckey_args(d: &Daemon, args: &[&str]) -> Vec<String> {
    let bin = crate::netns::ipsecd_bin()
        .parent()
        .unwrap()
        .join("ipseckey");
    let mut v = vec![
        "env".to_string(),
        format!("IRONSWAN_PFKEY_SOCKET={}", d.pfkey.display()),
        bin.display().to_string(),
        "-n".to_string(),
    ];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// `ipseckey -n dump esp` against ipsecd `d`: its output.
pub fn dump_esp(ns: &Ns, d: &Daemon) -> String {
    let args = ipseckey_args(d, &["dump", "esp"]);
    ns.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}
