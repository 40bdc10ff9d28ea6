//! ipsecstat: what ipsecd's data plane has done: packets per path, drops by named reason
//! (Solaris ipdrop names), and per SA packets, bytes and drops.
//!
//! ```text
//! ipsecstat [-a|--all] [--json] [--socket PATH]
//! ```
//!
//! It asks ipsecd's control socket (`--socket`, `$IRONSWAN_CONTROL_SOCKET`, default
//! `/run/ironswan/control.sock`; root or CAP_NET_ADMIN) for its counters. Drop reasons are
//! shown when non-zero; `--all` shows every reason the data path counts (the engine's and the
//! policy engine's), zeros included, for the data plane, the engine and each SA. `--json`
//! prints one JSON object:
//!
//! ```text
//! {"dataplane": {COUNTER: N, ...}, "drops": {REASON: N, ...}, "engine_drops": {REASON: N, ...},
//!  "sas": [{"proto": "esp", "spi": N, "src": "10.0.0.1" | "*", "dst": "...",
//!           "packets": N, "bytes": N, "drops": {REASON: N, ...}}, ...]}
//! ```
//!
//! `dataplane` holds the data plane's other counters (absent without a data plane).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde_json::{json, Map, Value};

/// Shows ipsecd's data-plane counters and per-SA statistics.
#[derive(Parser, Debug)]
#[command(name = "ipsecstat", version)]
struct Args {
    /// ipsecd's control socket.
    #[arg(
        long,
        env = "IRONSWAN_CONTROL_SOCKET",
        default_value = "/run/ironswan/control.sock"
    )]
    socket: PathBuf,
    /// Show every drop reason, zero or not.
    #[arg(short, long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match ipsec_tools::control::request(&args.socket, "counters") {
        Ok(body) => {
            let s = Stats::parse(&body, args.all);
            if args.json {
                println!("{}", s.json());
            } else {
                print!("{}", s.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipsecstat: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One SA's line.
struct Sa {
    proto: String,
    spi: u32,
    src: String,
    dst: String,
    packets: u64,
    bytes: u64,
    drops: BTreeMap<String, u64>,
}

/// The `counters` reply, sorted into sections.
struct Stats {
    /// `None` when ipsecd runs no data plane.
    plane: Option<BTreeMap<String, u64>>,
    drops: BTreeMap<String, u64>,
    engine: BTreeMap<String, u64>,
    sas: Vec<Sa>,
}

impl Stats {
    /// Parses the reply body; with `all`, every drop reason gets an entry (0 if absent).
    fn parse(body: &str, all: bool) -> Self {
        let reasons = ipsec_core::drop::all_reason_names();
        let engine_reasons: Vec<&str> = ipsec_core::DropReason::ALL
            .iter()
            .map(|r| r.name())
            .collect();
        let zeros = |names: &[&str]| -> BTreeMap<String, u64> {
            if all {
                names.iter().map(|n| ((*n).to_string(), 0)).collect()
            } else {
                BTreeMap::new()
            }
        };
        let mut s = Self {
            plane: None,
            drops: zeros(&reasons),
            engine: zeros(&engine_reasons),
            sas: Vec::new(),
        };
        let num = |v: &str| v.parse::<u64>().unwrap_or(0);
        for line in body.lines() {
            if let Some(sa) = line.strip_prefix("sa ") {
                let w: Vec<&str> = sa.split_whitespace().collect();
                let field = |i: usize| w.get(i).copied().unwrap_or("").to_string();
                let mut e = Sa {
                    proto: field(0),
                    spi: w
                        .get(1)
                        .and_then(|t| t.strip_prefix("spi=0x"))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .unwrap_or(0),
                    src: field(2),
                    dst: field(4),
                    packets: 0,
                    bytes: 0,
                    drops: zeros(&engine_reasons),
                };
                for kv in w.iter().skip(5) {
                    match kv.split_once('=') {
                        Some(("packets", v)) => e.packets = num(v),
                        Some(("bytes", v)) => e.bytes = num(v),
                        Some((k, v)) => {
                            e.drops.insert(k.to_string(), num(v));
                        }
                        None => {}
                    }
                }
                s.sas.push(e);
            } else if let Some((k, v)) = line.strip_prefix("drop ").and_then(|d| d.split_once('='))
            {
                s.engine.insert(k.to_string(), num(v));
            } else if let Some((k, v)) = line.split_once('=') {
                if reasons.contains(&k) {
                    s.drops.insert(k.to_string(), num(v));
                } else {
                    s.plane
                        .get_or_insert_with(BTreeMap::new)
                        .insert(k.to_string(), num(v));
                }
            }
        }
        if s.plane.is_none() && !s.drops.values().all(|v| *v == 0) {
            s.plane = Some(BTreeMap::new());
        }
        s
    }

    fn json(&self) -> Value {
        let map = |m: &BTreeMap<String, u64>| -> Value {
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<Map<_, _>>(),
            )
        };
        let mut o = Map::new();
        if let Some(p) = &self.plane {
            o.insert("dataplane".into(), map(p));
        }
        o.insert("drops".into(), map(&self.drops));
        o.insert("engine_drops".into(), map(&self.engine));
        let sas = self
            .sas
            .iter()
            .map(|s| {
                json!({
                    "proto": s.proto, "spi": s.spi, "src": s.src, "dst": s.dst,
                    "packets": s.packets, "bytes": s.bytes, "drops": map(&s.drops),
                })
            })
            .collect();
        o.insert("sas".into(), Value::Array(sas));
        Value::Object(o)
    }

    fn text(&self) -> String {
        let mut o = String::from("Data plane (packets):\n");
        match &self.plane {
            None => o.push_str("  (no data plane)\n"),
            Some(p) if p.is_empty() => o.push_str("  (nothing yet)\n"),
            Some(p) => {
                for (k, v) in p {
                    o.push_str(&format!("  {k:<32}{v:>12}\n"));
                }
            }
        }
        section(&mut o, "Drops by reason (data plane):", &self.drops);
        o.push_str("Security associations:\n");
        if self.sas.is_empty() {
            o.push_str("  (none)\n");
        }
        for s in &self.sas {
            o.push_str(&format!(
                "  {} spi=0x{:08x} {} -> {} packets={} bytes={}\n",
                s.proto, s.spi, s.src, s.dst, s.packets, s.bytes
            ));
            for (k, v) in &s.drops {
                o.push_str(&format!("    {k:<30}{v:>12}\n"));
            }
        }
        section(&mut o, "Engine drops (all SAs):", &self.engine);
        o
    }
}

fn section(o: &mut String, title: &str, m: &BTreeMap<String, u64>) {
    o.push_str(title);
    o.push('\n');
    if m.is_empty() {
        o.push_str("  (none)\n");
    }
    for (k, v) in m {
        o.push_str(&format!("  {k:<32}{v:>12}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "tun_in=5\nesp_bad_auth=2\nsa esp spi=0x00001000 10.0.0.1 -> 10.0.0.2 packets=3 bytes=192 esp_replay=1\ndrop esp_bad_auth=1\n";

    #[test]
    fn sections_are_laid_out() {
        let t = Stats::parse(BODY, false).text();
        assert!(t.contains("  tun_in"), "{t}");
        assert!(t.contains("  esp spi=0x00001000 10.0.0.1 -> 10.0.0.2 packets=3 bytes=192\n"));
        assert!(t.contains("    esp_replay"), "{t}");
        assert!(!t.contains("esp_no_sa"), "{t}");
        assert!(Stats::parse("", false).text().contains("(no data plane)"));
    }

    #[test]
    fn all_lists_every_reason_and_json_parses() {
        let s = Stats::parse(BODY, true);
        let t = s.text();
        for r in ipsec_core::drop::all_reason_names() {
            assert!(t.contains(&format!("  {r} ")), "{r} missing:\n{t}");
        }
        let v: Value = serde_json::from_str(&s.json().to_string()).unwrap();
        assert_eq!(v["drops"]["esp_bad_auth"], 2);
        assert_eq!(v["drops"]["esp_no_sa"], 0);
        assert_eq!(v["sas"][0]["spi"], 4096);
        assert_eq!(v["sas"][0]["drops"]["esp_replay"], 1);
        assert_eq!(v["engine_drops"]["esp_bad_auth"], 1);
        assert_eq!(v["dataplane"]["tun_in"], 5);
    }
}
