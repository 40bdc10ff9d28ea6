//! tshark decrypts and ICV-checks captures that `ipsecpcap encrypt` wrote, for every
//! algorithm Wireshark's ESP dissector decrypts (AES-CBC, AES-CTR, AES-GCM with 8/12/16-octet
//! ICVs, 3DES, DES, Blowfish with 128-bit keys, NULL; with HMAC-SHA-1-96, HMAC-SHA-256-128,
//! HMAC-SHA-384-192, HMAC-SHA-512-256, HMAC-MD5-96 or no integrity), in transport and tunnel
//! mode, IPv4 and IPv6, with and without NAT-T. tshark has no ESN and never checks AH ICVs,
//! so neither is in this matrix (the scapy matrix covers them).
//!
//! tshark gets an `esp_sa` table (written by `ipsec_config::esp_sa::format_line`) in a
//! throwaway `WIRESHARK_CONFIG_DIR`. Every packet must decrypt to the expected inner
//! destination address and UDP port, with the ICV checked good; a few tampered packets must
//! be flagged bad. Without tshark the test prints a notice and passes, except under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;

use common::*;
use ipsec_core::{Mode, Proto, SaConfig};
use ipsec_crypto::{encr_info, AuthAlg, EncrAlg};

fn tshark_available(test: &str) -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !ci(),
            "{test}: tshark is not installed but CI is set: it is required"
        );
        eprintln!("{test}: tshark not found: not run (.ci/run installs it)");
    }
    ok
}

struct Cell {
    sa: SaConfig,
    inner_dst: IpAddr,
    dports: Vec<u16>,
    label: String,
    checks_icv: bool,
    dims: Vec<(&'static str, String)>,
}

/// Encryption algorithms tshark decrypts, with key lengths (salt included) to rotate through.
fn encr_algs() -> Vec<(EncrAlg, &'static [usize])> {
    use EncrAlg::*;
    vec![
        (AesCbc, &[16, 24, 32]),
        (AesCtr, &[20, 28, 36]),
        (AesGcm16, &[20, 28, 36]),
        (AesGcm12, &[20, 28, 36]),
        (AesGcm8, &[20, 28, 36]),
        (TripleDesCbc, &[24]),
        (DesCbc, &[8]),
        (BlowfishCbc, &[16]),
        (Null, &[0]),
    ]
}

fn auth_algs() -> Vec<Option<(AuthAlg, usize)>> {
    use AuthAlg::*;
    vec![
        Some((HmacSha1, 20)),
        Some((HmacSha256, 32)),
        Some((HmacSha384, 48)),
        Some((HmacSha512, 64)),
        Some((HmacMd5, 16)),
        Option::None,
    ]
}

fn is_aead(e: EncrAlg) -> bool {
    matches!(e, EncrAlg::AesGcm16 | EncrAlg::AesGcm12 | EncrAlg::AesGcm8)
}

fn addr(v6: bool, k: usize, role: u8, inner: bool) -> IpAddr {
    let (a, b) = ((k >> 8) as u8, (k & 0xff) as u8);
    if v6 {
        let pre = if inner { "fd00" } else { "2001:db8" };
        ip(&format!("{pre}:{a:x}:{b:x}::{role}"))
    } else {
        IpAddr::from([if inner { 100 } else { 10 }, a, b, role])
    }
}

fn matrix() -> Vec<Cell> {
    let mut cells = Vec::new();
    let mut k = 0usize;
    for (e, ks) in encr_algs() {
        let auths = if is_aead(e) {
            vec![None]
        } else {
            auth_algs()
                .into_iter()
                .filter(|a| e != EncrAlg::Null || a.is_some())
                .collect()
        };
        for a in auths {
            for mode in [Mode::Transport, Mode::Tunnel] {
                for v6 in [false, true] {
                    for natt_on in [false, true] {
                        let (os, od) = (addr(v6, k, 1, false), addr(v6, k, 2, false));
                        let mut c = SaConfig::new(Proto::Esp, 0x20000 + k as u32, Some(os), od);
                        c.allow_legacy = true;
                        c.encr_alg = Some(e);
                        let ek = ks[k % ks.len()];
                        c.encr_key = key(ek, k as u8);
                        if let Some((aa, ak)) = a {
                            c.auth_alg = Some(aa);
                            c.auth_key = key(ak, (k as u8) ^ 0x5a);
                        }
                        if natt_on {
                            c.natt = natt();
                        }
                        let (is, id) = if mode == Mode::Tunnel {
                            let (is, id) = (addr(v6, k, 1, true), addr(v6, k, 2, true));
                            c = tunnel(c, &is.to_string(), &id.to_string());
                            (is, id)
                        } else {
                            (os, od)
                        };
                        let _ = is;
                        let ename = encr_info(e).name;
                        let keybits = (ek - encr_info(e).salt_bytes) * 8;
                        let alg = match a {
                            Some((aa, _)) => {
                                format!("{ename}-{keybits} + {}", ipsec_crypto::auth_info(aa).name)
                            }
                            None => format!("{ename}-{keybits}"),
                        };
                        let dims = vec![
                            ("encryption", format!("{ename}-{keybits}")),
                            (
                                "authentication",
                                a.map_or("none".to_string(), |(aa, _)| {
                                    ipsec_crypto::auth_info(aa).name.to_string()
                                }),
                            ),
                            ("mode", format!("{mode:?}").to_lowercase()),
                            ("family", if v6 { "IPv6" } else { "IPv4" }.to_string()),
                            ("NAT-T", if natt_on { "on" } else { "off" }.to_string()),
                        ];
                        cells.push(Cell {
                            label: format!(
                                "cell {k}: {alg} {mode:?} {} natt={natt_on}",
                                if v6 { "IPv6" } else { "IPv4" }
                            ),
                            checks_icv: a.is_some() || is_aead(e),
                            inner_dst: id,
                            dports: vec![10_000 + 2 * k as u16, 10_001 + 2 * k as u16],
                            sa: c,
                            dims,
                        });
                        k += 1;
                    }
                }
            }
        }
    }
    cells
}

fn last(field: &str) -> &str {
    field.rsplit(',').next().unwrap_or("")
}

#[test]
fn tshark_decrypts_and_checks_what_ipsecpcap_encrypts() {
    if !tshark_available("tshark_decrypts_and_checks_what_ipsecpcap_encrypts") {
        return;
    }
    let cells = matrix();
    let dir = TempDir::new("tshark");
    // Plaintext: two UDP packets per cell, addressed to the cell's inner destination.
    let mut pkts = Vec::new();
    for c in &cells {
        let src = match c.sa.mode {
            Mode::Tunnel => c.sa.inner.src.unwrap().addr,
            Mode::Transport => c.sa.src.unwrap(),
        };
        for (j, dport) in c.dports.iter().enumerate() {
            pkts.push(udp_packet(src, c.inner_dst, 3000, *dport, 40 + 300 * j));
        }
    }
    let sas: Vec<SaConfig> = cells.iter().map(|c| c.sa.clone()).collect();
    let plain = dir.path("plain.pcapng");
    let enc = dir.path("enc.pcapng");
    write_capture(&plain, true, 101, &raw_recs(&pkts));
    let r = run_tool(&dir, "encrypt", &sas, &plain, Some(&enc), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // Tamper with the last packet of three cells: tshark must say their ICV is bad.
    let (mut recs, _) = read_capture(&enc);
    let tampered: Vec<usize> = cells
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.checks_icv
                && c.sa.natt.is_none()
                && c.sa.mode == Mode::Transport
                && c.sa.dst.is_ipv4()
                && matches!(
                    c.sa.encr_alg,
                    Some(EncrAlg::AesCbc | EncrAlg::AesGcm16 | EncrAlg::TripleDesCbc)
                )
        })
        .map(|(i, _)| 2 * i + 1)
        .take(3)
        .collect();
    assert_eq!(tampered.len(), 3);
    for &i in &tampered {
        let n = recs[i].data.len();
        recs[i].data[n - 1] ^= 0x01;
    }
    write_capture(&enc, false, 101, &recs);

    // The esp_sa table, in a throwaway profile.
    let conf = TempDir::new("wireshark-conf");
    let mut table = String::new();
    for c in &cells {
        let line = ipsec_config::esp_sa::format_line(&c.sa)
            .unwrap_or_else(|| panic!("no esp_sa line for {}", c.label));
        table.push_str(&line);
        table.push('\n');
    }
    std::fs::write(conf.path("esp_sa"), &table).unwrap();
    // Only the layers under test are dissected: a port-based or heuristic dissector of the
    // inner payload (port 3000 is DIS, for one) can throw on the pattern bytes, and an
    // exception there stops the ESP dissector before it checks the ICV.
    let protos = Command::new("tshark")
        .args(["-G", "protocols"])
        .output()
        .unwrap();
    let keep = [
        "frame",
        "raw",
        "eth",
        "ethertype",
        "ip",
        "ipv6",
        "udp",
        "udpencap",
        "esp",
        "data",
    ];
    let disabled: String = String::from_utf8_lossy(&protos.stdout)
        .lines()
        .filter_map(|l| l.split('\t').nth(2))
        .filter(|f| !keep.contains(f) && !f.starts_with("_ws."))
        .map(|f| format!("{f}\n"))
        .collect();
    std::fs::write(conf.path("disabled_protos"), disabled).unwrap();
    // Debugging aid: IPSECPCAP_TSHARK_KEEP=DIR keeps the table and the capture.
    if let Some(d) = std::env::var_os("IPSECPCAP_TSHARK_KEEP") {
        std::fs::write(std::path::Path::new(&d).join("esp_sa"), &table).unwrap();
        std::fs::copy(&enc, std::path::Path::new(&d).join("enc.pcap")).unwrap();
    }
    let out = Command::new("tshark")
        .env("WIRESHARK_CONFIG_DIR", &conf.0)
        .args(["-n", "-r"])
        .arg(&enc)
        .args([
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "separator=/t",
            "-e",
            "frame.number",
            "-e",
            "esp.spi",
            "-e",
            "esp.sequence",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "udp.dstport",
            "-e",
            "esp.icv_good",
            "-e",
            "esp.icv_bad",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), pkts.len(), "tshark output:\n{text}");
    let mut good = 0;
    let mut unchecked = 0;
    let mut bad_flagged = 0;
    let mut per: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (ci, c) in cells.iter().enumerate() {
        for (j, dport) in c.dports.iter().enumerate() {
            let i = 2 * ci + j;
            let row = &rows[i];
            let ctx = format!("frame {} of {}: {:?}", i + 1, c.label, row);
            assert_eq!(row[1], format!("0x{:08x}", c.sa.spi), "{ctx}");
            assert_eq!(row[2], (j + 1).to_string(), "{ctx}");
            if tampered.contains(&i) {
                assert_eq!(row[7], "1", "tampered packet not flagged: {ctx}");
                bad_flagged += 1;
                continue;
            }
            let dst = if c.inner_dst.is_ipv4() {
                row[3]
            } else {
                row[4]
            };
            assert_eq!(last(dst), c.inner_dst.to_string(), "inner address: {ctx}");
            assert_eq!(last(row[5]), dport.to_string(), "inner port: {ctx}");
            if c.checks_icv {
                assert_eq!((row[6], row[7]), ("1", "0"), "ICV not good: {ctx}");
                good += 1;
            } else {
                assert_eq!((row[6], row[7]), ("", ""), "{ctx}");
                unchecked += 1;
            }
        }
        for (d, v) in &c.dims {
            *per.entry((d, v.clone())).or_default() += 1;
        }
    }
    eprintln!(
        "tshark matrix: {} cells, {} packets: {good} decrypted with ICV good, {unchecked} decrypted \
         (no integrity algorithm), {bad_flagged} tampered flagged bad",
        cells.len(),
        pkts.len()
    );
    let mut cur = "";
    for ((d, v), n) in &per {
        if *d != cur {
            eprintln!("  {d}:");
            cur = d;
        }
        eprintln!("    {v:<24} {n:>4} cells");
    }
    assert_eq!(bad_flagged, 3);
}
