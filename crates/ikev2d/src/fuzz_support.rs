//! The bodies of the `ikev2_config` and `ikev2_pfkey` fuzz targets
//! (`fuzz/fuzz_targets/`), kept in the library so that an ordinary test replays the
//! committed fuzz inputs (`tests/fuzz_regressions.rs`) through the same code.
//!
//! Each returns `Err` with a description when an invariant is broken (the fuzz target
//! then panics); any panic inside is a bug too.

use std::fmt::Write as _;
use std::net::IpAddr;

use ike::cert::Hash;
use ike::consts::id;
use ike::prf::PrfAlg;
use ike::sa::{ChildSuite, Identity};
use ike::wire::TrafficSelector;
use ipsec_pfkey::consts::{SADB_SATYPE_AH, SADB_SATYPE_ESP, SADB_X_ALGTYPE_CRYPT};
use ipsec_pfkey::Message;

use crate::config::{parse_config, parse_preshared, AuthMethod, Config, ConfigError};
use crate::pfkey::{suite_from_proposal, ts_prefix};
use crate::policy::{suites_from_eprop, suites_from_proposal};

/// An error must name `file` and a line and column inside `text` (column: 1 up to one
/// past the line's last character).
fn check_position(e: &ConfigError, file: &str, text: &str) -> Result<(), String> {
    if e.file != file {
        return Err(format!("error names file {:?}: {e}", e.file));
    }
    let lines: Vec<&str> = text.lines().collect();
    let width = match e.line {
        0 => return Err(format!("error without a line: {e}")),
        // An empty file's end is line 1.
        1 if lines.is_empty() => 0,
        l => lines
            .get(l - 1)
            .ok_or_else(|| format!("error line outside the {} lines: {e}", lines.len()))?
            .chars()
            .count(),
    };
    if e.column == 0 || e.column > width + 1 {
        return Err(format!(
            "error column outside the line ({width} characters): {e}"
        ));
    }
    if !e
        .to_string()
        .starts_with(&format!("{file}:{}:{}: ", e.line, e.column))
    {
        return Err(format!("error does not start with file:line:column: {e}"));
    }
    Ok(())
}

/// The bytes as ikev2.config text and as ikev2.preshared text.
///
/// ikev2.config: an error names the file and a line and column of the input; the same
/// text after one more first line gives the same result one line further down (rules'
/// lines included); a configuration that parses has, in every rule, a label unique in
/// the file, local and remote addresses, prefix lengths that fit their family, a
/// `local_id` when it uses certificates, and the line of a `{`; and printed back with
/// every parameter written out, it parses to the same configuration.
///
/// ikev2.preshared: errors as above; what parses, printed back with hex keys, parses to
/// the same labels and keys, and its `Debug` shows no key.
///
/// # Errors
/// A description of the broken invariant.
pub fn ikev2_config(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let shifted = format!("\n{text}");
    let (r, r2) = (parse_config("f", &text), parse_config("f", &shifted));
    match (r, r2) {
        (Err(e), Err(e2)) => {
            check_position(&e, "f", &text)?;
            check_position(&e2, "f", &shifted)?;
            let same = e2.line == e.line + 1
                && e2.column == e.column
                && (e2.message == e.message || e.message.contains("rule of line"));
            if !same {
                return Err(format!("one more first line moved {e} to {e2}"));
            }
        }
        (Ok(c), Ok(mut c2)) => {
            let lines: Vec<&str> = text.lines().collect();
            for (i, r) in c.rules.iter().enumerate() {
                if c.rules[..i].iter().any(|o| o.label == r.label) {
                    return Err(format!("label {:?} twice", r.label));
                }
                if r.local_addr.is_empty() || r.remote_addr.is_empty() {
                    return Err(format!("rule {:?} without addresses", r.label));
                }
                if r.auth.is_cert() && r.local_id.is_none() {
                    return Err(format!("certificate rule {:?} without local_id", r.label));
                }
                let prefixes = r.local_addr.iter().chain(&r.remote_addr);
                for p in prefixes.chain(&r.local_ts).chain(&r.remote_ts) {
                    if p.len > if p.addr.is_ipv4() { 32 } else { 128 } {
                        return Err(format!("rule {:?}: prefix {p:?}", r.label));
                    }
                }
                if !lines
                    .get(r.line.wrapping_sub(1))
                    .is_some_and(|l| l.contains('{'))
                {
                    return Err(format!("rule {:?}: line {} has no '{{'", r.label, r.line));
                }
            }
            for r in &mut c2.rules {
                r.line -= 1;
            }
            if c2 != c {
                return Err("one more first line changed the configuration".into());
            }
            let printed = print_config(&c)?;
            let mut back = parse_config("printed", &printed)
                .map_err(|e| format!("printed configuration does not parse: {e}\n{printed}"))?;
            for (b, r) in back.rules.iter_mut().zip(&c.rules) {
                b.line = r.line;
            }
            if back != c {
                return Err(format!(
                    "printed configuration parses differently:\n{printed}"
                ));
            }
        }
        (a, b) => return Err(format!("one more first line changed {a:?} into {b:?}")),
    }
    preshared(&text)
}

/// The configuration as ikev2.config text, every rule with all its parameters.
fn print_config(c: &Config) -> Result<String, String> {
    let mut o = String::new();
    if let Some(d) = &c.cert_store {
        let _ = writeln!(o, "cert_store \"{}\"", d.display());
    }
    let f = &c.fragments;
    let on = if f.enabled { "yes" } else { "no" };
    let _ = writeln!(o, "fragmentation {on}\nfragment_size {}", f.size);
    for r in &c.rules {
        let _ = writeln!(
            o,
            "{{\n label \"{}\"\n auth_method {}",
            r.label,
            method(r.auth)
        );
        for (k, v) in [
            ("local_addr", &r.local_addr),
            ("remote_addr", &r.remote_addr),
            ("local_ts", &r.local_ts),
            ("remote_ts", &r.remote_ts),
        ] {
            for p in v {
                let _ = writeln!(o, " {k} {}/{}", p.addr, p.len);
            }
        }
        for (k, v) in [("local_id", &r.local_id), ("remote_id", &r.remote_id)] {
            if let Some(i) = v {
                let _ = writeln!(o, " {k} {}", identity(i)?);
            }
        }
        let x = &r.ike;
        let _ = writeln!(
            o,
            " ikesa_xform {{ encr_alg {} auth_alg {} prf {} dh_group {} }}",
            encr(x.suite.encr, x.suite.key_bits)?,
            integ(x.suite.integ)?,
            match x.prf {
                PrfAlg::HmacSha256 => "sha256",
                PrfAlg::HmacSha384 => "sha384",
                PrfAlg::HmacSha512 => "sha512",
            },
            x.group.id()
        );
        let _ = writeln!(
            o,
            " ikesa_lifetime_secs {}\n childsa_lifetime_secs {}\n childsa_pfs {}",
            r.ike_lifetime,
            r.child_lifetime,
            if r.pfs { "yes" } else { "no" }
        );
        let _ = writeln!(
            o,
            " childsa_xform {{ encr_alg {} auth_alg {} }}\n childsa_mode {}\n}}",
            encr(r.child.encr, r.child.key_bits)?,
            integ(r.child.integ)?,
            if r.tunnel { "tunnel" } else { "transport" }
        );
    }
    Ok(o)
}

fn method(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::Preshared => "preshared",
        AuthMethod::Cert => "cert",
        AuthMethod::RsaSig => "rsa_sig",
        AuthMethod::RsaPss => "rsa_pss",
        AuthMethod::Ecdsa(None) => "ecdsa",
        AuthMethod::Ecdsa(Some(Hash::Sha256)) => "ecdsa_sha256",
        AuthMethod::Ecdsa(Some(Hash::Sha384)) => "ecdsa_sha384",
        AuthMethod::Ecdsa(Some(Hash::Sha512)) => "ecdsa_sha512",
    }
}

fn encr(id: u16, bits: u16) -> Result<String, String> {
    let name = match id {
        12 => "aes-cbc",
        20 => "aes-gcm",
        28 => "chacha20-poly1305",
        _ => return Err(format!("unexpected cipher {id}")),
    };
    Ok(format!("{name}({bits})"))
}

fn integ(i: Option<u16>) -> Result<&'static str, String> {
    Ok(match i {
        None => "none",
        Some(12) => "sha256",
        Some(13) => "sha384",
        Some(14) => "sha512",
        Some(other) => return Err(format!("unexpected integrity {other}")),
    })
}

fn identity(i: &Identity) -> Result<String, String> {
    let text = |d: &[u8]| String::from_utf8(d.to_vec()).map_err(|_| "identity not UTF-8");
    Ok(match i.id_type {
        id::IPV4_ADDR | id::IPV6_ADDR => {
            let a = match i.data.len() {
                4 => <[u8; 4]>::try_from(i.data.as_slice())
                    .map(IpAddr::from)
                    .ok(),
                16 => <[u8; 16]>::try_from(i.data.as_slice())
                    .map(IpAddr::from)
                    .ok(),
                _ => None,
            };
            format!("ip {}", a.ok_or("bad address identity")?)
        }
        id::FQDN => format!("fqdn \"{}\"", text(&i.data)?),
        id::RFC822_ADDR => format!("user_fqdn \"{}\"", text(&i.data)?),
        id::DER_ASN1_DN => format!(
            "dn \"{}\"",
            ike::cert::dn_text(&i.data).ok_or("a DN identity dn_text cannot write")?
        ),
        other => return Err(format!("unexpected identity type {other}")),
    })
}

fn preshared(text: &str) -> Result<(), String> {
    let p = match parse_preshared("k", text) {
        Ok(p) => p,
        Err(e) => return check_position(&e, "k", text),
    };
    let mut printed = String::new();
    let mut labels: Vec<&str> = p.labels().collect();
    labels.sort_unstable();
    for l in &labels {
        let key = p.get(l).ok_or("a label without its key")?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(printed, "{{ label \"{l}\" key 0x{hex} }}");
    }
    let again = parse_preshared("printed", &printed)
        .map_err(|e| format!("printed keys do not parse: {e}"))?;
    let mut labels2: Vec<&str> = again.labels().collect();
    labels2.sort_unstable();
    if labels2 != labels || labels.iter().any(|l| again.get(l) != p.get(l)) {
        return Err("printed keys parse to other keys".into());
    }
    let debug = format!("{p:?}");
    for l in &labels {
        let key = p.get(l).ok_or("a label without its key")?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let as_text = String::from_utf8_lossy(key);
        // Labels are shown (they are not secret): a key that is also part of any label
        // proves nothing.
        let shows =
            |k: &str| k.len() >= 4 && !labels.iter().any(|x| x.contains(k)) && debug.contains(k);
        if shows(&hex) || shows(&as_text) {
            return Err(format!("Debug of the keys shows a key: {debug}"));
        }
    }
    Ok(())
}

/// The preferred suites the proposal body tries (the rules' `childsa_xform`s).
const PREFERRED: [ChildSuite; 3] = [
    ChildSuite {
        encr: 20,
        key_bits: 128,
        integ: None,
        transport: true,
        pfs: false,
    },
    ChildSuite {
        encr: 12,
        key_bits: 256,
        integ: Some(12),
        transport: false,
        pfs: true,
    },
    ChildSuite {
        encr: 28,
        key_bits: 256,
        integ: None,
        transport: true,
        pfs: true,
    },
];

/// A suite the IKE core keys: AES-CBC with HMAC-SHA2, or an AEAD alone.
fn keyable(s: &ChildSuite) -> bool {
    match (s.encr, s.integ) {
        (12, Some(12..=14)) => matches!(s.key_bits, 128 | 192 | 256),
        (20, None) => matches!(s.key_bits, 128 | 192 | 256),
        (28, None) => s.key_bits == 256,
        _ => false,
    }
}

fn distinct(v: &[ChildSuite]) -> bool {
    v.iter().enumerate().all(|(i, s)| !v[..i].contains(s))
}

/// The bytes as a PF_KEY message from ipsecd, as in.ikev2d reads it: an X_EPROP (the
/// answer to X_INVERSE_ACQUIRE) gives distinct keyable suites, none from a combination
/// with AH or without ESP encryption, each with the mode and PFS asked for; an ACQUIRE's
/// proposal gives distinct keyable suites, the first what [`suite_from_proposal`] picks
/// (the preferred suite when it is among them), each combination alone suites within its
/// key sizes that the whole proposal offers too; the message's addresses as a traffic
/// selector map to a prefix covering exactly that range, if any.
///
/// # Errors
/// A description of the broken invariant.
pub fn ikev2_pfkey(data: &[u8]) -> Result<(), String> {
    let Ok(m) = Message::parse(data) else {
        return Ok(());
    };
    if let Some(e) = &m.eprop {
        let esp_encr = e.ecombs.iter().any(|c| {
            !c.algs.iter().any(|d| d.satype == SADB_SATYPE_AH)
                && c.algs
                    .iter()
                    .any(|d| d.satype == SADB_SATYPE_ESP && d.algtype == SADB_X_ALGTYPE_CRYPT)
        });
        for (transport, pfs) in [(false, false), (true, false), (false, true), (true, true)] {
            let v = suites_from_eprop(e, transport, pfs);
            if !distinct(&v) {
                return Err(format!("suites_from_eprop repeats a suite: {v:?}"));
            }
            if let Some(s) = v
                .iter()
                .find(|s| !keyable(s) || s.transport != transport || s.pfs != pfs)
            {
                return Err(format!("suites_from_eprop gave {s:?}"));
            }
            if !v.is_empty() && !esp_encr {
                return Err("suites from an EPROP without an ESP cipher".into());
            }
        }
    }
    if let Some(p) = &m.proposal {
        for pref in PREFERRED {
            let v = suites_from_proposal(p, pref);
            if !distinct(&v) {
                return Err(format!("suites_from_proposal repeats a suite: {v:?}"));
            }
            if let Some(s) = v
                .iter()
                .find(|s| !keyable(s) || s.transport != pref.transport || s.pfs != pref.pfs)
            {
                return Err(format!("suites_from_proposal gave {s:?}"));
            }
            if v.first().copied() != suite_from_proposal(p, pref) {
                return Err("suites_from_proposal does not start with the pick".into());
            }
            if v.contains(&pref) && v[0] != pref {
                return Err(format!("preferred {pref:?} allowed but not first in {v:?}"));
            }
            // Each combination alone: its suites fit its key sizes, and are among those
            // of the whole proposal (another combination never hides them).
            for c in &p.combs {
                let one = ipsec_pfkey::wire::Proposal {
                    replay: p.replay,
                    combs: vec![*c],
                };
                for s in suites_from_proposal(&one, pref) {
                    let fits = (c.encrypt_minbits == 0 || c.encrypt_minbits <= s.key_bits)
                        && (c.encrypt_maxbits == 0 || s.key_bits <= c.encrypt_maxbits);
                    if !fits {
                        return Err(format!("{s:?} outside its combination's key sizes {c:?}"));
                    }
                    if !v.contains(&s) {
                        return Err(format!("{s:?} of one combination missing from {v:?}"));
                    }
                }
            }
        }
    }
    if let (Some(s), Some(d)) = (&m.src, &m.dst) {
        let (start, end) = (s.addr.ip(), d.addr.ip());
        let ts = TrafficSelector {
            ip_protocol: s.proto,
            start_port: 0,
            end_port: u16::MAX,
            start,
            end,
        };
        if let Some(p) = ts_prefix(&ts) {
            let range = crate::config::Prefix {
                addr: p.addr,
                len: p.len,
            }
            .range();
            if range != (start, end) {
                return Err(format!(
                    "ts_prefix {start}-{end} gave {p:?}, covering {range:?}"
                ));
            }
        } else if start == end {
            return Err(format!("ts_prefix refused {start}-{end}"));
        }
    }
    Ok(())
}

/// Generated seeds of `ikev2_pfkey`: an ACQUIRE whose proposal offers AES-GCM-16,
/// AES-CBC with HMAC-SHA-256 and ChaCha20-Poly1305, and the X_EPROP answer to an
/// X_INVERSE_ACQUIRE with the same choices (and one AH combination).
///
/// # Errors
/// When a message does not emit.
pub fn pfkey_seeds() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    use ipsec_crypto::{auth_by_ikev2, encr_by_ikev2};
    use ipsec_pfkey::consts::{SADB_ACQUIRE, SADB_X_ALGTYPE_AUTH, SADB_X_INVERSE_ACQUIRE};
    use ipsec_pfkey::wire::{Address, AlgDesc, Comb, EComb, EProp, Proposal};
    use std::net::SocketAddr;
    let e = |id| encr_by_ikev2(id).map(|e| e.pfkey).ok_or("no such cipher");
    let a = |id| {
        auth_by_ikev2(id)
            .map(|a| a.pfkey)
            .ok_or("no such integrity")
    };
    let (gcm, cbc, chacha, sha256) = (e(20)?, e(12)?, e(28)?, a(12)?);
    let addr = |s: &str| -> Result<Address, String> {
        Ok(Address::new(SocketAddr::new(
            s.parse().map_err(|_| "address")?,
            0,
        )))
    };
    let comb = |encrypt, auth, min, max| Comb {
        encrypt,
        auth,
        encrypt_minbits: min,
        encrypt_maxbits: max,
        ..Comb::default()
    };
    let mut acq = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    acq.src = Some(addr("192.0.2.1")?);
    acq.dst = Some(addr("192.0.2.2")?);
    acq.proposal = Some(Proposal {
        replay: 32,
        combs: vec![
            comb(gcm, 0, 128, 256),
            comb(cbc, sha256, 128, 128),
            comb(chacha, 0, 256, 256),
        ],
    });
    let desc = |satype, algtype, alg, minbits, maxbits| AlgDesc {
        satype,
        algtype,
        alg,
        saltbits: 0,
        minbits,
        maxbits,
    };
    let ecomb = |algs| EComb {
        algs,
        ..EComb::default()
    };
    let mut inv = Message::new(SADB_X_INVERSE_ACQUIRE, SADB_SATYPE_ESP);
    inv.src = Some(addr("2001:db8::1")?);
    inv.dst = Some(addr("2001:db8::2")?);
    inv.eprop = Some(EProp {
        replay: 32,
        ecombs: vec![
            ecomb(vec![desc(
                SADB_SATYPE_ESP,
                SADB_X_ALGTYPE_CRYPT,
                gcm,
                128,
                256,
            )]),
            ecomb(vec![
                desc(SADB_SATYPE_ESP, SADB_X_ALGTYPE_CRYPT, cbc, 128, 256),
                desc(SADB_SATYPE_ESP, SADB_X_ALGTYPE_AUTH, sha256, 256, 256),
            ]),
            ecomb(vec![desc(
                SADB_SATYPE_AH,
                SADB_X_ALGTYPE_AUTH,
                sha256,
                256,
                256,
            )]),
            ecomb(vec![desc(
                SADB_SATYPE_ESP,
                SADB_X_ALGTYPE_CRYPT,
                chacha,
                256,
                256,
            )]),
        ],
    });
    let bytes = |m: &Message| m.emit().map_err(|e| e.to_string());
    Ok(vec![("acquire", bytes(&acq)?), ("eprop", bytes(&inv)?)])
}
