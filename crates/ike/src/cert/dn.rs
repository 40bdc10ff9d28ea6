//! Distinguished names as configuration text (`C=US, O=Example, CN=gw`) and their
//! comparison.
//!
//! [`parse_dn`] writes the DER Name of the text, RDNs in the order written (the form
//! strongSwan and `openssl x509 -nameopt RFC2253`'s reverse show), country and serial
//! number as PrintableString, e-mail and domain components as IA5String, everything
//! else as UTF8String. [`dn_equal`] compares two DER Names attribute by attribute:
//! same attribute types in the same order, values equal ignoring ASCII case and the
//! string type, so that a name written in a configuration matches the one a CA encoded.

use super::der::{encode, tag, Reader};

const SET: u8 = 0x31;
const UTF8: u8 = 0x0c;
const PRINTABLE: u8 = 0x13;
const IA5: u8 = 0x16;

/// The attribute types a DN may be written with: names, OID contents, string tag.
const ATTRS: &[(&[&str], &[u8], u8)] = &[
    (&["CN"], &[0x55, 0x04, 0x03], UTF8),
    (&["SN", "SURNAME"], &[0x55, 0x04, 0x04], UTF8),
    (&["SERIALNUMBER"], &[0x55, 0x04, 0x05], PRINTABLE),
    (&["C"], &[0x55, 0x04, 0x06], PRINTABLE),
    (&["L"], &[0x55, 0x04, 0x07], UTF8),
    (&["ST", "S"], &[0x55, 0x04, 0x08], UTF8),
    (&["STREET"], &[0x55, 0x04, 0x09], UTF8),
    (&["O"], &[0x55, 0x04, 0x0a], UTF8),
    (&["OU"], &[0x55, 0x04, 0x0b], UTF8),
    (&["T", "TITLE"], &[0x55, 0x04, 0x0c], UTF8),
    (&["G", "GN", "GIVENNAME"], &[0x55, 0x04, 0x2a], UTF8),
    (
        &["E", "EMAIL", "EMAILADDRESS"],
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
        IA5,
    ),
    (
        &["DC"],
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        IA5,
    ),
    (
        &["UID"],
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        UTF8,
    ),
];

/// The DER Name of `text`: `TYPE=value` pairs separated by commas (`\,` is a comma
/// inside a value); attribute types C, ST (S), L, O, OU, CN, E (EMAIL), DC, SN,
/// SERIALNUMBER, T, G and UID, in any case.
///
/// # Errors
/// What is wrong with the text, for a configuration error message.
pub fn parse_dn(text: &str) -> Result<Vec<u8>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err("a DN may not end with '\\'".into()),
            },
            ',' => parts.push(core::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    let mut rdns = Vec::new();
    for part in parts {
        let Some((ty, value)) = part.split_once('=') else {
            return Err(format!(
                "{:?}: expected TYPE=value (such as CN=gw)",
                part.trim()
            ));
        };
        let (ty, value) = (ty.trim(), value.trim());
        let upper = ty.to_ascii_uppercase();
        let Some((_, oid, string_tag)) = ATTRS.iter().find(|(n, _, _)| n.contains(&upper.as_str()))
        else {
            return Err(format!(
                "unknown DN attribute type {ty:?}: expected C, ST, L, O, OU, CN, E, DC, SN, SERIALNUMBER, T, G or UID"
            ));
        };
        if value.is_empty() {
            return Err(format!("{ty}= has an empty value"));
        }
        if *string_tag != UTF8 && !value.is_ascii() {
            return Err(format!("{ty}={value}: expected ASCII"));
        }
        if *string_tag == PRINTABLE && !value.bytes().all(printable) {
            return Err(format!(
                "{ty}={value}: expected letters, digits, spaces and ' ( ) + , - . / : = ? only (a PrintableString)"
            ));
        }
        if upper == "C" && value.len() != 2 {
            return Err(format!("C={value}: expected a two-letter country code"));
        }
        let mut atv = encode(tag::OID, oid);
        atv.extend(encode(*string_tag, value.as_bytes()));
        rdns.extend(encode(SET, &encode(tag::SEQUENCE, &atv)));
    }
    Ok(encode(tag::SEQUENCE, &rdns))
}

/// Whether `b` may appear in an ASN.1 PrintableString (X.680 §41.4).
fn printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// The text [`parse_dn`] reads back into `name` exactly, for a Name it could have
/// written (the first type name of each attribute, `\` and `,` escaped); `None` for
/// any other Name.
#[must_use]
pub fn dn_text(name: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    let mut r = Reader::new(name);
    let mut rdns = r.sequence().ok()?;
    r.finish().ok()?;
    while !rdns.is_empty() {
        let mut set = Reader::new(rdns.expect(SET).ok()?.value);
        let mut atv = set.sequence().ok()?;
        set.finish().ok()?;
        let o = atv.expect(tag::OID).ok()?;
        let v = atv.any().ok()?;
        atv.finish().ok()?;
        let (names, _, t) = ATTRS.iter().find(|(_, oid, _)| *oid == o.value)?;
        let value = core::str::from_utf8(v.value).ok()?;
        let fits = match *t {
            PRINTABLE => v.value.iter().all(|&b| printable(b)),
            IA5 => value.is_ascii(),
            _ => true,
        };
        let country = names[0] != "C" || value.len() == 2;
        if v.tag != *t || !fits || !country || value.is_empty() || value.trim() != value {
            return None;
        }
        let escaped: String = value
            .chars()
            .flat_map(|c| {
                (matches!(c, '\\' | ','))
                    .then_some('\\')
                    .into_iter()
                    .chain([c])
            })
            .collect();
        parts.push(format!("{}={escaped}", names[0]));
    }
    Some(parts.join(", "))
}

/// The (attribute type, value) pairs of a DER Name, in order; `None` if it is not one.
pub(crate) fn attributes(name: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut r = Reader::new(name);
    let mut rdns = r.sequence().ok()?;
    r.finish().ok()?;
    let mut out = Vec::new();
    while !rdns.is_empty() {
        let set = rdns.expect(SET).ok()?;
        let mut atvs = Reader::new(set.value);
        while !atvs.is_empty() {
            let mut atv = atvs.sequence().ok()?;
            let o = atv.expect(tag::OID).ok()?;
            let v = atv.any().ok()?;
            atv.finish().ok()?;
            out.push((o.value, v.value));
        }
    }
    Some(out)
}

/// Whether two DER Names are the same name (see the module docs); two byte-equal
/// encodings always are.
#[must_use]
pub fn dn_equal(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (attributes(a), attributes(b)) {
        (Some(x), Some(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|((oa, va), (ob, vb))| oa == ob && va.eq_ignore_ascii_case(vb))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Certificate;

    #[test]
    fn written_dn_matches_the_certificate_subject() {
        let c = Certificate::from_der(include_bytes!("../../tests/certs/alice-rsa.crt")).unwrap();
        let shown = Certificate::name_to_string(&c.subject);
        let parsed = parse_dn(&shown).unwrap();
        assert!(dn_equal(&parsed, &c.subject), "{shown}");
        assert!(dn_equal(
            &parse_dn(&shown.to_lowercase()).unwrap(),
            &c.subject
        ));
        let other = parse_dn(&format!("{shown}, OU=x")).unwrap();
        assert!(!dn_equal(&other, &c.subject));
    }

    #[test]
    fn bad_dns_are_refused() {
        // Country and serial number are PrintableStrings: no '@', '_', '*' or '&'.
        for bad in [
            "",
            "CN",
            "XX=a",
            "C=USA",
            "CN=",
            "CN=a\\",
            "C=U@",
            "SERIALNUMBER=a_b",
        ] {
            assert!(parse_dn(bad).is_err(), "{bad}");
        }
        let d = parse_dn("C=US, O=Ex\\, Inc, CN=gw").unwrap();
        let attrs = attributes(&d).unwrap();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[1].1, b"Ex, Inc");
        assert!(!dn_equal(
            &d,
            &parse_dn("C=US, CN=gw, O=Ex\\, Inc").unwrap()
        ));
        // dn_text writes the text back, escapes included.
        let t = dn_text(&d).unwrap();
        assert_eq!(t, "C=US, O=Ex\\, Inc, CN=gw");
        assert_eq!(parse_dn(&t).unwrap(), d);
        assert_eq!(
            dn_text(&parse_dn("e=a\\\\b, sn=x=y").unwrap()).unwrap(),
            "E=a\\\\b, SN=x=y"
        );
    }
}
