//! Distinguished names as configuration text (`C=US, O=Example, CN=gw`) and their
//! comparison.
//!
//! [`parse_dn`] writes the DER Name of the text, RDNs in the order written (the form
//! strongSwan and `openssl x509 -nameopt RFC2253`'s reverse show), country and serial
//! number as PrintableString, e-mail and domain components as IA5String, everything
//! else as UTF8String. [`dn_equal`] compares two DER Names RDN by RDN, in order: each
//! pair of RDNs must hold the same number of attributes (a multi-valued RDN matches only
//! one of the same size), paired by attribute type. Two values of the same type are
//! equal when
//! - both are PrintableString, UTF8String or IA5String (in any mix of the three) and
//!   ASCII: equal ignoring ASCII case, so that a name written in a configuration
//!   matches the one a CA encoded;
//! - otherwise (a non-ASCII value, or another string type such as BMPString or
//!   TeletexString): the same string type and the same bytes, exactly.

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
    // An empty Name has no text parse_dn reads back.
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// One attribute of an RDN: its type (OID contents), value tag and contents.
type Atv<'a> = (&'a [u8], u8, &'a [u8]);

/// The RDNs of a DER Name, in order, each as its attributes; `None` if it is not one.
pub(crate) fn rdns(name: &[u8]) -> Option<Vec<Vec<Atv<'_>>>> {
    let mut r = Reader::new(name);
    let mut seq = r.sequence().ok()?;
    r.finish().ok()?;
    let mut out = Vec::new();
    while !seq.is_empty() {
        let set = seq.expect(SET).ok()?;
        let mut atvs = Reader::new(set.value);
        let mut rdn = Vec::new();
        while !atvs.is_empty() {
            let mut atv = atvs.sequence().ok()?;
            let o = atv.expect(tag::OID).ok()?;
            let v = atv.any().ok()?;
            atv.finish().ok()?;
            rdn.push((o.value, v.tag, v.value));
        }
        if rdn.is_empty() {
            return None;
        }
        out.push(rdn);
    }
    Some(out)
}

/// Whether two attribute values are equal (see the module docs).
fn value_equal((ta, va): (u8, &[u8]), (tb, vb): (u8, &[u8])) -> bool {
    let folded = |t: u8| matches!(t, PRINTABLE | UTF8 | IA5);
    if folded(ta) && folded(tb) && va.is_ascii() && vb.is_ascii() {
        va.eq_ignore_ascii_case(vb)
    } else {
        ta == tb && va == vb
    }
}

/// Whether two RDNs hold the same attributes: same count, each of `a` paired with a
/// distinct equal one of `b` (the equality is an equivalence, so the first free match
/// will do).
fn rdn_equal(a: &[Atv<'_>], b: &[Atv<'_>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|&(oa, ta, va)| {
        let hit = b
            .iter()
            .zip(used.iter())
            .position(|(&(ob, tb, vb), &u)| !u && oa == ob && value_equal((ta, va), (tb, vb)));
        hit.is_some_and(|i| {
            used[i] = true;
            true
        })
    })
}

/// Whether two DER Names are the same name (see the module docs); two byte-equal
/// encodings always are.
#[must_use]
pub fn dn_equal(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (rdns(a), rdns(b)) {
        (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| rdn_equal(p, q)),
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
        let r = rdns(&d).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1][0].2, b"Ex, Inc");
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

    /// A Name from RDNs, each a list of (attribute OID contents, value tag, value).
    fn name(rdns: &[&[Atv<'_>]]) -> Vec<u8> {
        let mut body = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, t, v) in *rdn {
                let mut atv = encode(tag::OID, oid);
                atv.extend(encode(*t, v));
                set.extend(encode(tag::SEQUENCE, &atv));
            }
            body.extend(encode(SET, &set));
        }
        encode(tag::SEQUENCE, &body)
    }

    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const BMP: u8 = 0x1e;
    const TELETEX: u8 = 0x14;

    #[test]
    fn multi_valued_rdns_are_not_flattened() {
        // {O=Ex + OU=Lab}, {CN=gw} against {O=Ex}, {OU=Lab}, {CN=gw}: the same attributes
        // in the same order, but not the same RDNs.
        let multi = name(&[
            &[(O, UTF8, b"Ex"), (OU, UTF8, b"Lab")],
            &[(CN, UTF8, b"gw")],
        ]);
        let flat = name(&[
            &[(O, UTF8, b"Ex")],
            &[(OU, UTF8, b"Lab")],
            &[(CN, UTF8, b"gw")],
        ]);
        assert!(!dn_equal(&multi, &flat));
        assert!(!dn_equal(&flat, &multi));
        // The members of a multi-valued RDN are a set: any order, case folded.
        let swapped = name(&[
            &[(OU, PRINTABLE, b"LAB"), (O, UTF8, b"ex")],
            &[(CN, UTF8, b"GW")],
        ]);
        assert!(dn_equal(&multi, &swapped));
        // Same size, but a member differs.
        let other = name(&[
            &[(O, UTF8, b"Ex"), (OU, UTF8, b"Lab2")],
            &[(CN, UTF8, b"gw")],
        ]);
        assert!(!dn_equal(&multi, &other));
        // A repeated member does not stand for a missing one.
        let twice = name(&[&[(O, UTF8, b"Ex"), (O, UTF8, b"Ex")], &[(CN, UTF8, b"gw")]]);
        assert!(!dn_equal(&multi, &twice) && !dn_equal(&twice, &multi));
    }

    #[test]
    fn string_types_matter_outside_ascii_printable_utf8_ia5() {
        let utf8 = |v: &[u8]| name(&[&[(CN, UTF8, v)]]);
        // ASCII in Printable/UTF8/IA5: type and case ignored.
        assert!(dn_equal(&utf8(b"Gw"), &name(&[&[(CN, PRINTABLE, b"gW")]])));
        assert!(dn_equal(&utf8(b"gw"), &name(&[&[(CN, IA5, b"GW")]])));
        // Non-ASCII UTF-8: exact bytes only (no folding of the ASCII letters either).
        let e_acute = "G\u{e9}".as_bytes();
        assert!(dn_equal(&utf8(e_acute), &utf8(e_acute)));
        assert!(!dn_equal(&utf8(e_acute), &utf8("g\u{e9}".as_bytes())));
        // The same bytes in another string type are another name.
        assert!(!dn_equal(
            &utf8(e_acute),
            &name(&[&[(CN, TELETEX, e_acute)]])
        ));
        // BMPString: exact, type and bytes; no case folding even of ASCII-looking bytes.
        let bmp = |v: &[u8]| name(&[&[(CN, BMP, v)]]);
        assert!(dn_equal(
            &bmp(&[0, b'g', 0, b'w']),
            &bmp(&[0, b'g', 0, b'w'])
        ));
        assert!(!dn_equal(
            &bmp(&[0, b'g', 0, b'w']),
            &bmp(&[0, b'G', 0, b'W'])
        ));
        assert!(!dn_equal(&bmp(b"gw"), &utf8(b"gw")));
        assert!(!dn_equal(&name(&[&[(CN, TELETEX, b"gw")]]), &utf8(b"gw")));
        // An empty RDN is not a Name we accept.
        assert!(!dn_equal(&name(&[&[]]), &name(&[&[], &[]])));
    }
}
