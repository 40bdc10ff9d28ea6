//! The bodies of the `ike_dn` and `ike_import` fuzz targets: distinguished names as
//! configuration text, and the PEM/DER input `ikev2cert import` reads.

use std::path::Path;

use crate::cert::store::{decode, Object};
use crate::cert::{dn_equal, dn_rdns, dn_text, parse_dn, Certificate};

/// Splits `data` in two at its first NUL (or keeps it whole).
fn halves(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The bytes (up to a NUL) as DN text for [`parse_dn`]: a DN that parses is a DER Name
/// with one attribute per comma-separated part, prints back ([`dn_text`]) into text that
/// parses to the same bytes, and, written in ASCII, equals ([`dn_equal`]) the DN of the
/// text in lower case. The two halves around the NUL, as DER, compare symmetrically,
/// and each equals itself.
///
/// # Errors
/// A description of the broken invariant.
pub fn ike_dn(data: &[u8]) -> Result<(), String> {
    let (first, second) = halves(data);
    let text = String::from_utf8_lossy(first);
    if let Ok(der) = parse_dn(&text) {
        let attrs = dn_rdns(&der).ok_or("parse_dn wrote something that is not a Name")?;
        if attrs.is_empty() || attrs.iter().any(|rdn| rdn.len() != 1) {
            return Err("parse_dn wrote an empty Name or a multi-valued RDN".into());
        }
        let printed = dn_text(&der).ok_or_else(|| format!("{text:?}: dn_text refused it"))?;
        let again = parse_dn(&printed).map_err(|e| format!("{printed:?} does not parse: {e}"))?;
        if again != der {
            return Err(format!(
                "{text:?} printed as {printed:?} parses differently"
            ));
        }
        if dn_rdns(&again).map(|a| a.len()) != Some(attrs.len()) {
            return Err("the number of attributes changed".into());
        }
        // ASCII values compare ignoring case (others exactly).
        if text.is_ascii() {
            let lower = parse_dn(&text.to_ascii_lowercase())
                .map_err(|e| format!("{text:?} in lower case does not parse: {e}"))?;
            if !dn_equal(&lower, &der) || !dn_equal(&der, &lower) {
                return Err(format!("{text:?} differs from its lower-case form"));
            }
        }
        let _ = Certificate::name_to_string(&der);
    }
    for (a, b) in [(first, second), (second, first)] {
        if !dn_equal(a, a) {
            return Err("a Name differs from itself".into());
        }
        if dn_equal(a, b) != dn_equal(b, a) {
            return Err("dn_equal is not symmetric".into());
        }
        if let Some(t) = dn_text(a) {
            let back = parse_dn(&t).map_err(|e| format!("dn_text {t:?} does not parse: {e}"))?;
            if back != a {
                return Err(format!("dn_text {t:?} parses to other bytes"));
            }
        }
    }
    Ok(())
}

/// `der` as a PEM block labelled `label` (64 base64 characters a line).
#[must_use]
pub fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b = String::new();
    for c in der.chunks(3) {
        let v = c
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, &x)| v | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                b.push(char::from(B64[(v >> (18 - 6 * i) & 63) as usize]));
            } else {
                b.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER bytes and whether each is a key.
fn ders(objects: &[Object]) -> Vec<(bool, &[u8])> {
    objects
        .iter()
        .map(|o| match o {
            Object::Cert(c) => (false, c.der()),
            Object::Key(_, der) => (true, der.as_slice()),
        })
        .collect()
}

/// The bytes as `ikev2cert import` input (PEM or one DER object, not written to any
/// store): an error names a line of the input, if any; what decodes must decode the
/// same when written again as PEM, and each object alone as DER.
///
/// # Errors
/// A description of the broken invariant.
pub fn ike_import(data: &[u8]) -> Result<(), String> {
    let src = Path::new("fuzz.pem");
    let objects = match decode(src, data) {
        Ok(o) => o,
        Err(e) => {
            let lines = String::from_utf8_lossy(data).lines().count();
            if e.path != src {
                return Err(format!("error names {}: {e}", e.path.display()));
            }
            return match e.line {
                Some(l) if l == 0 || l > lines => {
                    Err(format!("error line {l} outside the input's {lines}: {e}"))
                }
                _ => Ok(()),
            };
        }
    };
    if objects.is_empty() {
        return Err("decode returned no object".into());
    }
    let want = ders(&objects);
    let mut text = String::from("a comment line\n");
    for (key, der) in &want {
        text.push_str(&pem(if *key { "PRIVATE KEY" } else { "CERTIFICATE" }, der));
    }
    let again = decode(src, text.as_bytes()).map_err(|e| format!("re-encoded PEM: {e}"))?;
    if ders(&again) != want {
        return Err("re-encoded PEM decodes differently".into());
    }
    for (key, der) in &want {
        // DER that happens to be UTF-8 text holding a BEGIN line is read as PEM.
        if core::str::from_utf8(der).is_ok_and(|s| s.contains("-----BEGIN ")) {
            continue;
        }
        let one = decode(src, der).map_err(|e| format!("an object alone as DER: {e}"))?;
        if ders(&one) != [(*key, *der)] {
            return Err("an object alone as DER decodes differently".into());
        }
    }
    Ok(())
}

/// Generated seeds of `ike_dn` (the example adds PEM seeds of the test PKI for
/// `ike_import`).
#[must_use]
pub fn dn_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("dn_gw", b"C=US, O=Example, CN=gw".to_vec()),
        (
            "dn_every_type",
            b"C=FI, ST=Uusimaa, S=x, L=Espoo, STREET=Main 1, O=Ex\\, Inc, OU=Net, CN=gw.example, \
E=admin@example.com, EMAIL=a@b, DC=example, SN=Doe, SERIALNUMBER=1234, T=Gateway, G=Ann, UID=u1"
                .to_vec(),
        ),
        ("dn_escapes", b"CN=a\\\\b\\,c = d, O= spaced ".to_vec()),
    ];
    if let Ok(der) = parse_dn("C=US, O=Example, CN=gw") {
        let mut two = der.clone();
        two.push(0);
        two.extend(parse_dn("c=us, o=example, cn=GW").unwrap_or_default());
        v.push(("dn_der_pair", two));
        v.push(("dn_der", der));
    }
    v
}
