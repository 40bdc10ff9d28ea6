//! A minimal DER reader and writer: exactly what X.509 certificates and the RFC 7427
//! AlgorithmIdentifiers need (single-byte tags, definite lengths of at most four octets).

use super::CertError;

/// Universal and context tags used by X.509.
pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
}

/// One DER element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    /// The contents octets.
    pub value: &'a [u8],
    /// The whole element, tag and length included.
    pub raw: &'a [u8],
}

/// A cursor over concatenated DER elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag.
    pub fn any(&mut self) -> Result<Tlv<'a>, CertError> {
        let input = self.rest;
        let (&t, after) = input.split_first().ok_or(CertError::Malformed)?;
        if t & 0x1f == 0x1f {
            return Err(CertError::Malformed);
        }
        let (&l0, after) = after.split_first().ok_or(CertError::Malformed)?;
        let (len, after) = if l0 < 0x80 {
            (usize::from(l0), after)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 || after.len() < n {
                return Err(CertError::Malformed);
            }
            let len = after[..n]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | usize::from(b));
            // DER: the shortest form only.
            if after[0] == 0 || len < 0x80 {
                return Err(CertError::Malformed);
            }
            (len, &after[n..])
        };
        if after.len() < len {
            return Err(CertError::Malformed);
        }
        let header = input.len() - after.len();
        let raw = &input[..header + len];
        self.rest = &after[len..];
        Ok(Tlv {
            tag: t,
            value: &after[..len],
            raw,
        })
    }

    /// The next element, which must have tag `t`.
    pub fn expect(&mut self, t: u8) -> Result<Tlv<'a>, CertError> {
        let e = self.any()?;
        if e.tag == t {
            Ok(e)
        } else {
            Err(CertError::Malformed)
        }
    }

    /// The next element if it has tag `t`.
    pub fn optional(&mut self, t: u8) -> Result<Option<Tlv<'a>>, CertError> {
        if self.rest.first() == Some(&t) {
            self.any().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The contents of a SEQUENCE, as a reader.
    pub fn sequence(&mut self) -> Result<Reader<'a>, CertError> {
        Ok(Reader::new(self.expect(tag::SEQUENCE)?.value))
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), CertError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CertError::Malformed)
        }
    }
}

/// The contents of a BIT STRING with no unused bits (keys and signatures).
pub(crate) fn bit_string_bytes<'a>(t: &Tlv<'a>) -> Result<&'a [u8], CertError> {
    match t.value.split_first() {
        Some((0, bits)) if t.tag == tag::BIT_STRING => Ok(bits),
        _ => Err(CertError::Malformed),
    }
}

/// Encodes one element.
pub(crate) fn encode(t: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// Seconds since 1970-01-01 of a UTCTime or GeneralizedTime in the `YYMMDDHHMMSSZ` /
/// `YYYYMMDDHHMMSSZ` forms RFC 5280 §4.1.2.5 requires.
pub(crate) fn time(t: &Tlv<'_>) -> Result<i64, CertError> {
    let s = t.value;
    let digits = |r: &[u8]| -> Result<i64, CertError> {
        r.iter().try_fold(0i64, |a, &c| {
            if c.is_ascii_digit() {
                Ok(a * 10 + i64::from(c - b'0'))
            } else {
                Err(CertError::Malformed)
            }
        })
    };
    let (year, rest) = match (t.tag, s.len()) {
        (tag::UTC_TIME, 13) => {
            let yy = digits(&s[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        (tag::GENERALIZED_TIME, 15) => (digits(&s[..4])?, &s[4..]),
        _ => return Err(CertError::Malformed),
    };
    if rest[10] != b'Z' {
        return Err(CertError::Malformed);
    }
    let (mo, d) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (h, mi, sec) = (
        digits(&rest[4..6])?,
        digits(&rest[6..8])?,
        digits(&rest[8..10])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(CertError::Malformed);
    }
    Ok(days_from_civil(year, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let utc = encode(tag::UTC_TIME, b"700101000000Z");
        let t = Reader::new(&utc).any().unwrap();
        assert_eq!(time(&t).unwrap(), 0);
        let g = encode(tag::GENERALIZED_TIME, b"20261127131802Z");
        let t = Reader::new(&g).any().unwrap();
        assert_eq!(time(&t).unwrap(), 1_795_785_482);
        let bad = encode(tag::UTC_TIME, b"7001010000Z");
        assert!(time(&Reader::new(&bad).any().unwrap()).is_err());
    }

    #[test]
    fn lengths_round_trip_and_bad_ones_fail() {
        for n in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let e = encode(tag::OCTET_STRING, &vec![7; n]);
            let mut r = Reader::new(&e);
            let t = r.expect(tag::OCTET_STRING).unwrap();
            assert_eq!(t.value.len(), n);
            assert_eq!(t.raw, &e[..]);
            assert!(r.is_empty());
        }
        for bad in [
            &[0x30u8, 0x81, 0x05][..],
            &[0x30, 0x81, 0x7f],
            &[0x30, 0x80],
            &[0x30, 2, 0],
            &[0x1f, 0],
        ] {
            assert!(Reader::new(bad).any().is_err(), "{bad:?}");
        }
    }
}
