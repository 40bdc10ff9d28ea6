//! Shared helpers for the ipsecpcap tests: packet builders, capture files, SA files, running the
//! tool, and the scapy oracle.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use ipsec_core::{KeyMaterial, Mode, NatT, Proto, SaConfig};
use ipsec_tools::capture::{Item, Reader, RecordKind, RecordMeta, Writer};
use serde_json::Value;

pub fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

pub fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        s += u32::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
            v.push(0);
            v.push(proto);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
            v.extend_from_slice(&(len as u32).to_be_bytes());
            v.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed families"),
    }
    v
}

/// An IP packet with a UDP payload of `n` pattern bytes and correct checksums.
pub fn udp_packet(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, n: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..n)
        .map(|i| (i * 7 + 3 + usize::from(dport)) as u8)
        .collect();
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&((8 + n) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    let mut ps = pseudo(src, dst, 17, udp.len());
    ps.extend_from_slice(&udp);
    let mut c = csum(&ps);
    if c == 0 {
        c = 0xffff;
    }
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    ip_packet(src, dst, 17, &udp)
}

/// An IP header (no options) around `payload`.
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x45, 0x00]);
            p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let c = csum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            p.push(proto);
            p.push(64);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    p.extend_from_slice(payload);
    p
}

/// An Ethernet header for an IP packet of this version.
pub fn eth_header(v6: bool) -> Vec<u8> {
    let mut h = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    h.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    h
}

pub fn key(n: usize, seed: u8) -> KeyMaterial {
    KeyMaterial::new(
        &(0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<_>>(),
    )
}

pub fn natt() -> Option<NatT> {
    Some(NatT {
        local_port: 4500,
        remote_port: 4500,
        local_addr: None,
        remote_addr: None,
        local_behind_nat: true,
        remote_behind_nat: false,
    })
}

/// A transport or tunnel SA with defaults suitable for tests (replay window 64, legacy
/// algorithms allowed).
pub fn sa(proto: Proto, spi: u32, src: &str, dst: &str) -> SaConfig {
    let mut c = SaConfig::new(proto, spi, Some(ip(src)), ip(dst));
    c.replay_window = 64;
    c.allow_legacy = true;
    c
}

/// Makes `c` a tunnel SA for inner traffic `isrc` -> `idst` (host prefixes).
pub fn tunnel(mut c: SaConfig, isrc: &str, idst: &str) -> SaConfig {
    c.mode = Mode::Tunnel;
    c.inner.src = Some(ipsec_core::Prefix::host(ip(isrc)));
    c.inner.dst = Some(ipsec_core::Prefix::host(ip(idst)));
    c.ulp = if ip(isrc).is_ipv4() { 4 } else { 41 };
    c
}

/// One packet record of a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub ts: (u32, u32),
    pub data: Vec<u8>,
}

/// Writes a capture. `ng` selects pcapng.
pub fn write_capture(path: &Path, ng: bool, linktype: u32, recs: &[Rec]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = if ng {
        Writer::new_pcapng(f, linktype as u16).unwrap()
    } else {
        Writer::new_pcap(f, linktype).unwrap()
    };
    for r in recs {
        let meta = RecordMeta {
            kind: if ng {
                RecordKind::Epb
            } else {
                RecordKind::Pcap
            },
            ts_hi: r.ts.0,
            ts_lo: r.ts.1,
            orig_len: r.data.len() as u32,
            ..Default::default()
        };
        w.write_packet(&meta, &[], &r.data).unwrap();
    }
    w.finish().unwrap();
}

/// Reads the packet records of a capture, with its link type.
pub fn read_capture(path: &Path) -> (Vec<Rec>, u32) {
    let f = std::fs::File::open(path).unwrap();
    let mut r = Reader::new(std::io::BufReader::new(f)).unwrap();
    let mut d = Vec::new();
    let mut m = RecordMeta::default();
    let mut out = Vec::new();
    let mut lt = u32::MAX;
    while let Some(item) = r.next_into(&mut d, &mut m).unwrap() {
        if item == Item::Packet {
            lt = m.linktype;
            out.push(Rec {
                ts: (m.ts_hi, m.ts_lo),
                data: d.clone(),
            });
        }
    }
    (out, lt)
}

/// Raw-IP records from packets (timestamps 1000+i s).
pub fn raw_recs(pkts: &[Vec<u8>]) -> Vec<Rec> {
    pkts.iter()
        .enumerate()
        .map(|(i, p)| Rec {
            ts: (1000 + i as u32, 500),
            data: p.clone(),
        })
        .collect()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ipsecpcap-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The result of one run of the tool.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The per-packet line of record `n`.
    pub fn line(&self, n: usize) -> &str {
        let tag = format!("#{n} ");
        self.stdout
            .lines()
            .find(|l| l.starts_with(&tag))
            .unwrap_or_else(|| panic!("no line for #{n} in:\n{}", self.stdout))
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ipsecpcap")
}

/// Runs the binary with `args`.
pub fn run_bin(args: &[&str]) -> Run {
    let o = Command::new(bin()).args(args).output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Writes `sas` as an ipseckey file (one `add` line each, printed by ipsec-config).
pub fn write_sa_file(path: &Path, sas: &[SaConfig]) {
    let mut text = String::from("# written by the ipsecpcap tests\n");
    for c in sas {
        text.push_str(&ipsec_config::ipseckey::print_add(c, false));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    std::fs::write(path, text).unwrap();
}

/// Runs `ipsecpcap op` (encrypt, decrypt, verify) on `input` with the SAs `sas` (written to an
/// ipseckey file in `dir`), writing `output` when given; `extra` are further options.
pub fn run_tool(
    dir: &TempDir,
    op: &str,
    sas: &[SaConfig],
    input: &Path,
    output: Option<&Path>,
    extra: &[&str],
) -> Run {
    let sa_file = dir.path("sas.ipseckey");
    write_sa_file(&sa_file, sas);
    let mut args: Vec<String> = vec![op.into(), "--sa".into(), sa_file.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(input.display().to_string());
    if let Some(o) = output {
        args.push(o.display().to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bin(&refs)
}

/// True when the test must not be skipped for lack of an external tool (CI).
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The scapy oracle (interop/scapy_oracle.py), one process per test.
pub struct Oracle {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    /// Starts the oracle, or returns `None` (after a notice) when IRONSWAN_PYTHON is unset
    /// outside CI. In CI a missing oracle is a failure.
    pub fn start(test: &str) -> Option<Oracle> {
        let Some(py) = std::env::var_os("IRONSWAN_PYTHON") else {
            assert!(
                !ci(),
                "{test}: IRONSWAN_PYTHON is not set but CI is: the scapy oracle is required"
            );
            eprintln!("{test}: IRONSWAN_PYTHON not set: not run (scripts/test.sh runs it)");
            return None;
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop/scapy_oracle.py");
        let mut child = Command::new(py)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("IRONSWAN_PYTHON is set but the scapy oracle does not start");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Oracle {
            child,
            stdin,
            stdout,
        })
    }

    pub fn call(&mut self, req: &Value) -> Value {
        let mut line = serde_json::to_string(req).unwrap();
        line.push('\n');
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut resp = String::new();
        self.stdout.read_line(&mut resp).unwrap();
        serde_json::from_str(&resp).unwrap_or_else(|e| panic!("bad oracle reply {resp:?}: {e}"))
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
