//! `--json`: one JSON object per PF_KEY message (an SA of a dump, a GET reply, a message a
//! monitor read).
//!
//! Key material is left out unless the caller asks for it (`--show-keys`, and never with
//! `-p`): a key extension appears as `{"bits": N}`, with `"hex"` added only then. JSON
//! output tends to end up in logs and pipelines, where keys must not leak by default.

use serde_json::{json, Map, Value};
use zeroize::Zeroize;

use ipsec_pfkey::wire::{Address, Identity, Key, Lifetime};
use ipsec_pfkey::Message;

use super::print::{
    auth_name, diagnostic_text, encr_name, errno_text, flag_names, msg_type_text, satype_text,
    state_text,
};

fn address(a: &Address) -> Value {
    json!({
        "addr": a.ip().to_string(),
        "port": a.port(),
        "proto": a.proto,
        "prefixlen": a.prefixlen,
    })
}

fn lifetime(l: &Lifetime) -> Value {
    json!({
        "allocations": l.allocations,
        "bytes": l.bytes,
        "addtime": l.addtime,
        "usetime": l.usetime,
    })
}

fn key(k: &Key, show: bool) -> Value {
    let mut o = Map::new();
    o.insert("bits".into(), json!(k.bits));
    if show {
        // Sized up front so no reallocation leaves a copy of the key text behind;
        // [`scrub`] wipes it once printed.
        let bytes = k.expose();
        let mut hex = String::with_capacity(2 * bytes.len());
        for b in bytes.iter() {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        o.insert("hex".into(), Value::String(hex));
    }
    Value::Object(o)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Wipes every key text (`"hex"` members) in a value made by [`message`].
pub fn scrub(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (name, member) in o.iter_mut() {
                match member {
                    Value::String(s) if name == "hex" => s.zeroize(),
                    _ => scrub(member),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

fn ident(i: &Identity) -> Value {
    json!({
        "type": i.kind,
        "id": i.id,
        "value": String::from_utf8_lossy(&i.value),
    })
}

/// The JSON object of `m` (`len` = its size on the wire).
pub fn message(m: &Message, len: usize, show_keys: bool) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(msg_type_text(m.msg_type)));
    o.insert("satype".into(), json!(satype_text(m.satype)));
    o.insert("satype_number".into(), json!(m.satype));
    o.insert("length".into(), json!(len));
    o.insert("seq".into(), json!(m.seq));
    o.insert("pid".into(), json!(m.pid));
    if m.errno != 0 {
        o.insert(
            "error".into(),
            json!({
                "errno": m.errno,
                "text": errno_text(m.errno),
                "diagnostic": m.diagnostic,
                "diagnostic_text": diagnostic_text(m.diagnostic),
            }),
        );
    }
    if let Some(sa) = &m.sa {
        o.insert(
            "sa".into(),
            json!({
                "spi": format!("0x{:x}", sa.spi),
                "replay": sa.replay,
                "state": state_text(sa.state),
                "auth": auth_name(sa.auth),
                "encr": encr_name(sa.encrypt),
                "flags": sa.flags,
                "flag_names": flag_names(sa.flags),
            }),
        );
    }
    for (name, a) in [
        ("src", &m.src),
        ("dst", &m.dst),
        ("inner_src", &m.inner_src),
        ("inner_dst", &m.inner_dst),
        ("nat_loc", &m.natt_loc),
        ("nat_rem", &m.natt_rem),
    ] {
        if let Some(a) = a {
            o.insert(name.into(), address(a));
        }
    }
    for (name, l) in [
        ("lifetime_current", &m.lifetime_current),
        ("lifetime_soft", &m.lifetime_soft),
        ("lifetime_hard", &m.lifetime_hard),
        ("lifetime_idle", &m.lifetime_idle),
    ] {
        if let Some(l) = l {
            o.insert(name.into(), lifetime(l));
        }
    }
    if let Some(k) = &m.key_auth {
        o.insert("auth_key".into(), key(k, show_keys));
    }
    if let Some(k) = &m.key_encrypt {
        o.insert("encr_key".into(), key(k, show_keys));
    }
    if let Some(i) = &m.ident_src {
        o.insert("src_identity".into(), ident(i));
    }
    if let Some(i) = &m.ident_dst {
        o.insert("dst_identity".into(), ident(i));
    }
    if let Some(p) = &m.pair {
        o.insert("pair_spi".into(), json!(format!("0x{:x}", p.spi)));
    }
    if let Some(r) = &m.replay_value {
        o.insert(
            "replay_value".into(),
            json!({"replay32": r.replay32, "replay64": r.replay64}),
        );
    }
    if let Some(k) = &m.kmc {
        o.insert(
            "km_cookie".into(),
            json!({"proto": k.proto, "cookie": k.cookie}),
        );
    }
    if let Some(r) = &m.spirange {
        o.insert(
            "spi_range".into(),
            json!({"min": format!("0x{:x}", r.min), "max": format!("0x{:x}", r.max)}),
        );
    }
    if let Some(x) = &m.ironswan_sa {
        o.insert(
            "ironswan".into(),
            json!({
                "replay_window": x.replay_window,
                "flags": x.flags,
                "unique_sport": x.unique_sport,
                "unique_dport": x.unique_dport,
                "unique_proto": x.unique_proto,
            }),
        );
    }
    let others: Vec<&str> = [
        ("sensitivity", m.sensitivity.is_some()),
        ("proposal", m.proposal.is_some()),
        ("supported_auth", m.supported_auth.is_some()),
        ("supported_encrypt", m.supported_encrypt.is_some()),
        ("ereg", m.ereg.is_some()),
        ("eprop", m.eprop.is_some()),
        ("edump", m.edump.is_some()),
        ("outer_sensitivity", m.outer_sens.is_some()),
    ]
    .into_iter()
    .filter(|(_, p)| *p)
    .map(|(n, _)| n)
    .collect();
    if !others.is_empty() {
        o.insert("other_extensions".into(), json!(others));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec_pfkey::consts::*;
    use ipsec_pfkey::wire::SaExt;

    #[test]
    fn keys_only_on_request() {
        let mut m = Message::new(SADB_GET, SADB_SATYPE_ESP);
        m.sa = Some(SaExt {
            spi: 0x1000,
            state: 1,
            encrypt: 12,
            ..SaExt::default()
        });
        m.key_encrypt = Key::new(&[0x42; 16]);
        let v = message(&m, 100, false);
        assert_eq!(v["encr_key"], json!({"bits": 128}));
        assert_eq!(v["sa"]["spi"], "0x1000");
        assert_eq!(v["sa"]["encr"], "aes-cbc");
        assert!(!v.to_string().contains("4242"));
        let mut v = message(&m, 100, true);
        assert_eq!(v["encr_key"]["hex"], "42".repeat(16));
        m.key_auth = Key::new(&[0xa5; 20]);
        let mut v2 = message(&m, 100, true);
        assert_eq!(v2["auth_key"]["hex"], "a5".repeat(20));
        scrub(&mut v);
        scrub(&mut v2);
        assert_eq!(v["encr_key"]["hex"], "");
        assert_eq!(v2["auth_key"]["hex"], "");
        assert_eq!(v2["encr_key"]["bits"], 128);
        assert!(!v2.to_string().contains("4242"));
    }
}
