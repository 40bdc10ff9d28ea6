//! What the in.ikev2d end-to-end tests share: starting the daemon in a namespace next
//! to an ipsecd, and reading what it logged.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::netns::{Daemon, Lab, Ns, Proc};

/// The pre-shared key of the tests.
pub const PSK: &str = "correct horse battery staple";

pub const IKEV2D: &str = env!("CARGO_BIN_EXE_in-ikev2d");

/// One in.ikev2d in a namespace.
pub struct Ike {
    /// The process.
    proc: Proc,
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
        let mut args = vec![
            IKEV2D,
            "-f",
            &cfg,
            "--preshared",
            &psk,
            "--pfkey-socket",
            &pf,
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
        Self { proc }
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
