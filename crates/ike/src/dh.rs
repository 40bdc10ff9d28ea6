//! Key exchange groups (RFC 7296 §3.4, Transform Type 4) with the public-value checks of
//! RFC 6989.
//!
//! | group | what | public value on the wire | shared secret g^ir |
//! |---|---|---|---|
//! | 14 | 2048-bit MODP (RFC 3526 §3) | y, 256 bytes big-endian | 256 bytes, zero-padded |
//! | 19 | 256-bit random ECP (RFC 5903) | x \|\| y, 64 bytes | x of the shared point, 32 bytes |
//! | 20 | 384-bit random ECP (RFC 5903) | x \|\| y, 96 bytes | x of the shared point, 48 bytes |
//! | 31 | Curve25519 (RFC 8031) | 32 bytes | 32 bytes |
//!
//! Private keys come from random bytes the caller supplies ([`Group::random_len`]); this
//! crate never reads an RNG. Peer values are checked before use: exact length; for MODP
//! 1 < y < p-1 (RFC 6989 §2.2: for a safe-prime group this range check is the whole
//! test), for ECP a point on the curve (§2.3, done by aws-lc when it decodes the point),
//! for Curve25519 a non-zero shared secret (RFC 8031 §2.3).
//!
//! MODP arithmetic is constant-time Montgomery exponentiation from `crypto-bigint`; the
//! elliptic-curve groups use aws-lc-rs.

use core::fmt;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{Odd, U2048, U384};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// The 2048-bit MODP prime of RFC 3526 §3 (group 14); generator 2.
const MODP2048_P: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// Bytes of private exponent for group 14: 384 bits, above the 2 x 110-bit strength
/// RFC 3526 §8 asks for.
const MODP_EXP_BYTES: usize = 48;

/// A key exchange group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// 2048-bit MODP group (14).
    Modp2048,
    /// 256-bit random ECP group (19).
    Ecp256,
    /// 384-bit random ECP group (20).
    Ecp384,
    /// Curve25519 (31).
    Curve25519,
}

impl Group {
    /// From the IANA Transform Type 4 ID.
    #[must_use]
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            14 => Some(Self::Modp2048),
            19 => Some(Self::Ecp256),
            20 => Some(Self::Ecp384),
            31 => Some(Self::Curve25519),
            _ => None,
        }
    }

    /// The IANA Transform Type 4 ID.
    #[must_use]
    pub fn id(self) -> u16 {
        match self {
            Self::Modp2048 => 14,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Curve25519 => 31,
        }
    }

    /// Length of the public value in the KE payload.
    #[must_use]
    pub fn public_len(self) -> usize {
        match self {
            Self::Modp2048 => 256,
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
        }
    }

    /// Length of the shared secret g^ir.
    #[must_use]
    pub fn shared_len(self) -> usize {
        match self {
            Self::Modp2048 => 256,
            Self::Ecp256 | Self::Curve25519 => 32,
            Self::Ecp384 => 48,
        }
    }

    /// How many random bytes [`KeyShare::new`] takes.
    #[must_use]
    pub fn random_len(self) -> usize {
        match self {
            Self::Modp2048 => MODP_EXP_BYTES,
            Self::Ecp256 | Self::Curve25519 => 32,
            Self::Ecp384 => 48,
        }
    }

    fn ec_alg(self) -> Option<&'static agreement::Algorithm> {
        match self {
            Self::Modp2048 => None,
            Self::Ecp256 => Some(&agreement::ECDH_P256),
            Self::Ecp384 => Some(&agreement::ECDH_P384),
            Self::Curve25519 => Some(&agreement::X25519),
        }
    }
}

enum Secret {
    Modp(Zeroizing<U384>),
    Ec(PrivateKey),
}

/// Our half of a key exchange: the private key and the public value to send.
pub struct KeyShare {
    group: Group,
    secret: Secret,
    public: Vec<u8>,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

fn modp_params() -> Result<MontyParams<{ U2048::LIMBS }>, CryptoError> {
    let odd: Option<Odd<U2048>> = Odd::new(MODP2048_P).into();
    odd.map(MontyParams::new)
        .ok_or(CryptoError::UnsupportedGroup(14))
}

fn modp_pow(base: &U2048, exp: &U384) -> Result<U2048, CryptoError> {
    let params = modp_params()?;
    Ok(MontyForm::new(base, params).pow(exp).retrieve())
}

impl KeyShare {
    /// Makes a key share from `random` (exactly [`Group::random_len`] bytes from a
    /// cryptographic RNG).
    ///
    /// # Errors
    /// [`CryptoError::BadRandom`] if `random` has the wrong length or gives an invalid
    /// private key (then draw new bytes).
    pub fn new(group: Group, random: &[u8]) -> Result<Self, CryptoError> {
        if random.len() != group.random_len() {
            return Err(CryptoError::BadRandom);
        }
        match group.ec_alg() {
            None => {
                let x = Zeroizing::new(U384::from_be_slice(random));
                if x.bits() < 2 {
                    return Err(CryptoError::BadRandom);
                }
                let y = modp_pow(&U2048::from_u8(2), &x)?;
                Ok(Self {
                    group,
                    secret: Secret::Modp(x),
                    public: y.to_be_bytes().to_vec(),
                })
            }
            Some(alg) => {
                let key = PrivateKey::from_private_key(alg, random)
                    .map_err(|_| CryptoError::BadRandom)?;
                let pubkey = key
                    .compute_public_key()
                    .map_err(|_| CryptoError::BadRandom)?;
                let raw = pubkey.as_ref();
                // ECP: drop the SEC1 0x04 prefix (RFC 5903 §7 sends x || y).
                let public = match group {
                    Group::Curve25519 => raw.to_vec(),
                    _ => raw.get(1..).unwrap_or(&[]).to_vec(),
                };
                if public.len() != group.public_len() {
                    return Err(CryptoError::BadRandom);
                }
                Ok(Self {
                    group,
                    secret: Secret::Ec(key),
                    public,
                })
            }
        }
    }

    /// The group.
    #[must_use]
    pub fn group(&self) -> Group {
        self.group
    }

    /// The public value for the KE payload.
    #[must_use]
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// Checks the peer's public value and computes the shared secret g^ir.
    ///
    /// # Errors
    /// [`CryptoError::InvalidPublicValue`] for a value that fails the checks described in
    /// the module documentation.
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if peer.len() != self.group.public_len() {
            return Err(CryptoError::InvalidPublicValue(
                "wrong length for the group",
            ));
        }
        match &self.secret {
            Secret::Modp(x) => {
                let y = U2048::from_be_slice(peer);
                let p_minus_1 = MODP2048_P.wrapping_sub(&U2048::ONE);
                if y <= U2048::ONE || y >= p_minus_1 {
                    return Err(CryptoError::InvalidPublicValue(
                        "MODP value not in 1 < y < p-1",
                    ));
                }
                let z = Zeroizing::new(modp_pow(&y, x)?);
                if *z == U2048::ONE {
                    return Err(CryptoError::InvalidPublicValue("MODP shared secret is 1"));
                }
                Ok(Zeroizing::new(z.to_be_bytes().to_vec()))
            }
            Secret::Ec(key) => {
                let alg = key.algorithm();
                let encoded: Zeroizing<Vec<u8>> = match self.group {
                    Group::Curve25519 => Zeroizing::new(peer.to_vec()),
                    _ => Zeroizing::new([&[0x04][..], peer].concat()),
                };
                let bad = CryptoError::InvalidPublicValue("not a valid point on the curve");
                let shared =
                    agreement::agree(key, UnparsedPublicKey::new(alg, &encoded[..]), bad, |s| {
                        Ok(Zeroizing::new(s.to_vec()))
                    })?;
                let zero = vec![0u8; shared.len()];
                if bool::from(shared.ct_eq(&zero)) {
                    return Err(CryptoError::InvalidPublicValue("all-zero shared secret"));
                }
                if shared.len() != self.group.shared_len() {
                    return Err(bad);
                }
                Ok(shared)
            }
        }
    }
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GROUPS: [Group; 4] = [
        Group::Modp2048,
        Group::Ecp256,
        Group::Ecp384,
        Group::Curve25519,
    ];

    fn share(g: Group, fill: u8) -> KeyShare {
        let mut r = vec![fill; g.random_len()];
        r[0] = 0x11;
        KeyShare::new(g, &r).unwrap()
    }

    #[test]
    fn both_sides_agree() {
        for g in GROUPS {
            let a = share(g, 3);
            let b = share(g, 7);
            assert_eq!(a.public().len(), g.public_len());
            let s1 = a.agree(b.public()).unwrap();
            let s2 = b.agree(a.public()).unwrap();
            assert_eq!(s1, s2, "{g:?}");
            assert_eq!(s1.len(), g.shared_len());
            assert_eq!(Group::from_id(g.id()), Some(g));
        }
    }

    #[test]
    fn wrong_lengths_rejected() {
        for g in GROUPS {
            let a = share(g, 3);
            let b = share(g, 7);
            let mut long = b.public().to_vec();
            long.push(0);
            assert!(matches!(
                a.agree(&long),
                Err(CryptoError::InvalidPublicValue(_))
            ));
            assert!(a.agree(&b.public()[1..]).is_err());
            assert!(a.agree(&[]).is_err());
            assert_eq!(
                KeyShare::new(g, &vec![1; g.random_len() + 1]).unwrap_err(),
                CryptoError::BadRandom
            );
        }
    }

    #[test]
    fn modp_degenerate_values_rejected() {
        let a = share(Group::Modp2048, 5);
        let p = MODP2048_P.to_be_bytes();
        let pm1 = MODP2048_P.wrapping_sub(&U2048::ONE).to_be_bytes();
        let pp1 = MODP2048_P.wrapping_add(&U2048::ONE).to_be_bytes();
        let mut one = [0u8; 256];
        one[255] = 1;
        for (name, v) in [
            ("0", [0u8; 256]),
            ("1", one),
            ("p-1", pm1),
            ("p", p),
            ("p+1", pp1),
            ("2^2048-1", [0xff; 256]),
        ] {
            assert!(
                matches!(a.agree(&v), Err(CryptoError::InvalidPublicValue(_))),
                "{name} accepted"
            );
        }
        let mut two = [0u8; 256];
        two[255] = 2;
        assert!(a.agree(&two).is_ok(), "2 is a valid public value");
    }

    #[test]
    fn ecp_points_off_the_curve_rejected() {
        for g in [Group::Ecp256, Group::Ecp384] {
            let a = share(g, 3);
            let b = share(g, 9);
            let mut bad = b.public().to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1; // y changed: off the curve
            assert!(matches!(
                a.agree(&bad),
                Err(CryptoError::InvalidPublicValue(_))
            ));
            let zeros = vec![0u8; g.public_len()];
            assert!(a.agree(&zeros).is_err(), "(0,0) is not on the curve");
            let ff = vec![0xffu8; g.public_len()];
            assert!(a.agree(&ff).is_err(), "coordinates above p");
        }
    }

    #[test]
    fn x25519_low_order_points_rejected() {
        let a = share(Group::Curve25519, 3);
        // Points of small order give an all-zero shared secret (RFC 7748 §6.1).
        let mut one = [0u8; 32];
        one[0] = 1;
        for v in [[0u8; 32], one] {
            assert!(matches!(
                a.agree(&v),
                Err(CryptoError::InvalidPublicValue(_))
            ));
        }
    }

    #[test]
    fn rfc7748_x25519_vector() {
        // RFC 7748 §6.1: Alice's private key, Bob's public key, their shared secret.
        let alice = hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
            .unwrap();
        let bob_pub =
            hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
                .unwrap();
        let a = KeyShare::new(Group::Curve25519, &alice).unwrap();
        assert_eq!(
            hex::encode(a.public()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        assert_eq!(
            hex::encode(&*a.agree(&bob_pub).unwrap()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let a = share(Group::Modp2048, 3);
        assert_eq!(format!("{a:?}"), "KeyShare { group: Modp2048, .. }");
    }
}
