//! Small text helpers shared by the ipseckey and ipsecconf parsers.

/// Splits `host/prefix`. `Ok((host, None))` without a slash; `Err(())` when the part after
/// the slash is not a prefix length of 0..=128 written with at most three digits.
pub(crate) fn split_prefix(text: &str) -> Result<(&str, Option<u8>), ()> {
    match text.split_once('/') {
        Some((h, p)) => {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            match p.parse::<u8>().ok().filter(|n| *n <= 128) {
                Some(n) => Ok((h, Some(n))),
                None => Err(()),
            }
        }
        None => Ok((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::split_prefix;

    #[test]
    fn prefixes() {
        assert_eq!(split_prefix("10.0.0.0/8"), Ok(("10.0.0.0", Some(8))));
        assert_eq!(split_prefix("fd00::/128"), Ok(("fd00::", Some(128))));
        assert_eq!(split_prefix("host"), Ok(("host", None)));
        for bad in ["a/", "a/129", "a/0008", "a/x", "a/-1"] {
            assert_eq!(split_prefix(bad), Err(()), "{bad}");
        }
    }
}
