//! The bodies of the `ipseckey_parse`, `ipsecconf_parse` and `ipsecalgs_parse` fuzz targets
//! (`fuzz/fuzz_targets/`), kept in the library so that ordinary tests replay the committed
//! fuzz inputs through the same code.
//!
//! The function returns `Err` with a description when an invariant is broken (the fuzz target
//! then panics); any panic inside is a bug too.

use std::sync::Arc;

use ipsec_core::spd::{CompiledSpd, PolicySet, TunnelNames};
use ipsec_core::SaConfig;

use crate::esp_sa;
use crate::ipsecalgs;
use crate::ipsecconf;
use crate::ipseckey::{self, Command, ParseOptions};

/// Parses `data` as ipseckey text (numeric: no resolver calls); for every `add` that parses,
/// checks that `to_config` succeeds, that `print_add` of the result parses back into exactly
/// one `add`, and that its `SaConfig` equals the first on every field. Also prints every such
/// SA in paranoid mode, which must never parse as an `add`.
///
/// The same bytes also go through [`esp_sa::parse`]: every SA it returns that
/// [`esp_sa::format_line`] can write must come back equal.
pub fn ipseckey_parse(data: &[u8]) -> Result<(), &'static str> {
    let text = String::from_utf8_lossy(data);
    esp_sa_round_trip(&text)?;
    let opts = ParseOptions { numeric: true };
    let Ok(cmds) = ipseckey::parse_with(&text, "fuzz", opts) else {
        return Ok(());
    };
    for c in &cmds {
        let Command::Add(spec) = c else { continue };
        let cfg = spec
            .to_config()
            .map_err(|_| "an add that parsed fails to_config")?;
        let line = ipseckey::print_add(&cfg, false);
        let again = ipseckey::parse_with(&line, "printed", opts)
            .map_err(|_| "print_add output does not parse")?;
        let [Command::Add(spec2)] = again.as_slice() else {
            return Err("print_add output is not exactly one add");
        };
        let cfg2 = spec2
            .to_config()
            .map_err(|_| "print_add output fails to_config")?;
        if !sa_config_eq(&cfg, &cfg2) {
            return Err("print_add round trip changed the SA");
        }
        let paranoid = ipseckey::print_add(&cfg, true);
        if !cfg.encr_key.is_empty() || !cfg.auth_key.is_empty() {
            if let Ok(p) = ipseckey::parse_with(&paranoid, "paranoid", opts) {
                if !p.is_empty() {
                    return Err("a paranoid print parses");
                }
            }
        }
    }
    Ok(())
}

/// Parses `data` as an ipsecconf policy file (numeric: no resolver calls); when it parses,
/// checks that [`ipsecconf::print()`] output parses back into an equal policy, that printing
/// that again gives the same text, that every entry printed alone parses back into that
/// entry, and that the warnings are the same for both. Then maps the policy onto SPD rules
/// ([`ipsecconf::PolicyFile::to_rules`]): this fails only for entries whose `or`
/// alternatives mix IPsec with bypass or drop, and the rules must compile.
pub fn ipsecconf_parse(data: &[u8]) -> Result<(), &'static str> {
    let text = String::from_utf8_lossy(data);
    let opts = ipsecconf::ParseOptions { numeric: true };
    let Ok(policy) = ipsecconf::parse_with(&text, "fuzz", opts) else {
        return Ok(());
    };
    let printed = ipsecconf::print(&policy);
    let again = ipsecconf::parse_with(&printed, "printed", opts)
        .map_err(|_| "ipsecconf print output does not parse")?;
    if again != policy {
        return Err("ipsecconf print round trip changed the policy");
    }
    if ipsecconf::print(&again) != printed {
        return Err("ipsecconf printing is not stable");
    }
    for e in &policy.entries {
        let alone = ipsecconf::parse_with(&ipsecconf::print_entry(e), "entry", opts)
            .map_err(|_| "an ipsecconf entry printed alone does not parse")?;
        if alone.entries.as_slice() != std::slice::from_ref(e) {
            return Err("an ipsecconf entry printed alone changed");
        }
    }
    let messages = |p: &ipsecconf::PolicyFile| -> Vec<String> {
        p.warnings().into_iter().map(|w| w.message).collect()
    };
    if messages(&policy) != messages(&again) {
        return Err("ipsecconf warnings changed in the round trip");
    }
    let mixed = policy.entries.iter().any(|e| {
        let kind = |a: &ipsecconf::Action| {
            if a.applies_ipsec() {
                ipsecconf::Action::Ipsec
            } else {
                *a
            }
        };
        e.alternatives
            .windows(2)
            .any(|w| matches!(w, [(a, _), (b, _)] if kind(a) != kind(b)))
    });
    match policy.to_rules() {
        Ok(rules) => {
            if mixed {
                return Err("to_rules accepted mixed alternatives");
            }
            let set = Arc::new(PolicySet::from_rules(rules));
            CompiledSpd::compile(set, &mut TunnelNames::default())
                .map_err(|_| "to_rules output does not compile")?;
        }
        Err(_) if mixed => {}
        Err(_) => return Err("to_rules refused a parsed policy"),
    }
    Ok(())
}

fn esp_sa_round_trip(text: &str) -> Result<(), &'static str> {
    let Ok(sas) = esp_sa::parse(text, "fuzz") else {
        return Ok(());
    };
    for sa in &sas {
        let Some(line) = esp_sa::format_line(sa) else {
            continue;
        };
        let back = esp_sa::parse(&line, "line").map_err(|_| "format_line output does not parse")?;
        match back.as_slice() {
            [one] if sa_config_eq(sa, one) => {}
            _ => return Err("esp_sa format_line round trip changed the SA"),
        }
    }
    Ok(())
}

/// Compares two SA configurations on every field (`SaConfig` has no `PartialEq`).
///
/// The destructuring is exhaustive on purpose: a field added to `SaConfig` fails to compile
/// here until the round trip covers it.
pub fn sa_config_eq(a: &SaConfig, b: &SaConfig) -> bool {
    let SaConfig {
        proto,
        spi,
        src,
        dst,
        ulp,
        sport,
        dport,
        mode,
        inner,
        encr_alg,
        encr_key,
        auth_alg,
        auth_key,
        replay_window,
        esn,
        replay_value,
        allow_legacy,
        state,
        soft,
        hard,
        idle,
        natt,
        src_id,
        dst_id,
        pair_spi,
        unique,
        direction,
        copy_dscp,
        padding_check,
    } = a;
    *proto == b.proto
        && *spi == b.spi
        && *src == b.src
        && *dst == b.dst
        && *ulp == b.ulp
        && *sport == b.sport
        && *dport == b.dport
        && *mode == b.mode
        && *inner == b.inner
        && *encr_alg == b.encr_alg
        && *encr_key == b.encr_key
        && *auth_alg == b.auth_alg
        && *auth_key == b.auth_key
        && *replay_window == b.replay_window
        && *esn == b.esn
        && *replay_value == b.replay_value
        && *allow_legacy == b.allow_legacy
        && *state == b.state
        && *soft == b.soft
        && *hard == b.hard
        && *idle == b.idle
        && *natt == b.natt
        && *src_id == b.src_id
        && *dst_id == b.dst_id
        && *pair_spi == b.pair_spi
        && *unique == b.unique
        && *direction == b.direction
        && *copy_dscp == b.copy_dscp
        && *padding_check == b.padding_check
}

/// The body of the `ipsecalgs_parse` fuzz target: `data` as an ipsecalgs(8) file. An error
/// names the file and a line and (byte) column of the input; a table that parses is
/// written back ([`ipsecalgs::Table::to_file_text`]) into text that parses to the same
/// table (but for line numbers) and writes the same text again; its validation against
/// ipsecd's algorithms and its listing never panic.
///
/// # Errors
/// A description of the broken invariant.
pub fn ipsecalgs_parse(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let table = match ipsecalgs::parse(&text, "fuzz") {
        Ok(t) => t,
        Err(e) => {
            let width = text
                .lines()
                .nth(e.line.wrapping_sub(1))
                .map(str::len)
                .ok_or_else(|| format!("error line outside the input: {e}"))?;
            if e.file != "fuzz" || e.column == 0 || e.column > width + 1 {
                return Err(format!(
                    "error position outside its line ({width} bytes): {e}"
                ));
            }
            return Ok(());
        }
    };
    let printed = table.to_file_text();
    let again = ipsecalgs::parse(&printed, "printed")
        .map_err(|e| format!("to_file_text output does not parse: {e}\n{printed}"))?;
    let unlined = |t: &ipsecalgs::Table| {
        let mut t = t.clone();
        t.protos.iter_mut().for_each(|p| p.line = 0);
        t.algs.iter_mut().for_each(|a| a.line = 0);
        t
    };
    if unlined(&again) != unlined(&table) {
        return Err(format!(
            "to_file_text round trip changed the table:\n{printed}"
        ));
    }
    if again.to_file_text() != printed {
        return Err("to_file_text is not stable".into());
    }
    let _ = (table.validate("fuzz"), table.listing("fuzz"));
    Ok(())
}
