//! Owned forms of every PF_KEY v2 extension, with their byte layouts.
//!
//! Each type has `parse(ext_type, bytes)` over the whole extension (its 4-byte
//! `sadb_ext` header included, length already checked against the message) and `emit`,
//! which appends the extension with every reserved and padding byte zeroed. Integer fields
//! are in host byte order, as in the C structures; SPIs, ports, IPv6 flow labels and
//! addresses are in network byte order, as in C. Offsets are those of `net/pfkeyv2.h`.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::consts::*;
use crate::diag::Diagnostic;
use crate::wire::PfkeyError;

// ---------------------------------------------------------------------------------------------
// Byte helpers. Every read is bounds-checked and yields `None` past the end.

pub(crate) fn arr<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}
pub(crate) fn ne16(b: &[u8], off: usize) -> Option<u16> {
    arr(b, off).map(u16::from_ne_bytes)
}
pub(crate) fn ne32(b: &[u8], off: usize) -> Option<u32> {
    arr(b, off).map(u32::from_ne_bytes)
}
pub(crate) fn ne64(b: &[u8], off: usize) -> Option<u64> {
    arr(b, off).map(u64::from_ne_bytes)
}
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    arr(b, off).map(u16::from_be_bytes)
}
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    arr(b, off).map(u32::from_be_bytes)
}
fn byte(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}
fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|x| *x == 0)
}

/// Rounds `n` up to a multiple of 8.
pub(crate) const fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// Appends the 4-byte `sadb_ext` header for an extension of `total` bytes (a multiple of 8).
fn put_hdr(out: &mut Vec<u8>, ext_type: u16, total: usize) -> Result<(), PfkeyError> {
    let words = u16::try_from(total / 8).map_err(|_| PfkeyError::too_big())?;
    out.extend_from_slice(&words.to_ne_bytes());
    out.extend_from_slice(&ext_type.to_ne_bytes());
    Ok(())
}
fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_ne_bytes());
}
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_ne_bytes());
}
fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}
/// Pads `out` with zeros up to a multiple of 8 bytes.
fn pad_out(out: &mut Vec<u8>) {
    let n = pad8(out.len()) - out.len();
    put_zeros(out, n);
}

// ---------------------------------------------------------------------------------------------
// Diagnostics per extension type (keysock's duplicate/malformed tables plus NAT-T).

/// The diagnostic for a second copy of extension `t`.
pub(crate) fn duplicate_diag(t: u16) -> Diagnostic {
    match t {
        SADB_EXT_ADDRESS_SRC => Diagnostic::DuplicateSrc,
        SADB_EXT_ADDRESS_DST => Diagnostic::DuplicateDst,
        SADB_X_EXT_ADDRESS_INNER_SRC => Diagnostic::DuplicateInnerSrc,
        SADB_X_EXT_ADDRESS_INNER_DST => Diagnostic::DuplicateInnerDst,
        SADB_EXT_SA => Diagnostic::DuplicateSa,
        SADB_EXT_SPIRANGE => Diagnostic::DuplicateRange,
        SADB_EXT_KEY_AUTH => Diagnostic::DuplicateAkey,
        SADB_EXT_KEY_ENCRYPT => Diagnostic::DuplicateEkey,
        SADB_X_EXT_ADDRESS_NATT_LOC => Diagnostic::DuplicateNattLoc,
        SADB_X_EXT_ADDRESS_NATT_REM => Diagnostic::DuplicateNattRem,
        _ => Diagnostic::None,
    }
}

/// The diagnostic for a badly formed extension `t` (contents).
pub(crate) fn malformed_diag(t: u16) -> Diagnostic {
    match t {
        SADB_EXT_ADDRESS_SRC => Diagnostic::MalformedSrc,
        SADB_EXT_ADDRESS_DST => Diagnostic::MalformedDst,
        SADB_X_EXT_ADDRESS_INNER_SRC => Diagnostic::MalformedInnerSrc,
        SADB_X_EXT_ADDRESS_INNER_DST => Diagnostic::MalformedInnerDst,
        SADB_EXT_SA => Diagnostic::MalformedSa,
        SADB_EXT_SPIRANGE => Diagnostic::MalformedRange,
        SADB_EXT_KEY_AUTH => Diagnostic::MalformedAkey,
        SADB_EXT_KEY_ENCRYPT => Diagnostic::MalformedEkey,
        SADB_X_EXT_ADDRESS_NATT_LOC => Diagnostic::MalformedNattLoc,
        SADB_X_EXT_ADDRESS_NATT_REM => Diagnostic::MalformedNattRem,
        _ => Diagnostic::None,
    }
}

fn malformed(t: u16, what: &'static str) -> PfkeyError {
    PfkeyError::new(EINVAL, malformed_diag(t), what)
}

/// A length that does not fit extension `t`: its malformed code, or BAD_EXTLEN.
fn bad_len(t: u16, what: &'static str) -> PfkeyError {
    let d = match malformed_diag(t) {
        Diagnostic::None => Diagnostic::BadExtlen,
        d => d,
    };
    PfkeyError::new(EINVAL, d, what)
}

fn exact(t: u16, b: &[u8], n: usize) -> Result<(), PfkeyError> {
    if b.len() == n {
        Ok(())
    } else {
        Err(bad_len(t, "extension length does not match its type"))
    }
}

// ---------------------------------------------------------------------------------------------

/// `sadb_sa` (SADB_EXT_SA, 16 bytes).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 spi:u32 (network order)
///  8 replay:u8  9 state:u8  10 auth:u8  11 encrypt:u8  12 flags:u32
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaExt {
    /// SPI (as a number; network order on the wire).
    pub spi: u32,
    /// Replay window in packets (0..=255; Ironswan's larger windows travel in
    /// [`IronswanSa`]).
    pub replay: u8,
    /// `SADB_SASTATE_*`.
    pub state: u8,
    /// Authentication algorithm (`SADB_AALG_*`).
    pub auth: u8,
    /// Encryption algorithm (`SADB_EALG_*`).
    pub encrypt: u8,
    /// `SADB_SAFLAGS_*` / `SADB_X_SAFLAGS_*`.
    pub flags: u32,
}

impl SaExt {
    /// Wire size.
    pub const LEN: usize = 16;

    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, Self::LEN)?;
        let e = || malformed(t, "short SA extension");
        Ok(Self {
            spi: be32(b, 4).ok_or_else(e)?,
            replay: byte(b, 8).ok_or_else(e)?,
            state: byte(b, 9).ok_or_else(e)?,
            auth: byte(b, 10).ok_or_else(e)?,
            encrypt: byte(b, 11).ok_or_else(e)?,
            flags: ne32(b, 12).ok_or_else(e)?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        put_hdr(out, SADB_EXT_SA, Self::LEN)?;
        out.extend_from_slice(&self.spi.to_be_bytes());
        out.extend_from_slice(&[self.replay, self.state, self.auth, self.encrypt]);
        put32(out, self.flags);
        Ok(())
    }
}

/// `sadb_lifetime` (CURRENT, HARD, SOFT and X_LIFETIME_IDLE, 32 bytes).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 allocations:u32  8 bytes:u64  16 addtime:u64  24 usetime:u64
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Allocations (Ironswan: packets).
    pub allocations: u32,
    /// Bytes.
    pub bytes: u64,
    /// Add time: seconds for HARD/SOFT/IDLE, an absolute time for CURRENT.
    pub addtime: u64,
    /// Use time: seconds for HARD/SOFT/IDLE, an absolute time (0 = unused) for CURRENT.
    pub usetime: u64,
}

impl Lifetime {
    /// Wire size.
    pub const LEN: usize = 32;

    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, Self::LEN)?;
        let e = || bad_len(t, "short lifetime");
        Ok(Self {
            allocations: ne32(b, 4).ok_or_else(e)?,
            bytes: ne64(b, 8).ok_or_else(e)?,
            addtime: ne64(b, 16).ok_or_else(e)?,
            usetime: ne64(b, 24).ok_or_else(e)?,
        })
    }

    pub(crate) fn emit(&self, t: u16, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        put_hdr(out, t, Self::LEN)?;
        put32(out, self.allocations);
        put64(out, self.bytes);
        put64(out, self.addtime);
        put64(out, self.usetime);
        Ok(())
    }
}

/// `sadb_address` followed by a `sockaddr_in` or `sockaddr_in6` padded to 8 bytes (SRC, DST,
/// INNER_SRC/PROXY, INNER_DST, NATT_LOC, NATT_REM).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 proto:u8  5 prefixlen:u8  6 reserved:u16 (0)
///  8 sockaddr_in:  family:u16=2 (host order)  port:u16 (net)  addr[4]  zero[8]      -> 24 bytes
///  8 sockaddr_in6: family:u16=10 (host order) port:u16 (net)  flowinfo:u32 (net)
///                  addr[16]  scope_id:u32 (host)  pad[4] (0; Solaris __sin6_src_id) -> 40 bytes
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Upper-layer protocol for the ports (0 = any).
    pub proto: u8,
    /// Prefix length (meaningful for inner addresses; 0 elsewhere).
    pub prefixlen: u8,
    /// Address, port (and for IPv6 flow label and scope).
    pub addr: SocketAddr,
}

impl Address {
    /// A host address with a port and no protocol or prefix.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            proto: 0,
            prefixlen: 0,
            addr,
        }
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Wire size of this address extension.
    pub fn wire_len(&self) -> usize {
        match self.addr {
            SocketAddr::V4(_) => 24,
            SocketAddr::V6(_) => 40,
        }
    }

    fn diags(t: u16) -> (Diagnostic, Diagnostic) {
        // (bad address family, prefix too long)
        match t {
            SADB_EXT_ADDRESS_SRC => (Diagnostic::BadSrcAf, Diagnostic::MalformedSrc),
            SADB_EXT_ADDRESS_DST => (Diagnostic::BadDstAf, Diagnostic::MalformedDst),
            SADB_X_EXT_ADDRESS_INNER_SRC => (Diagnostic::BadInnerSrcAf, Diagnostic::PrefixInnerSrc),
            SADB_X_EXT_ADDRESS_INNER_DST => (Diagnostic::BadInnerDstAf, Diagnostic::PrefixInnerDst),
            SADB_X_EXT_ADDRESS_NATT_LOC => (Diagnostic::BadNattLocAf, Diagnostic::MalformedNattLoc),
            SADB_X_EXT_ADDRESS_NATT_REM => (Diagnostic::BadNattRemAf, Diagnostic::MalformedNattRem),
            _ => (Diagnostic::None, Diagnostic::None),
        }
    }

    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let (bad_af, bad_prefix) = Self::diags(t);
        if b.len() < 16 {
            return Err(malformed(t, "address extension without a sockaddr"));
        }
        let e = || malformed(t, "short address extension");
        let proto = byte(b, 4).ok_or_else(e)?;
        let prefixlen = byte(b, 5).ok_or_else(e)?;
        if ne16(b, 6).ok_or_else(e)? != 0 {
            return Err(malformed(t, "address extension reserved field not zero"));
        }
        let family = ne16(b, 8).ok_or_else(e)?;
        let port = be16(b, 10).ok_or_else(e)?;
        let addr = match family {
            AF_INET => {
                if b.len() != 24 {
                    return Err(malformed(t, "IPv4 address extension is not 3 words"));
                }
                if !all_zero(b.get(16..24).ok_or_else(e)?) {
                    return Err(malformed(t, "sockaddr_in padding not zero"));
                }
                if prefixlen > 32 {
                    return Err(PfkeyError::new(
                        EINVAL,
                        bad_prefix,
                        "IPv4 prefix longer than 32",
                    ));
                }
                let a: [u8; 4] = arr(b, 12).ok_or_else(e)?;
                SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), port))
            }
            AF_INET6 => {
                if b.len() != 40 {
                    return Err(malformed(t, "IPv6 address extension is not 5 words"));
                }
                if !all_zero(b.get(36..40).ok_or_else(e)?) {
                    return Err(malformed(t, "sockaddr_in6 padding not zero"));
                }
                if prefixlen > 128 {
                    return Err(PfkeyError::new(
                        EINVAL,
                        bad_prefix,
                        "IPv6 prefix longer than 128",
                    ));
                }
                let flow = be32(b, 12).ok_or_else(e)?;
                let a: [u8; 16] = arr(b, 16).ok_or_else(e)?;
                let scope = ne32(b, 32).ok_or_else(e)?;
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(a), port, flow, scope))
            }
            _ => {
                return Err(PfkeyError::new(
                    EINVAL,
                    bad_af,
                    "address family not AF_INET/AF_INET6",
                ))
            }
        };
        Ok(Self {
            proto,
            prefixlen,
            addr,
        })
    }

    pub(crate) fn emit(&self, t: u16, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefixlen > max {
            return Err(PfkeyError::new(EINVAL, Self::diags(t).1, "prefix too long"));
        }
        put_hdr(out, t, self.wire_len())?;
        out.extend_from_slice(&[self.proto, self.prefixlen]);
        put16(out, 0);
        match self.addr {
            SocketAddr::V4(a) => {
                put16(out, AF_INET);
                out.extend_from_slice(&a.port().to_be_bytes());
                out.extend_from_slice(&a.ip().octets());
                put_zeros(out, 8);
            }
            SocketAddr::V6(a) => {
                put16(out, AF_INET6);
                out.extend_from_slice(&a.port().to_be_bytes());
                out.extend_from_slice(&a.flowinfo().to_be_bytes());
                out.extend_from_slice(&a.ip().octets());
                put32(out, a.scope_id());
                put_zeros(out, 4);
            }
        }
        Ok(())
    }
}

/// `sadb_key` followed by the key bits, padded to 8 bytes (KEY_AUTH, KEY_ENCRYPT).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 bits:u16  6 reserved:u16 (0)  8 key[ceil(bits/8)]  pad (0)
/// ```
///
/// The key is held in zeroizing memory, compared in constant time, and `Debug` prints only
/// its size. Solaris refuses a zero bit count and an all-zero key; so does this parser.
/// (Solaris reuses `reserved` on encryption keys for an injected test IV; Ironswan does not,
/// and refuses a non-zero value.)
#[derive(Clone, Default)]
pub struct Key {
    /// Key length in bits.
    pub bits: u16,
    data: Zeroizing<Vec<u8>>,
}

impl Key {
    /// A key of whole bytes.
    ///
    /// Returns `None` when the key is longer than 8191 bytes (the bit count would not fit).
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let bits = u16::try_from(bytes.len().checked_mul(8)?).ok()?;
        Some(Self {
            bits,
            data: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// A key of `bits` bits (the last byte's unused low bits are kept as given).
    ///
    /// Returns `None` unless `bytes` is exactly `ceil(bits / 8)` long.
    pub fn with_bits(bytes: &[u8], bits: u16) -> Option<Self> {
        if bytes.len() != usize::from(bits).div_ceil(8) {
            return None;
        }
        Some(Self {
            bits,
            data: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.data
    }

    fn wire_len(&self) -> usize {
        8 + pad8(self.data.len())
    }

    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let e = || malformed(t, "short key extension");
        let bits = ne16(b, 4).ok_or_else(e)?;
        if ne16(b, 6).ok_or_else(e)? != 0 {
            return Err(malformed(t, "key reserved field not zero"));
        }
        if bits == 0 {
            return Err(malformed(t, "key of zero bits"));
        }
        let n = usize::from(bits).div_ceil(8);
        if b.len() != 8 + pad8(n) {
            return Err(malformed(t, "key bits and extension length disagree"));
        }
        let key = b.get(8..8 + n).ok_or_else(e)?;
        if !all_zero(b.get(8 + n..).ok_or_else(e)?) {
            return Err(malformed(t, "key padding not zero"));
        }
        if all_zero(key) {
            return Err(malformed(t, "all-zero key"));
        }
        Ok(Self {
            bits,
            data: Zeroizing::new(key.to_vec()),
        })
    }

    pub(crate) fn emit(&self, t: u16, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        if self.bits == 0
            || self.data.len() != usize::from(self.bits).div_ceil(8)
            || all_zero(&self.data)
        {
            return Err(malformed(t, "key of zero bits, wrong length or all zero"));
        }
        put_hdr(out, t, self.wire_len())?;
        put16(out, self.bits);
        put16(out, 0);
        out.extend_from_slice(&self.data);
        pad_out(out);
        Ok(())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
            && self.data.len() == other.data.len()
            && bool::from(self.data.as_slice().ct_eq(other.data.as_slice()))
    }
}
impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bits redacted>)", self.bits)
    }
}

/// `sadb_ident` followed by a NUL-terminated string padded to 8 bytes (IDENTITY_SRC/DST).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 type:u16  6 reserved:u16 (0)  8 id:u64  16 text NUL pad (0)
/// ```
///
/// `value` holds the text without its NUL; it must not contain NUL bytes (emit refuses
/// them). An empty value is sent as the 16-byte header alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `SADB_IDENTTYPE_*`.
    pub kind: u16,
    /// `sadb_ident_id` (for user ids; usually 0).
    pub id: u64,
    /// The identity text.
    pub value: Vec<u8>,
}

impl Identity {
    fn wire_len(&self) -> usize {
        if self.value.is_empty() {
            16
        } else {
            16 + pad8(self.value.len() + 1)
        }
    }

    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let e = || bad_len(t, "short identity extension");
        if b.len() < 16 {
            return Err(e());
        }
        let kind = ne16(b, 4).ok_or_else(e)?;
        if ne16(b, 6).ok_or_else(e)? != 0 {
            return Err(malformed(t, "identity reserved field not zero"));
        }
        let id = ne64(b, 8).ok_or_else(e)?;
        let text = b.get(16..).ok_or_else(e)?;
        let value = if text.is_empty() {
            Vec::new()
        } else {
            let nul = text
                .iter()
                .position(|c| *c == 0)
                .ok_or_else(|| malformed(t, "identity string not NUL-terminated"))?;
            let (s, rest) = text.split_at(nul);
            if !all_zero(rest) {
                return Err(malformed(t, "bytes after the identity string not zero"));
            }
            s.to_vec()
        };
        Ok(Self { kind, id, value })
    }

    pub(crate) fn emit(&self, t: u16, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        if self.value.contains(&0) {
            return Err(PfkeyError::new(
                EINVAL,
                Diagnostic::None,
                "identity text contains NUL",
            ));
        }
        put_hdr(out, t, self.wire_len())?;
        put16(out, self.kind);
        put16(out, 0);
        put64(out, self.id);
        if !self.value.is_empty() {
            out.extend_from_slice(&self.value);
            out.push(0);
            pad_out(out);
        }
        Ok(())
    }
}

/// `sadb_sens` with its two bitmaps (SENSITIVITY, X_OUTER_SENS).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 dpd:u32  8 sens_level:u8  9 sens_len:u8 (words)
/// 10 integ_level:u8  11 integ_len:u8 (words)  12 flags:u32  16 sens_bitmap[..] integ_bitmap[..]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sensitivity {
    /// Protection domain of interpretation.
    pub dpd: u32,
    /// Sensitivity level.
    pub sens_level: u8,
    /// Integrity level.
    pub integ_level: u8,
    /// `SADB_X_SENS_*`.
    pub flags: u32,
    /// Sensitivity bitmap (at most 255 words).
    pub sens_bitmap: Vec<u64>,
    /// Integrity bitmap (at most 255 words).
    pub integ_bitmap: Vec<u64>,
}

impl Sensitivity {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let e = || bad_len(t, "short sensitivity extension");
        if b.len() < 16 {
            return Err(e());
        }
        let sens_len = usize::from(byte(b, 9).ok_or_else(e)?);
        let integ_len = usize::from(byte(b, 11).ok_or_else(e)?);
        if b.len() != 16 + 8 * (sens_len + integ_len) {
            return Err(e());
        }
        let words = |from: usize, n: usize| -> Result<Vec<u64>, PfkeyError> {
            (0..n)
                .map(|i| ne64(b, from + 8 * i).ok_or_else(e))
                .collect()
        };
        Ok(Self {
            dpd: ne32(b, 4).ok_or_else(e)?,
            sens_level: byte(b, 8).ok_or_else(e)?,
            integ_level: byte(b, 10).ok_or_else(e)?,
            flags: ne32(b, 12).ok_or_else(e)?,
            sens_bitmap: words(16, sens_len)?,
            integ_bitmap: words(16 + 8 * sens_len, integ_len)?,
        })
    }

    pub(crate) fn emit(&self, t: u16, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        let sl = u8::try_from(self.sens_bitmap.len()).map_err(|_| PfkeyError::too_big())?;
        let il = u8::try_from(self.integ_bitmap.len()).map_err(|_| PfkeyError::too_big())?;
        put_hdr(out, t, 16 + 8 * (usize::from(sl) + usize::from(il)))?;
        put32(out, self.dpd);
        out.extend_from_slice(&[self.sens_level, sl, self.integ_level, il]);
        put32(out, self.flags);
        for w in self.sens_bitmap.iter().chain(&self.integ_bitmap) {
            put64(out, *w);
        }
        Ok(())
    }
}

/// One `sadb_comb` of a PROPOSAL (72 bytes).
///
/// ```text
///  0 auth:u8  1 encrypt:u8  2 flags:u16  4 auth_minbits:u16  6 auth_maxbits:u16
///  8 encrypt_minbits:u16  10 encrypt_maxbits:u16  12 encrypt_saltbits:u8 (2024 pf_key(4P))
/// 13 reserved[3] (0)  16 soft_allocations:u32  20 hard_allocations:u32
/// 24 soft_bytes  32 hard_bytes  40 soft_addtime  48 hard_addtime  56 soft_usetime  64 hard_usetime (u64)
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Comb {
    pub auth: u8,
    pub encrypt: u8,
    pub flags: u16,
    pub auth_minbits: u16,
    pub auth_maxbits: u16,
    pub encrypt_minbits: u16,
    pub encrypt_maxbits: u16,
    pub encrypt_saltbits: u8,
    pub soft_allocations: u32,
    pub hard_allocations: u32,
    pub soft_bytes: u64,
    pub hard_bytes: u64,
    pub soft_addtime: u64,
    pub hard_addtime: u64,
    pub soft_usetime: u64,
    pub hard_usetime: u64,
}

impl Comb {
    /// Wire size.
    pub const LEN: usize = 72;

    fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let e = || bad_len(t, "short combination");
        if !all_zero(b.get(13..16).ok_or_else(e)?) {
            return Err(malformed(t, "combination reserved bytes not zero"));
        }
        Ok(Self {
            auth: byte(b, 0).ok_or_else(e)?,
            encrypt: byte(b, 1).ok_or_else(e)?,
            flags: ne16(b, 2).ok_or_else(e)?,
            auth_minbits: ne16(b, 4).ok_or_else(e)?,
            auth_maxbits: ne16(b, 6).ok_or_else(e)?,
            encrypt_minbits: ne16(b, 8).ok_or_else(e)?,
            encrypt_maxbits: ne16(b, 10).ok_or_else(e)?,
            encrypt_saltbits: byte(b, 12).ok_or_else(e)?,
            soft_allocations: ne32(b, 16).ok_or_else(e)?,
            hard_allocations: ne32(b, 20).ok_or_else(e)?,
            soft_bytes: ne64(b, 24).ok_or_else(e)?,
            hard_bytes: ne64(b, 32).ok_or_else(e)?,
            soft_addtime: ne64(b, 40).ok_or_else(e)?,
            hard_addtime: ne64(b, 48).ok_or_else(e)?,
            soft_usetime: ne64(b, 56).ok_or_else(e)?,
            hard_usetime: ne64(b, 64).ok_or_else(e)?,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.auth, self.encrypt]);
        put16(out, self.flags);
        put16(out, self.auth_minbits);
        put16(out, self.auth_maxbits);
        put16(out, self.encrypt_minbits);
        put16(out, self.encrypt_maxbits);
        out.push(self.encrypt_saltbits);
        put_zeros(out, 3);
        put32(out, self.soft_allocations);
        put32(out, self.hard_allocations);
        for v in [
            self.soft_bytes,
            self.hard_bytes,
            self.soft_addtime,
            self.hard_addtime,
            self.soft_usetime,
            self.hard_usetime,
        ] {
            put64(out, v);
        }
    }
}

/// `sadb_prop` followed by `sadb_comb`s (PROPOSAL).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 replay:u8  5 reserved[3] (0)  8 comb[..]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proposal {
    /// Replay window the kernel would like.
    pub replay: u8,
    /// Combinations in order of preference.
    pub combs: Vec<Comb>,
}

impl Proposal {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let e = || bad_len(t, "short proposal");
        if b.len() < 8 || (b.len() - 8) % Comb::LEN != 0 {
            return Err(e());
        }
        if !all_zero(b.get(5..8).ok_or_else(e)?) {
            return Err(malformed(t, "proposal reserved bytes not zero"));
        }
        let combs = b
            .get(8..)
            .ok_or_else(e)?
            .chunks_exact(Comb::LEN)
            .map(|c| Comb::parse(t, c))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            replay: byte(b, 4).ok_or_else(e)?,
            combs,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        let total = self
            .combs
            .len()
            .checked_mul(Comb::LEN)
            .and_then(|n| n.checked_add(8))
            .ok_or_else(PfkeyError::too_big)?;
        put_hdr(out, SADB_EXT_PROPOSAL, total)?;
        out.push(self.replay);
        put_zeros(out, 3);
        for c in &self.combs {
            c.emit(out);
        }
        Ok(())
    }
}

/// `sadb_x_algdesc` (8 bytes) of an extended combination.
///
/// ```text
///  0 satype:u8  1 algtype:u8  2 alg:u8  3 saltbits:u8 (Solaris reuses `reserved`)
///  4 minbits:u16  6 maxbits:u16
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct AlgDesc {
    pub satype: u8,
    pub algtype: u8,
    pub alg: u8,
    pub saltbits: u8,
    pub minbits: u16,
    pub maxbits: u16,
}

/// `sadb_x_ecomb` (64 bytes) and its algorithm descriptors.
///
/// ```text
///  0 numalgs:u8  1 reserved:u8 (0)  2 flags:u16  4 reserved2:u32 (0)
///  8 soft_allocations:u32  12 hard_allocations:u32  16 soft_bytes  24 hard_bytes
/// 32 soft_addtime  40 hard_addtime  48 soft_usetime  56 hard_usetime (u64)  64 algdesc[numalgs]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct EComb {
    pub flags: u16,
    pub soft_allocations: u32,
    pub hard_allocations: u32,
    pub soft_bytes: u64,
    pub hard_bytes: u64,
    pub soft_addtime: u64,
    pub hard_addtime: u64,
    pub soft_usetime: u64,
    pub hard_usetime: u64,
    /// At most 255 descriptors.
    pub algs: Vec<AlgDesc>,
}

/// `sadb_prop` with `numecombs` followed by extended combinations (X_EPROP).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 replay:u8  5 ereserved:u8 (0)  6 numecombs:u16  8 ecomb[..]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EProp {
    /// Replay window the kernel would like.
    pub replay: u8,
    /// Extended combinations.
    pub ecombs: Vec<EComb>,
}

impl EProp {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let e = || bad_len(t, "extended proposal does not fill its extension");
        if b.len() < 8 {
            return Err(e());
        }
        if byte(b, 5).ok_or_else(e)? != 0 {
            return Err(malformed(t, "extended proposal reserved byte not zero"));
        }
        let n = ne16(b, 6).ok_or_else(e)?;
        let mut off = 8usize;
        let mut ecombs = Vec::new();
        for _ in 0..n {
            let c = b.get(off..off + 64).ok_or_else(e)?;
            if byte(c, 1).ok_or_else(e)? != 0 || ne32(c, 4).ok_or_else(e)? != 0 {
                return Err(malformed(t, "extended combination reserved field not zero"));
            }
            let numalgs = usize::from(byte(c, 0).ok_or_else(e)?);
            off += 64;
            let mut algs = Vec::with_capacity(numalgs);
            for _ in 0..numalgs {
                let d = b.get(off..off + 8).ok_or_else(e)?;
                algs.push(AlgDesc {
                    satype: byte(d, 0).ok_or_else(e)?,
                    algtype: byte(d, 1).ok_or_else(e)?,
                    alg: byte(d, 2).ok_or_else(e)?,
                    saltbits: byte(d, 3).ok_or_else(e)?,
                    minbits: ne16(d, 4).ok_or_else(e)?,
                    maxbits: ne16(d, 6).ok_or_else(e)?,
                });
                off += 8;
            }
            ecombs.push(EComb {
                flags: ne16(c, 2).ok_or_else(e)?,
                soft_allocations: ne32(c, 8).ok_or_else(e)?,
                hard_allocations: ne32(c, 12).ok_or_else(e)?,
                soft_bytes: ne64(c, 16).ok_or_else(e)?,
                hard_bytes: ne64(c, 24).ok_or_else(e)?,
                soft_addtime: ne64(c, 32).ok_or_else(e)?,
                hard_addtime: ne64(c, 40).ok_or_else(e)?,
                soft_usetime: ne64(c, 48).ok_or_else(e)?,
                hard_usetime: ne64(c, 56).ok_or_else(e)?,
                algs,
            });
        }
        if off != b.len() {
            return Err(e());
        }
        Ok(Self {
            replay: byte(b, 4).ok_or_else(e)?,
            ecombs,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        let n = u16::try_from(self.ecombs.len()).map_err(|_| PfkeyError::too_big())?;
        let mut total = 8usize;
        for c in &self.ecombs {
            if c.algs.len() > 255 {
                return Err(PfkeyError::too_big());
            }
            total = total.saturating_add(64 + 8 * c.algs.len());
        }
        put_hdr(out, SADB_X_EXT_EPROP, total)?;
        out.extend_from_slice(&[self.replay, 0]);
        put16(out, n);
        for c in &self.ecombs {
            out.extend_from_slice(&[c.algs.len() as u8, 0]);
            put16(out, c.flags);
            put32(out, 0);
            put32(out, c.soft_allocations);
            put32(out, c.hard_allocations);
            for v in [
                c.soft_bytes,
                c.hard_bytes,
                c.soft_addtime,
                c.hard_addtime,
                c.soft_usetime,
                c.hard_usetime,
            ] {
                put64(out, v);
            }
            for d in &c.algs {
                out.extend_from_slice(&[d.satype, d.algtype, d.alg, d.saltbits]);
                put16(out, d.minbits);
                put16(out, d.maxbits);
            }
        }
        Ok(())
    }
}

/// One `sadb_alg` of a SUPPORTED extension (8 bytes).
///
/// ```text
///  0 id:u8  1 ivlen:u8 (bits)  2 minbits:u16  4 maxbits:u16  6 increment:u8  7 saltbits:u8
/// ```
/// (`increment` and `saltbits` are Solaris' use of RFC 2367's `sadb_alg_reserved`.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Alg {
    pub id: u8,
    pub ivlen: u8,
    pub minbits: u16,
    pub maxbits: u16,
    pub increment: u8,
    pub saltbits: u8,
}

/// `sadb_supported` followed by `sadb_alg`s (SUPPORTED_AUTH, SUPPORTED_ENCRYPT).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 reserved:u32 (0)  8 alg[..]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Supported {
    /// The algorithms.
    pub algs: Vec<Alg>,
}

impl Supported {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let e = || {
            bad_len(
                t,
                "supported-algorithms extension not a whole number of entries",
            )
        };
        if b.len() < 8 || (b.len() - 8) % 8 != 0 {
            return Err(e());
        }
        if ne32(b, 4).ok_or_else(e)? != 0 {
            return Err(malformed(t, "supported reserved field not zero"));
        }
        let algs = b
            .get(8..)
            .ok_or_else(e)?
            .chunks_exact(8)
            .map(|a| {
                Ok(Alg {
                    id: byte(a, 0).ok_or_else(e)?,
                    ivlen: byte(a, 1).ok_or_else(e)?,
                    minbits: ne16(a, 2).ok_or_else(e)?,
                    maxbits: ne16(a, 4).ok_or_else(e)?,
                    increment: byte(a, 6).ok_or_else(e)?,
                    saltbits: byte(a, 7).ok_or_else(e)?,
                })
            })
            .collect::<Result<_, PfkeyError>>()?;
        Ok(Self { algs })
    }

    pub(crate) fn emit(&self, t: u16, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        put_hdr(out, t, self.algs.len().saturating_mul(8).saturating_add(8))?;
        put32(out, 0);
        for a in &self.algs {
            out.extend_from_slice(&[a.id, a.ivlen]);
            put16(out, a.minbits);
            put16(out, a.maxbits);
            out.extend_from_slice(&[a.increment, a.saltbits]);
        }
        Ok(())
    }
}

/// `sadb_spirange` (16 bytes). Solaris keeps both bounds in network byte order.
///
/// ```text
///  0 len:u16  2 exttype:u16  4 min:u32 (net)  8 max:u32 (net)  12 reserved:u32 (0)
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpiRange {
    /// Lowest acceptable SPI.
    pub min: u32,
    /// Highest acceptable SPI (≥ `min`).
    pub max: u32,
}

impl SpiRange {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, 16)?;
        let e = || malformed(t, "short SPI range");
        if ne32(b, 12).ok_or_else(e)? != 0 {
            return Err(malformed(t, "SPI range reserved field not zero"));
        }
        let r = Self {
            min: be32(b, 4).ok_or_else(e)?,
            max: be32(b, 8).ok_or_else(e)?,
        };
        if r.min > r.max {
            return Err(malformed(t, "SPI range minimum above maximum"));
        }
        Ok(r)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        if self.min > self.max {
            return Err(malformed(
                SADB_EXT_SPIRANGE,
                "SPI range minimum above maximum",
            ));
        }
        put_hdr(out, SADB_EXT_SPIRANGE, 16)?;
        out.extend_from_slice(&self.min.to_be_bytes());
        out.extend_from_slice(&self.max.to_be_bytes());
        put32(out, 0);
        Ok(())
    }
}

/// `sadb_x_ereg`: a 0-terminated list of SA types (X_EREG).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 satypes[..] 0 pad (0)
/// ```
/// `satypes` must not contain 0. A list that fills its extension exactly needs no terminator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ereg {
    /// SA types to register for.
    pub satypes: Vec<u8>,
}

impl Ereg {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        let list = b
            .get(4..)
            .ok_or_else(|| bad_len(t, "short extended register"))?;
        let end = list.iter().position(|x| *x == 0).unwrap_or(list.len());
        let (s, rest) = list.split_at(end);
        if !all_zero(rest) {
            return Err(malformed(t, "bytes after the SA type list not zero"));
        }
        Ok(Self {
            satypes: s.to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        if self.satypes.contains(&0) {
            return Err(PfkeyError::new(
                EINVAL,
                Diagnostic::None,
                "SA type 0 inside an EREG list",
            ));
        }
        put_hdr(out, SADB_X_EXT_EREG, pad8(4 + self.satypes.len() + 1))?;
        out.extend_from_slice(&self.satypes);
        out.push(0);
        pad_out(out);
        Ok(())
    }
}

/// `sadb_x_kmc` (16 bytes, X_KM_COOKIE). The cookie is Solaris' 64-bit `sadb_x_kmc_cookie64`
/// (the 32-bit cookie plus its reserved word, in host order).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 proto:u32  8 cookie:u64
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KmCookie {
    /// `SADB_X_KMP_*`.
    pub proto: u32,
    /// Key-management-specific cookie.
    pub cookie: u64,
}

impl KmCookie {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, 16)?;
        let e = || bad_len(t, "short KM cookie");
        Ok(Self {
            proto: ne32(b, 4).ok_or_else(e)?,
            cookie: ne64(b, 8).ok_or_else(e)?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        put_hdr(out, SADB_X_EXT_KM_COOKIE, 16)?;
        put32(out, self.proto);
        put64(out, self.cookie);
        Ok(())
    }
}

/// `sadb_x_pair` (8 bytes, X_PAIR): the SPI of the paired SA, network order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    /// SPI of the other SA of the pair.
    pub spi: u32,
}

impl Pair {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, 8)?;
        Ok(Self {
            spi: be32(b, 4).ok_or_else(|| bad_len(t, "short pair"))?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        put_hdr(out, SADB_X_EXT_PAIR, 8)?;
        out.extend_from_slice(&self.spi.to_be_bytes());
        Ok(())
    }
}

/// `sadb_x_replay_ctr` (16 bytes, X_REPLAY_VALUE).
///
/// ```text
///  0 len:u16  2 exttype:u16  4 replay32:u32  8 replay64:u64
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayValue {
    /// 32-bit counter (RFC 2401/2406 SAs).
    pub replay32: u32,
    /// 64-bit counter (RFC 4303 ESN SAs).
    pub replay64: u64,
}

impl ReplayValue {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, 16)?;
        let e = || bad_len(t, "short replay value");
        Ok(Self {
            replay32: ne32(b, 4).ok_or_else(e)?,
            replay64: ne64(b, 8).ok_or_else(e)?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        put_hdr(out, SADB_X_EXT_REPLAY_VALUE, 16)?;
        put32(out, self.replay32);
        put64(out, self.replay64);
        Ok(())
    }
}

/// `sadb_x_edump` (16 bytes, X_EDUMP): dump only SAs idle for at least `timeout` seconds.
///
/// ```text
///  0 len:u16  2 exttype:u16  4 reserved:u32 (0)  8 timeout:u64
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Edump {
    /// Idle seconds.
    pub timeout: u64,
}

impl Edump {
    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, 16)?;
        let e = || bad_len(t, "short extended dump");
        if ne32(b, 4).ok_or_else(e)? != 0 {
            return Err(malformed(t, "extended dump reserved field not zero"));
        }
        Ok(Self {
            timeout: ne64(b, 8).ok_or_else(e)?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        put_hdr(out, SADB_X_EXT_EDUMP, 16)?;
        put32(out, 0);
        put64(out, self.timeout);
        Ok(())
    }
}

/// Ironswan's SA options (SADB_X_EXT_IRONSWAN_SA = 240, 24 bytes).
///
/// ```text
///  0 len:u16  2 exttype:u16=240  4 replay_window:u32 (packets, 0..=4096)  8 flags:u32
/// 12 unique_sport:u16 (net)  14 unique_dport:u16 (net)  16 unique_proto:u8  17 reserved[7] (0)
/// ```
/// Flags: `IRONSWAN_SA_ESN` 0x1, `_ALLOW_LEGACY` 0x2, `_NO_COPY_DSCP` 0x4,
/// `_NO_PADDING_CHECK` 0x8, `_UNIQUE_BINDING` 0x10 (the unique fields are valid; they must
/// be zero otherwise). When present, `replay_window` replaces `sadb_sa_replay`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IronswanSa {
    /// Replay window in packets.
    pub replay_window: u32,
    /// `IRONSWAN_SA_*` flags.
    pub flags: u32,
    /// Unique binding: source port.
    pub unique_sport: u16,
    /// Unique binding: destination port.
    pub unique_dport: u16,
    /// Unique binding: protocol.
    pub unique_proto: u8,
}

impl IronswanSa {
    /// Wire size.
    pub const LEN: usize = 24;

    pub(crate) fn parse(t: u16, b: &[u8]) -> Result<Self, PfkeyError> {
        exact(t, b, Self::LEN)?;
        let e = || bad_len(t, "short Ironswan SA extension");
        let v = Self {
            replay_window: ne32(b, 4).ok_or_else(e)?,
            flags: ne32(b, 8).ok_or_else(e)?,
            unique_sport: be16(b, 12).ok_or_else(e)?,
            unique_dport: be16(b, 14).ok_or_else(e)?,
            unique_proto: byte(b, 16).ok_or_else(e)?,
        };
        if v.flags & !IRONSWAN_SA_ALL_FLAGS != 0 {
            return Err(PfkeyError::new(
                EINVAL,
                Diagnostic::BadSaflags,
                "unknown Ironswan SA flag",
            ));
        }
        if !all_zero(b.get(17..24).ok_or_else(e)?) {
            return Err(malformed(t, "Ironswan SA reserved bytes not zero"));
        }
        if v.flags & IRONSWAN_SA_UNIQUE_BINDING == 0
            && (v.unique_sport != 0 || v.unique_dport != 0 || v.unique_proto != 0)
        {
            return Err(malformed(t, "unique binding fields set without the flag"));
        }
        Ok(v)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), PfkeyError> {
        if self.flags & !IRONSWAN_SA_ALL_FLAGS != 0 {
            return Err(PfkeyError::new(
                EINVAL,
                Diagnostic::BadSaflags,
                "unknown Ironswan SA flag",
            ));
        }
        if self.flags & IRONSWAN_SA_UNIQUE_BINDING == 0
            && (self.unique_sport != 0 || self.unique_dport != 0 || self.unique_proto != 0)
        {
            return Err(malformed(
                SADB_X_EXT_IRONSWAN_SA,
                "unique binding fields set without the flag",
            ));
        }
        put_hdr(out, SADB_X_EXT_IRONSWAN_SA, Self::LEN)?;
        put32(out, self.replay_window);
        put32(out, self.flags);
        out.extend_from_slice(&self.unique_sport.to_be_bytes());
        out.extend_from_slice(&self.unique_dport.to_be_bytes());
        out.push(self.unique_proto);
        put_zeros(out, 7);
        Ok(())
    }
}
