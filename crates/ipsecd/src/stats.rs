//! One snapshot of the daemon's counters (the kstat of Solaris, `/proc/net/xfrm_stat` of
//! Linux), and its two renderings: the control socket's `counters` reply (what ipsecstat
//! reads) and the Prometheus text exposition format (what [`crate::metrics`] serves).
//!
//! A snapshot copies the data plane's counters (their own lock, taken once per batch by the
//! data plane) and then, under the shared core lock, each SA's packets, bytes and drops and the
//! engine's drops by reason (all SAs, and before an SA was found). Both locks are held
//! only for the copy.
//!
//! Drop reasons are the union of the engine's [`DropReason`]s and the policy engine's
//! [`PolicyDrop`](ipsec_core::spd::PolicyDrop)s (some names are shared, e.g. `spd_malformed_packet`); the data plane
//! counts each drop once under its reason's name.

use std::collections::BTreeMap;
use std::fmt::Write;

use ipsec_core::{DropCounters, DropReason, Proto};

use crate::core::{lock, Core};

/// The four data-plane packet counters: (counter, direction, interface).
const PACKETS: [(&str, &str, &str); 4] = [
    ("tun_in", "in", "tun"),
    ("tun_out", "out", "tun"),
    ("wire_in", "in", "wire"),
    ("wire_out", "out", "wire"),
];

/// One SA's statistics.
pub struct SaSnap {
    proto: &'static str,
    spi: u32,
    src: String,
    dst: String,
    packets: u64,
    bytes: u64,
    drops: DropCounters,
}

/// The counters at one moment.
pub struct Snapshot {
    /// Data-plane counters by name (`None` without a data plane).
    plane: Option<BTreeMap<String, u64>>,
    sas: Vec<SaSnap>,
    global: DropCounters,
}

impl Snapshot {
    /// Copies the counters (see the module documentation for the locks).
    pub fn take(plane: Option<&crate::dataplane::Counters>, core: &Core) -> Self {
        let plane = plane.map(crate::dataplane::Counters::snapshot);
        let g = lock(core);
        let sas = g
            .keys
            .sadb()
            .iter()
            .map(|(_, sa)| {
                let c = sa.config();
                SaSnap {
                    proto: match c.proto {
                        Proto::Esp => "esp",
                        Proto::Ah => "ah",
                    },
                    spi: c.spi,
                    src: c.src.map_or_else(|| "*".to_string(), |a| a.to_string()),
                    dst: c.dst.to_string(),
                    packets: sa.stats.packets,
                    bytes: sa.stats.bytes,
                    drops: sa.stats.drops.clone(),
                }
            })
            .collect();
        let global = g.keys.sadb().global_drops.clone();
        Self { plane, sas, global }
    }

    /// The control socket's `counters` reply: `ok`, the data plane's counters as
    /// `name=value`, one `sa PROTO spi=0x.. SRC -> DST packets=N bytes=N [reason=N ...]`
    /// line per SA, and `drop reason=N` per non-zero engine drop reason (all SAs).
    pub fn control_text(&self) -> String {
        let mut o = String::from("ok\n");
        for (k, v) in self.plane.iter().flatten() {
            let _ = writeln!(o, "{k}={v}");
        }
        for s in &self.sas {
            let _ = write!(
                o,
                "sa {} spi=0x{:08x} {} -> {} packets={} bytes={}",
                s.proto, s.spi, s.src, s.dst, s.packets, s.bytes
            );
            for (r, n) in s.drops.nonzero() {
                let _ = write!(o, " {}={n}", r.name());
            }
            o.push('\n');
        }
        for (r, n) in self.global.nonzero() {
            let _ = writeln!(o, "drop {}={n}", r.name());
        }
        o
    }

    /// The Prometheus text exposition format (version 0.0.4). Every drop reason appears,
    /// zero or not; per-SA drop series only for the reasons an SA has seen.
    pub fn prometheus(&self) -> String {
        let plane = self.plane.clone().unwrap_or_default();
        let get = |k: &str| plane.get(k).copied().unwrap_or(0);
        let reasons = ipsec_core::drop::all_reason_names();
        let mut o = String::new();
        family(
            &mut o,
            "ironswan_packets_total",
            "Packets the data plane read (direction=in) from or wrote (direction=out) to the TUN device (cleartext side) or the network (wire side).",
        );
        for (k, dir, iface) in PACKETS {
            let _ = writeln!(
                o,
                "ironswan_packets_total{{direction=\"{dir}\",interface=\"{iface}\"}} {}",
                get(k)
            );
        }
        family(
            &mut o,
            "ironswan_drops_total",
            "Packets the data plane dropped, by reason (Solaris ipdrop counter names).",
        );
        for r in &reasons {
            let _ = writeln!(o, "ironswan_drops_total{{reason=\"{r}\"}} {}", get(r));
        }
        family(
            &mut o,
            "ironswan_dataplane_events_total",
            "Other data-plane counters (accepted, protected, bypassed, NAT-T, queueing and error events), by counter name.",
        );
        for (k, v) in &plane {
            let known = PACKETS.iter().any(|(p, _, _)| p == k)
                || reasons.contains(&k.as_str())
                || clear_drop(k).is_some();
            if !known {
                let _ = writeln!(
                    o,
                    "ironswan_dataplane_events_total{{counter=\"{}\"}} {v}",
                    escape(k)
                );
            }
        }
        family(
            &mut o,
            "ironswan_clear_drops_total",
            "Cleartext packets the nftables table dropped before ipsecd saw them (not in ironswan_drops_total), by direction, reason and policy rule.",
        );
        for (k, v) in &plane {
            if let Some((dir, reason, rule)) = clear_drop(k) {
                let _ = writeln!(
                    o,
                    "ironswan_clear_drops_total{{direction=\"{}\",reason=\"{}\",rule=\"{}\"}} {v}",
                    escape(dir),
                    escape(reason),
                    escape(rule)
                );
            }
        }
        family(
            &mut o,
            "ironswan_engine_drops_total",
            "Packets the ESP/AH engine dropped (on an SA or before one was found), by reason; ironswan_drops_total also has the policy drops.",
        );
        for r in DropReason::ALL {
            let _ = writeln!(
                o,
                "ironswan_engine_drops_total{{reason=\"{}\"}} {}",
                r.name(),
                self.global.get(*r)
            );
        }
        let _ = writeln!(
            o,
            "# HELP ironswan_sas Security associations in the SADB.\n# TYPE ironswan_sas gauge\nironswan_sas {}",
            self.sas.len()
        );
        let label = |s: &SaSnap| {
            format!(
                "spi=\"0x{:08x}\",src=\"{}\",dst=\"{}\",proto=\"{}\"",
                s.spi,
                escape(&s.src),
                escape(&s.dst),
                s.proto
            )
        };
        for (name, help, value) in [
            (
                "ironswan_sa_packets_total",
                "Packets an SA protected or verified.",
                (|s: &SaSnap| s.packets) as fn(&SaSnap) -> u64,
            ),
            (
                "ironswan_sa_bytes_total",
                "Payload bytes an SA protected or verified.",
                |s: &SaSnap| s.bytes,
            ),
        ] {
            family(&mut o, name, help);
            for s in &self.sas {
                let _ = writeln!(o, "{name}{{{}}} {}", label(s), value(s));
            }
        }
        family(
            &mut o,
            "ironswan_sa_drops_total",
            "Packets dropped on an SA, by reason (reasons the SA has seen).",
        );
        for s in &self.sas {
            for (r, n) in s.drops.nonzero() {
                let _ = writeln!(
                    o,
                    "ironswan_sa_drops_total{{{},reason=\"{}\"}} {n}",
                    label(s),
                    r.name()
                );
            }
        }
        o
    }
}

/// `clear_drop_DIR_REASON_rule_N` (the nftables table's counters) → (DIR, REASON, N).
fn clear_drop(name: &str) -> Option<(&str, &str, &str)> {
    let rest = name.strip_prefix("clear_drop_")?;
    let (dir, rest) = rest.split_once('_')?;
    let (reason, rule) = rest.rsplit_once("_rule_")?;
    Some((dir, reason, rule))
}

/// The `# HELP` and `# TYPE ... counter` lines of a family.
fn family(o: &mut String, name: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_sorts_the_plane_counters_into_families() {
        let plane: BTreeMap<String, u64> = [
            ("tun_in", 5),
            ("esp_bad_auth", 2),
            ("spd_got_clear", 1),
            ("out_protected", 4),
            ("clear_drop_in_spd_got_clear_rule_3", 7),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut drops = DropCounters::default();
        drops.count(DropReason::EspReplay);
        let s = Snapshot {
            plane: Some(plane),
            sas: vec![SaSnap {
                proto: "esp",
                spi: 0x1000,
                src: "*".into(),
                dst: "10.0.0.2".into(),
                packets: 3,
                bytes: 192,
                drops,
            }],
            global: DropCounters::default(),
        };
        let t = s.prometheus();
        for want in [
            "ironswan_packets_total{direction=\"in\",interface=\"tun\"} 5\n",
            "ironswan_packets_total{direction=\"out\",interface=\"wire\"} 0\n",
            "ironswan_drops_total{reason=\"esp_bad_auth\"} 2\n",
            "ironswan_drops_total{reason=\"spd_got_clear\"} 1\n",
            "ironswan_drops_total{reason=\"ah_no_sa\"} 0\n",
            "ironswan_dataplane_events_total{counter=\"out_protected\"} 4\n",
            "ironswan_clear_drops_total{direction=\"in\",reason=\"spd_got_clear\",rule=\"3\"} 7\n",
            "ironswan_sa_packets_total{spi=\"0x00001000\",src=\"*\",dst=\"10.0.0.2\",proto=\"esp\"} 3\n",
            "ironswan_sa_drops_total{spi=\"0x00001000\",src=\"*\",dst=\"10.0.0.2\",proto=\"esp\",reason=\"esp_replay\"} 1\n",
            "# TYPE ironswan_sas gauge\nironswan_sas 1\n",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        assert!(!t.contains("counter=\"tun_in\""), "{t}");
        assert!(!t.contains("counter=\"clear_drop"), "{t}");
        assert_eq!(
            t.matches("ironswan_drops_total{").count(),
            ipsec_core::drop::all_reason_names().len()
        );
    }
}
