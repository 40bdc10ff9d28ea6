//! Per-packet lines and the summary of an `ipsecpcap` run.
//!
//! One line per packet record, in capture order:
//! `#12 esp spi=0x1000 seq=12 ok`, `#13 esp spi=0x1000 seq=13 drop esp_bad_auth`,
//! `#14 10.0.0.1 -> 10.0.0.9 no SA (passed)`; `verify` adds `replay=... icv=...` before the
//! result. Then totals per result and per SA.

use std::io::{self, Write};
use std::net::IpAddr;

use ipsec_core::{Mode, Proto, Sadb};
use ipsec_crypto::{auth_info, encr_info};

use super::inspect::SecHdrs;
use super::select::Candidate;
use super::{proto_label, Op};

/// The result of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Processed.
    Ok,
    /// Copied unchanged; the text says why.
    Passed(&'static str),
    /// Dropped with this reason.
    Drop(&'static str),
    /// A fragment held for reassembly (its fate is reported with the datagram).
    Held,
}

/// `verify`'s verdicts for one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// `new`, `in-window`, `replay`, `too-old`, `exhausted` or `off` (no window).
    pub replay: Option<&'static str>,
    /// `good`, `bad`, `none` (no integrity) or `unchecked`.
    pub icv: Option<&'static str>,
}

/// Accumulates counts and prints lines.
pub struct Report {
    op: Op,
    quiet: bool,
    packets: u64,
    counts: Vec<(&'static str, u64)>,
    line: String,
}

/// Label under which fragments merged into a later record are counted.
const REASSEMBLED: &str = "fragment (reassembled)";

impl Report {
    /// A report for `op`; `quiet` suppresses the per-packet lines.
    pub fn new(op: Op, quiet: bool) -> Self {
        Self {
            op,
            quiet,
            packets: 0,
            counts: Vec::new(),
            line: String::with_capacity(160),
        }
    }

    /// Records read.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    fn count(&mut self, label: &'static str, n: u64) {
        match self.counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, c)) => *c += n,
            None => self.counts.push((label, n)),
        }
    }

    /// True when the run failed: a drop, or an unmatched packet without `pass_unmatched`.
    pub fn failed(&self, pass_unmatched: bool) -> bool {
        self.counts.iter().any(|(l, n)| {
            *n > 0
                && match *l {
                    "ok" | REASSEMBLED => false,
                    l if l.ends_with("(passed)") => !pass_unmatched,
                    _ => true,
                }
        })
    }

    /// Reports one record.
    #[allow(clippy::too_many_arguments)]
    pub fn packet(
        &mut self,
        out: &mut dyn Write,
        number: u64,
        hdrs: &SecHdrs,
        seqs: &[u64; 2],
        label: Label,
        reassembled: &[u64],
        merged_failed: bool,
        verdicts: Option<Verdicts>,
    ) -> io::Result<()> {
        use std::fmt::Write as _;
        self.packets += 1;
        match label {
            Label::Ok => self.count("ok", 1),
            Label::Passed(l) | Label::Drop(l) => self.count(l, 1),
            Label::Held => {}
        }
        if !reassembled.is_empty() {
            let l = match (merged_failed, label) {
                (true, Label::Drop(l)) => l,
                _ => REASSEMBLED,
            };
            self.count(l, reassembled.len() as u64);
        }
        if self.quiet {
            return Ok(());
        }
        let s = &mut self.line;
        s.clear();
        let _ = write!(s, "#{number}");
        for (h, seq) in hdrs.iter().zip(seqs.iter()) {
            let _ = write!(
                s,
                " {} spi={:#x} seq={}",
                proto_label(h.proto, hdrs.natt && h.proto == Proto::Esp),
                h.spi,
                seq
            );
        }
        if hdrs.is_empty() {
            if let (Some(a), Some(b), Label::Passed(_)) = (hdrs.src, hdrs.dst, label) {
                let _ = write!(s, " {a} -> {b}");
            }
        }
        if let Some(v) = verdicts {
            if let Some(r) = v.replay {
                let _ = write!(s, " replay={r}");
            }
            if let Some(i) = v.icv {
                let _ = write!(s, " icv={i}");
            }
        }
        match label {
            Label::Ok => s.push_str(" ok"),
            Label::Passed(l) => {
                s.push(' ');
                s.push_str(l);
            }
            Label::Drop(l) => {
                s.push_str(" drop ");
                s.push_str(l);
            }
            Label::Held => s.push_str(" fragment held for reassembly"),
        }
        if !reassembled.is_empty() {
            let what = if merged_failed {
                "datagram of"
            } else {
                "reassembled with"
            };
            let _ = write!(s, " ({what}");
            for n in reassembled {
                let _ = write!(s, " #{n}");
            }
            s.push(')');
        }
        s.push('\n');
        out.write_all(s.as_bytes())
    }

    /// A record whose final result is known only at the end (an incomplete datagram).
    pub fn late_drop(
        &mut self,
        out: &mut dyn Write,
        number: u64,
        reason: &'static str,
        why: &str,
    ) -> io::Result<()> {
        self.count(reason, 1);
        if self.quiet {
            return Ok(());
        }
        writeln!(out, "#{number} drop {reason} ({why})")
    }

    /// Prints totals per result and per SA.
    pub fn summary(
        &mut self,
        out: &mut dyn Write,
        sadb: &Sadb,
        cands: &[Candidate],
        pass_unmatched: bool,
    ) -> io::Result<()> {
        let ok = self.get("ok");
        let passed: u64 = self
            .counts
            .iter()
            .filter(|(l, _)| l.ends_with("(passed)"))
            .map(|(_, n)| n)
            .sum();
        let merged = self.get(REASSEMBLED);
        let dropped = self.counts.iter().map(|(_, n)| n).sum::<u64>() - ok - passed - merged;
        writeln!(
            out,
            "ipsecpcap {}: {} packets: {ok} ok, {dropped} dropped, {passed} passed unchanged{}",
            self.op.name(),
            self.packets,
            if merged > 0 {
                format!(", {merged} fragments reassembled")
            } else {
                String::new()
            }
        )?;
        let mut counts = self.counts.clone();
        counts.sort_by(|a, b| (a.0 != "ok").cmp(&(b.0 != "ok")).then(a.0.cmp(b.0)));
        for (l, n) in counts {
            writeln!(out, "  {l:<28} {n:>10}")?;
        }
        let mut any = false;
        for c in cands {
            let Some(sa) = sadb.get(c.id) else { continue };
            if sa.stats.packets == 0 && sa.stats.drops.total() == 0 {
                continue;
            }
            if !any {
                writeln!(out, "per SA:")?;
                any = true;
            }
            let cfg = &c.cfg;
            let algs = match cfg.proto {
                Proto::Esp => {
                    let e = cfg.encr_alg.map_or("null", |e| encr_info(e).name);
                    match cfg.auth_alg.filter(|a| *a != ipsec_crypto::AuthAlg::None) {
                        Some(a) => format!("{e}/{}", auth_info(a).name),
                        None => e.to_string(),
                    }
                }
                Proto::Ah => cfg
                    .auth_alg
                    .map_or("none", |a| auth_info(a).name)
                    .to_string(),
            };
            let src = cfg.src.map_or("any".to_string(), |a: IpAddr| a.to_string());
            let mut line = format!(
                "  {} spi={:#x} {src} -> {} {} {algs}{}: {} packets, {} bytes",
                cfg.proto.name(),
                cfg.spi,
                cfg.dst,
                if cfg.mode == Mode::Tunnel {
                    "tunnel"
                } else {
                    "transport"
                },
                if cfg.esn { " esn" } else { "" },
                sa.stats.packets,
                sa.stats.bytes
            );
            if sa.stats.drops.total() > 0 {
                line.push_str(", drops");
                for (r, n) in sa.stats.drops.nonzero() {
                    line.push_str(&format!(" {}={n}", r.name()));
                }
            }
            writeln!(out, "{line}")?;
        }
        let failed = self.failed(pass_unmatched);
        if failed {
            writeln!(out, "result: FAILED")
        } else {
            writeln!(out, "result: OK")
        }
    }

    fn get(&self, label: &str) -> u64 {
        self.counts
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, n)| *n)
    }
}
