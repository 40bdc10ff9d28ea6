//! AES-XCBC-MAC (RFC 3566 §4), written over the `aes` block cipher.
//!
//! K1 = E(K, 0x01^16) keys the CBC chain; K2 = E(K, 0x02^16) is XORed into a
//! complete last block, K3 = E(K, 0x03^16) into a padded (10*) last block. The
//! empty message is one padded block.

use aes::Aes128;
use cipher::generic_array::GenericArray;
use cipher::{BlockEncrypt, KeyInit};
use zeroize::Zeroizing;

/// A keyed AES-XCBC-MAC (128-bit key only, as RFC 3566 defines it).
pub(crate) struct XcbcMac {
    k1: Aes128,
    k2: Zeroizing<[u8; 16]>,
    k3: Zeroizing<[u8; 16]>,
}

impl XcbcMac {
    /// `None` unless `key` is 16 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        let k = Aes128::new_from_slice(key).ok()?;
        let derive = |byte: u8| {
            let mut b = Zeroizing::new([byte; 16]);
            k.encrypt_block(GenericArray::from_mut_slice(&mut b[..]));
            b
        };
        let k1 = derive(1);
        let k2 = derive(2);
        let k3 = derive(3);
        let k1 = Aes128::new_from_slice(&k1[..]).ok()?;
        Some(Self { k1, k2, k3 })
    }

    /// The full 128-bit MAC over the concatenation of `parts`.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 16] {
        let mut e = [0u8; 16];
        let mut buf = [0u8; 16];
        let mut n = 0usize;
        for part in parts {
            let mut data = *part;
            while !data.is_empty() {
                if n == 16 {
                    // More data follows, so the buffered block is not the last one.
                    self.chain(&mut e, &buf);
                    n = 0;
                }
                let take = (16 - n).min(data.len());
                let (head, rest) = data.split_at(take);
                buf[n..n + take].copy_from_slice(head);
                n += take;
                data = rest;
            }
        }
        let last_key: &[u8; 16] = if n == 16 {
            &self.k2
        } else {
            buf[n] = 0x80;
            buf[n + 1..].fill(0);
            &self.k3
        };
        for (b, k) in buf.iter_mut().zip(last_key.iter()) {
            *b ^= k;
        }
        self.chain(&mut e, &buf);
        e
    }

    fn chain(&self, e: &mut [u8; 16], block: &[u8; 16]) {
        for (x, b) in e.iter_mut().zip(block.iter()) {
            *x ^= b;
        }
        self.k1.encrypt_block(GenericArray::from_mut_slice(e));
    }
}
