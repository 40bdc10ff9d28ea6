//! Differential tests against an independent ESP/AH implementation: scapy's
//! `scapy.layers.ipsec`, driven through `interop/scapy_oracle.py` (one JSON request per line).
//! Both directions: our packets decrypt in scapy, scapy's packets decrypt with us; and where the
//! IV is a counter (GCM, CCM, CTR, ChaCha20-Poly1305, GMAC) the bytes must be identical.
//!
//! Runs when `IRONSWAN_PYTHON` names a Python with scapy (scripts/test.sh sets it); without it
//! the test says so and passes, so that `cargo test` works on a bare machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::*;
use ipsec_core::{Engine, Mode, PacketBuf, SaConfig, Sadb};
use ipsec_crypto::{AuthAlg, EncrAlg};
use serde_json::{json, Value};

struct Oracle {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    fn start() -> Option<Oracle> {
        let py = std::env::var("IRONSWAN_PYTHON").ok()?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop/scapy_oracle.py");
        let mut child = Command::new(py)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("IRONSWAN_PYTHON is set but the scapy oracle does not start");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Oracle {
            _child: child,
            stdin,
            stdout,
        })
    }

    fn call(&mut self, req: &Value) -> Value {
        let mut line = serde_json::to_string(req).unwrap();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        let mut resp = String::new();
        self.stdout.read_line(&mut resp).unwrap();
        serde_json::from_str(&resp).unwrap_or_else(|e| panic!("bad oracle reply {resp:?}: {e}"))
    }
}

fn scapy_encr(e: EncrAlg) -> Option<(&'static str, Option<u32>)> {
    use EncrAlg::*;
    Some(match e {
        AesGcm16 => ("AES-GCM", Some(16)),
        AesGcm12 => ("AES-GCM", Some(12)),
        AesGcm8 => ("AES-GCM", Some(8)),
        AesCbc => ("AES-CBC", None),
        AesCtr => ("AES-CTR", None),
        AesCcm16 => ("AES-CCM", Some(16)),
        AesCcm8 => ("AES-CCM", Some(8)),
        AesCcm12 => ("AES-CCM", Some(12)),
        ChaCha20Poly1305 => ("CHACHA20-POLY1305", None),
        AesNullGmac => ("AES-NULL-GMAC", None),
        TripleDesCbc => ("3DES", None),
        DesCbc => ("DES", None),
        BlowfishCbc => ("Blowfish", None),
        Null => ("NULL", None),
        _ => return None,
    })
}

fn scapy_auth(a: Option<AuthAlg>) -> Option<&'static str> {
    Some(match a {
        Option::None => "NULL",
        Some(AuthAlg::HmacSha1) => "HMAC-SHA1-96",
        Some(AuthAlg::HmacSha256) => "SHA2-256-128",
        Some(AuthAlg::HmacSha384) => "SHA2-384-192",
        Some(AuthAlg::HmacSha512) => "SHA2-512-256",
        Some(AuthAlg::HmacMd5) => "HMAC-MD5-96",
        Some(AuthAlg::AesCmac) => "AES-CMAC-96",
        _ => return Option::None,
    })
}

fn sa_json(cfg: &SaConfig, esn_hi: u32) -> Option<Value> {
    let proto = if cfg.proto == ipsec_core::Proto::Esp {
        "esp"
    } else {
        "ah"
    };
    let (crypt, icv) = match cfg.encr_alg {
        Some(e) => {
            let (n, i) = scapy_encr(e)?;
            (Value::from(n), i)
        }
        None => (Value::Null, None),
    };
    let auth = scapy_auth(cfg.auth_alg)?;
    let tunnel = if cfg.mode == Mode::Tunnel {
        json!({"src": cfg.src.unwrap().to_string(), "dst": cfg.dst.to_string()})
    } else {
        Value::Null
    };
    let natt = cfg.natt.map_or(
        Value::Null,
        |n| json!({"sport": n.local_port, "dport": n.remote_port}),
    );
    let mut v = json!({
        "proto": proto, "spi": cfg.spi, "crypt_algo": crypt, "crypt_key": hex::encode(cfg.encr_key.expose()),
        "auth_algo": auth, "auth_key": hex::encode(cfg.auth_key.expose()), "tunnel": tunnel,
        "esn_en": cfg.esn, "esn": esn_hi, "nat_t": natt,
    });
    if let Some(i) = icv {
        v["icv_size"] = json!(i);
    }
    Some(v)
}

/// Algorithms whose IV we derive from the sequence number, so scapy can be given the same IV.
fn counter_iv(e: Option<EncrAlg>) -> bool {
    matches!(
        e,
        Some(
            EncrAlg::AesGcm16
                | EncrAlg::AesGcm12
                | EncrAlg::AesGcm8
                | EncrAlg::AesCcm16
                | EncrAlg::AesCcm8
                | EncrAlg::AesCcm12
                | EncrAlg::AesCtr
                | EncrAlg::ChaCha20Poly1305
                | EncrAlg::AesNullGmac
        )
    )
}

#[derive(Default)]
struct Tally {
    ours_to_scapy: usize,
    scapy_to_ours: usize,
    identical: usize,
}

fn run_case(o: &mut Oracle, cfg: &SaConfig, pkt: &[u8], t: &mut Tally) {
    let esn_hi: u32 = if cfg.esn { 5 } else { 0 };
    let Some(sa) = sa_json(cfg, esn_hi) else {
        return;
    };
    let base_seq: u64 = (u64::from(esn_hi) << 32) | 41;
    // Ours -> scapy.
    let mut tx = Sadb::new();
    let id = tx.add(cfg.clone(), 0).unwrap();
    tx.get_mut(id).unwrap().set_seq_out(base_seq);
    let mut eng = Engine::new();
    let mut buf = PacketBuf::from_packet(pkt);
    eng.outbound(&mut tx, &[id], &mut buf, 0).unwrap();
    let ours = buf.data().to_vec();
    let r = o.call(&json!({"op": "decrypt", "sa": sa, "packet": hex::encode(&ours)}));
    assert_eq!(
        r["ok"],
        json!(true),
        "scapy could not decrypt ours: {r} cfg {cfg:?}"
    );
    assert_eq!(
        r["packet"].as_str().unwrap(),
        hex::encode(pkt),
        "scapy decrypted something else; cfg {cfg:?}"
    );
    t.ours_to_scapy += 1;
    // Scapy -> ours, with the same sequence number (and IV where ours is a counter).
    let seq = base_seq + 1;
    let mut req =
        json!({"op": "encrypt", "sa": sa, "packet": hex::encode(pkt), "seq_num": seq as u32});
    let same_iv = counter_iv(cfg.encr_alg) && cfg.proto == ipsec_core::Proto::Esp;
    if same_iv {
        req["iv"] = json!(hex::encode(seq.to_be_bytes()));
    }
    let r = o.call(&req);
    assert_eq!(r["ok"], json!(true), "scapy could not encrypt: {r}");
    let theirs = hex::decode(r["packet"].as_str().unwrap()).unwrap();
    if (same_iv || cfg.proto == ipsec_core::Proto::Ah) && cfg.mode == Mode::Transport {
        assert_eq!(
            hex::encode(&theirs),
            hex::encode(&ours),
            "not byte-identical with scapy; cfg {cfg:?}"
        );
        t.identical += 1;
    }
    let mut rcfg = cfg.clone();
    rcfg.replay_value = base_seq;
    let mut rx = Sadb::new();
    rx.add(rcfg, 0).unwrap();
    let mut b = PacketBuf::from_packet(&theirs);
    let ok = eng.inbound(&mut rx, &mut b, 0);
    assert!(
        ok.is_ok(),
        "we could not decrypt scapy's packet: {ok:?} cfg {cfg:?}"
    );
    assert_eq!(hex::encode(b.data()), hex::encode(pkt), "cfg {cfg:?}");
    t.scapy_to_ours += 1;
}

#[test]
fn differential_against_scapy() {
    let Some(mut o) = Oracle::start() else {
        eprintln!(
            "IRONSWAN_PYTHON not set: scapy differential test not run (scripts/test.sh runs it)"
        );
        return;
    };
    let info = o.call(&json!({"op": "info"}));
    assert_eq!(info["ok"], json!(true), "{info}");
    let mut t = Tally::default();
    let hosts = [
        ("10.0.0.1", "10.0.0.2", "192.168.1.1", "192.168.2.1"),
        ("2001:db8::1", "2001:db8::2", "fd00:1::1", "fd00:2::1"),
    ];
    for (encr, ek, auth, ak) in esp_matrix() {
        for (s, d, is, id) in hosts {
            for mode in [Mode::Transport, Mode::Tunnel] {
                for esn in [false, true] {
                    for natt in [false, true] {
                        let cfg = esp_cfg(encr, ek, auth, ak, v4(s), v4(d), mode, esn, natt);
                        let (ps, pd): (IpAddr, IpAddr) = if mode == Mode::Tunnel {
                            (v4(is), v4(id))
                        } else {
                            (v4(s), v4(d))
                        };
                        for n in [0usize, 33, 1000] {
                            run_case(&mut o, &cfg, &udp_packet(ps, pd, 4000, 53, n), &mut t);
                        }
                    }
                }
            }
        }
    }
    for (auth, ak) in ah_matrix() {
        for (s, d, _, _) in hosts {
            for esn in [false, true] {
                let cfg = ah_cfg(auth, ak, v4(s), v4(d), Mode::Transport, esn);
                run_case(
                    &mut o,
                    &cfg,
                    &udp_packet(v4(s), v4(d), 4000, 53, 100),
                    &mut t,
                );
            }
        }
    }
    eprintln!(
        "scapy differential: {} of ours decrypted by scapy, {} of scapy's decrypted by us, {} byte-identical",
        t.ours_to_scapy, t.scapy_to_ours, t.identical
    );
    assert!(t.ours_to_scapy > 500 && t.scapy_to_ours > 500 && t.identical > 100);
}
