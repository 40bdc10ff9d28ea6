//! DES weak and semi-weak keys (FIPS 74 §3.6; NIST SP 800-67 §3.3.2).

/// The 4 weak and 12 semi-weak DES keys, with odd parity.
const WEAK_DES_KEYS: [[u8; 8]; 16] = [
    // weak
    [0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01],
    [0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE],
    [0xE0, 0xE0, 0xE0, 0xE0, 0xF1, 0xF1, 0xF1, 0xF1],
    [0x1F, 0x1F, 0x1F, 0x1F, 0x0E, 0x0E, 0x0E, 0x0E],
    // semi-weak, in pairs
    [0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE],
    [0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01],
    [0x1F, 0xE0, 0x1F, 0xE0, 0x0E, 0xF1, 0x0E, 0xF1],
    [0xE0, 0x1F, 0xE0, 0x1F, 0xF1, 0x0E, 0xF1, 0x0E],
    [0x01, 0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1],
    [0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1, 0x01],
    [0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E, 0xFE],
    [0xFE, 0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E],
    [0x01, 0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E],
    [0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E, 0x01],
    [0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1, 0xFE],
    [0xFE, 0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1],
];

/// Whether `key8` is one of the 4 weak or 12 semi-weak DES keys. The parity
/// bit (the low bit of each byte) is ignored. Returns `false` for any slice
/// that is not 8 bytes long.
#[must_use]
pub fn is_weak_des_key(key8: &[u8]) -> bool {
    if key8.len() != 8 {
        return false;
    }
    WEAK_DES_KEYS
        .iter()
        .any(|w| w.iter().zip(key8).all(|(a, b)| (a & 0xFE) == (b & 0xFE)))
}

/// Whether two DES keys are equal, parity bits ignored.
pub(crate) fn des_keys_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x & 0xFE) == (y & 0xFE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_listed_keys_are_weak_with_any_parity() {
        for k in WEAK_DES_KEYS {
            assert!(is_weak_des_key(&k));
            let flipped: Vec<u8> = k.iter().map(|b| b ^ 1).collect();
            assert!(is_weak_des_key(&flipped));
        }
    }

    #[test]
    fn ordinary_keys_are_not_weak() {
        assert!(!is_weak_des_key(&[
            0x13, 0x34, 0x57, 0x79, 0x9B, 0xBC, 0xDF, 0xF1
        ]));
        assert!(!is_weak_des_key(&[0x01; 7]));
        assert!(!is_weak_des_key(&[0x01; 9]));
    }

    #[test]
    fn semi_weak_pairs_encrypt_as_inverses() {
        // E_k1(E_k2(x)) == x for each semi-weak pair: a structural check of the table.
        use cipher::generic_array::GenericArray;
        use cipher::{BlockEncrypt, KeyInit};
        for pair in WEAK_DES_KEYS[4..].chunks(2) {
            let a = des::Des::new_from_slice(&pair[0]).unwrap();
            let b = des::Des::new_from_slice(&pair[1]).unwrap();
            let mut block = GenericArray::clone_from_slice(b"IronSwan");
            a.encrypt_block(&mut block);
            b.encrypt_block(&mut block);
            assert_eq!(&block[..], b"IronSwan");
        }
        for k in &WEAK_DES_KEYS[..4] {
            let a = des::Des::new_from_slice(k).unwrap();
            let mut block = GenericArray::clone_from_slice(b"IronSwan");
            a.encrypt_block(&mut block);
            a.encrypt_block(&mut block);
            assert_eq!(&block[..], b"IronSwan");
        }
    }
}
