//! The printer: `add` commands from `SaConfig`s, and `save` output.

use std::fmt::Write as _;

use ipsec_core::{
    Direction, Identity, IdentityType, KeyMaterial, Lifetime, Mode, NatT, Proto, SaConfig, SaState,
    Sadb,
};
use ipsec_crypto::{auth_info, encr_info};

use super::spec::NATT_PORT;
use super::SaType;

/// One `add` command (no trailing newline) that [`parse`](super::parse) reads back into an
/// equal `SaConfig`: canonical algorithm names (the first name of each ipsec-crypto table
/// row), every non-default field, keys in hex.
///
/// With `paranoid`, every key digit is printed as `X` (ipseckey `-p`); such a line does not
/// re-parse (`X` is not a hex digit), so a paranoid save documents SAs but cannot restore them.
///
/// What cannot be written, and so does not come back:
/// * inner selectors of a transport-mode SA (inner selectors make an SA tunnel mode), and
///   idle lifetimes in packets or bytes (there are no such extensions); neither has a meaning
///   in ipsec-core;
/// * identity values containing `"` or a line end (a `"` always toggles quoting).
///
/// A tunnel-mode SA whose inner selectors are all "any" is written with `iproto 0`, which
/// makes it tunnel mode without narrowing it.
pub fn print_add(cfg: &SaConfig, paranoid: bool) -> String {
    let mut o = String::with_capacity(256);
    let _ = write!(o, "add {} spi 0x{:x}", cfg.proto.name(), cfg.spi);
    if let Some(src) = cfg.src {
        let _ = write!(o, " src {src}");
    }
    let _ = write!(o, " dst {}", cfg.dst);
    if cfg.sport != 0 {
        let _ = write!(o, " sport {}", cfg.sport);
    }
    if cfg.dport != 0 {
        let _ = write!(o, " dport {}", cfg.dport);
    }
    match cfg.mode {
        Mode::Transport => {
            if cfg.ulp != 0 {
                let _ = write!(o, " proto {}", cfg.ulp);
            }
        }
        Mode::Tunnel => {
            let _ = write!(o, " proto {}", cfg.ulp);
            let i = &cfg.inner;
            let mut any = false;
            if let Some(p) = i.src {
                let _ = write!(o, " isrc {p}");
                any = true;
            }
            if let Some(p) = i.dst {
                let _ = write!(o, " idst {p}");
                any = true;
            }
            if i.sport != 0 {
                let _ = write!(o, " isport {}", i.sport);
                any = true;
            }
            if i.dport != 0 {
                let _ = write!(o, " idport {}", i.dport);
                any = true;
            }
            if i.proto != 0 || !any {
                let _ = write!(o, " iproto {}", i.proto);
            }
        }
    }
    if let Some(a) = cfg.encr_alg {
        let _ = write!(o, " encr_alg {}", encr_info(a).name);
    }
    if !cfg.encr_key.is_empty() {
        let _ = write!(o, " encrkey {}", key_text(&cfg.encr_key, paranoid));
    }
    if let Some(a) = cfg.auth_alg {
        let _ = write!(o, " auth_alg {}", auth_info(a).name);
    }
    if !cfg.auth_key.is_empty() {
        let _ = write!(o, " authkey {}", key_text(&cfg.auth_key, paranoid));
    }
    if cfg.replay_window != 0 {
        let _ = write!(o, " replay {}", cfg.replay_window);
    }
    if cfg.replay_value != 0 {
        let _ = write!(o, " replay_value {}", cfg.replay_value);
    }
    if cfg.esn {
        o.push_str(" esn");
    }
    if cfg.state != SaState::Mature {
        let _ = write!(o, " state {}", state_name(cfg.state));
    }
    lifetime(&mut o, "soft", &cfg.soft, true);
    lifetime(&mut o, "hard", &cfg.hard, true);
    lifetime(&mut o, "idle", &cfg.idle, false);
    if let Some(n) = &cfg.natt {
        natt(&mut o, n);
    }
    if let Some(id) = &cfg.src_id {
        identity(&mut o, "srcidtype", id);
    }
    if let Some(id) = &cfg.dst_id {
        identity(&mut o, "dstidtype", id);
    }
    if let Some(p) = cfg.pair_spi {
        let _ = write!(o, " pair-spi 0x{p:x}");
    }
    match cfg.direction {
        Direction::Any => {}
        Direction::Inbound => o.push_str(" inbound"),
        Direction::Outbound => o.push_str(" outbound"),
    }
    if let Some(u) = cfg.unique {
        let _ = write!(o, " unique {} {} {}", u.sport, u.dport, u.proto);
    }
    if cfg.allow_legacy {
        o.push_str(" allow_legacy");
    }
    if !cfg.copy_dscp {
        o.push_str(" no_copy_dscp");
    }
    if !cfg.padding_check {
        o.push_str(" no_padding_check");
    }
    o
}

/// `ipseckey save` / `-s` output for every SA of the given type: a comment line, then one
/// `add` line per SA (with its current state), each ending in a newline.
pub fn save(sadb: &Sadb, satype: SaType, paranoid: bool) -> String {
    let want = satype.proto();
    let mut o = String::from(
        "# Security associations written by Ironswan's ipseckey save; read back with ipseckey -f.\n",
    );
    for (_, sa) in sadb.iter() {
        if want.is_some_and(|p: Proto| p != sa.proto()) {
            continue;
        }
        let mut cfg = sa.config().clone();
        cfg.state = sa.state();
        o.push_str(&print_add(&cfg, paranoid));
        o.push('\n');
    }
    o
}

fn key_text(k: &KeyMaterial, paranoid: bool) -> String {
    let mut s = String::with_capacity(k.expose().len() * 2);
    for b in k.expose() {
        if paranoid {
            s.push_str("XX");
        } else {
            let _ = write!(s, "{b:02x}");
        }
    }
    s
}

fn state_name(s: SaState) -> &'static str {
    match s {
        SaState::Larval => "larval",
        SaState::Mature => "mature",
        SaState::Dying => "dying",
        SaState::Dead => "dead",
    }
}

fn lifetime(o: &mut String, kind: &str, l: &Lifetime, counts: bool) {
    if counts && l.packets != 0 {
        let _ = write!(o, " {kind}_alloc {}", l.packets);
    }
    if counts && l.bytes != 0 {
        let _ = write!(o, " {kind}_bytes {}", l.bytes);
    }
    if l.addtime != 0 {
        let _ = write!(o, " {kind}_addtime {}", l.addtime);
    }
    if l.usetime != 0 {
        let _ = write!(o, " {kind}_usetime {}", l.usetime);
    }
}

fn identity(o: &mut String, kw: &str, id: &Identity) {
    let kind = match id.kind {
        IdentityType::Prefix => "prefix",
        IdentityType::Fqdn => "fqdn",
        IdentityType::UserFqdn => "user_fqdn",
        IdentityType::Dn => "der_dn",
        IdentityType::KeyId => "key_id",
    };
    let _ = write!(o, " {kw} {kind} {}", quote(&id.value));
}

/// Quotes a value when it would not survive tokenization bare.
fn quote(v: &str) -> String {
    let needs = v.is_empty()
        || v.starts_with('#')
        || v.contains('"')
        || v.contains('\\')
        || v.chars().any(char::is_whitespace);
    if needs {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// `encap udp` and the NAT-T keywords of `n`. A side's port and address are written when
/// that side is flagged as NATed (`nat_lport`/`nat_loc` set `NATT_LOC` when read back,
/// `nat_rport`/`nat_rem` set `NATT_REM`) or when they are not the defaults; an SA with
/// neither flag and default ports (possible through PF_KEY only) is written with
/// `nat_rport`, since `encap udp` needs one of them.
fn natt(o: &mut String, n: &NatT) {
    o.push_str(" encap udp");
    let local = n.local_behind_nat || n.local_port != NATT_PORT || n.local_addr.is_some();
    let remote =
        n.remote_behind_nat || n.remote_port != NATT_PORT || n.remote_addr.is_some() || !local;
    if local {
        let _ = write!(o, " nat_lport {}", n.local_port);
        if let Some(a) = n.local_addr {
            let _ = write!(o, " nat_loc {a}");
        }
    }
    if remote {
        let _ = write!(o, " nat_rport {}", n.remote_port);
        if let Some(a) = n.remote_addr {
            let _ = write!(o, " nat_rem {a}");
        }
    }
}
