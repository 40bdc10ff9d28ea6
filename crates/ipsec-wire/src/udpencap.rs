//! UDP encapsulation of ESP (RFC 3948): telling ESP, IKE and NAT-keepalives apart on port
//! 4500, and building the small fixed pieces.
//!
//! ```text
//! ESP in UDP:        | UDP header | SPI (≠ 0) | Seq | ...ESP...            (§2.1)
//! IKE on port 4500:  | UDP header | 0x00000000 (non-ESP marker) | IKE ... (§2.2)
//! NAT-keepalive:     | UDP header | 0xFF |                                 (§2.3)
//! ```

use core::fmt;

use crate::udp::{UdpPacket, UdpRepr, HEADER_LEN as UDP_HEADER_LEN};
use crate::{bytes, esp, need, Error, Result};

/// The NAT-T port (RFC 3948 §2, RFC 7296 §2.23).
pub const NAT_T_PORT: u16 = 4500;
/// The IKE port.
pub const IKE_PORT: u16 = 500;
/// The non-ESP marker: four zero bytes where an ESP SPI would be.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// Length of the non-ESP marker.
pub const NON_ESP_MARKER_LEN: usize = 4;
/// The single byte of a NAT-keepalive packet.
pub const KEEPALIVE_BYTE: u8 = 0xff;
/// Bytes added by UDP encapsulation of ESP (the UDP header).
pub const ENCAP_OVERHEAD: usize = UDP_HEADER_LEN;

/// What a UDP payload received on the NAT-T port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpEncapPayload<'a> {
    /// A NAT-keepalive (exactly one 0xFF byte); ignore it.
    Keepalive,
    /// An IKE message: the bytes after the non-ESP marker (never empty).
    Ike(&'a [u8]),
    /// An ESP packet, starting with its (non-zero) SPI; at least 8 bytes.
    Esp(&'a [u8]),
}

/// Classifies a UDP payload received on port 4500 (RFC 3948 §2.2-2.3).
///
/// Errors: empty payload, a lone byte other than 0xFF, a marker with nothing after it, or
/// an ESP header shorter than 8 bytes ([`Error::Truncated`]).
pub fn classify(payload: &[u8]) -> Result<UdpEncapPayload<'_>> {
    match payload {
        [] => Err(Error::Truncated),
        [KEEPALIVE_BYTE] => Ok(UdpEncapPayload::Keepalive),
        [0, 0, 0, 0, rest @ ..] => {
            if rest.is_empty() {
                Err(Error::Truncated)
            } else {
                Ok(UdpEncapPayload::Ike(rest))
            }
        }
        p if p.len() >= esp::HEADER_LEN => Ok(UdpEncapPayload::Esp(p)),
        _ => Err(Error::Truncated),
    }
}

/// Classifies the payload of a whole UDP datagram (checked first).
pub fn classify_datagram(datagram: &[u8]) -> Result<UdpEncapPayload<'_>> {
    let p = UdpPacket::new_checked(datagram)?;
    classify(p.payload_ref())
}

/// Writes a NAT-keepalive payload (one 0xFF byte); returns 1.
pub fn emit_keepalive(buf: &mut [u8]) -> Result<usize> {
    need(buf, 1)?;
    bytes::set_u8(buf, 0, KEEPALIVE_BYTE);
    Ok(1)
}

/// Writes the non-ESP marker; returns 4. The IKE message follows it.
pub fn emit_non_esp_marker(buf: &mut [u8]) -> Result<usize> {
    need(buf, NON_ESP_MARKER_LEN)?;
    bytes::set_arr(buf, 0, &NON_ESP_MARKER);
    Ok(NON_ESP_MARKER_LEN)
}

/// Writes a whole NAT-keepalive UDP datagram (header with checksum 0, then 0xFF); returns 9.
pub fn emit_keepalive_datagram(buf: &mut [u8], src_port: u16, dst_port: u16) -> Result<usize> {
    need(buf, UDP_HEADER_LEN + 1)?;
    let repr = UdpRepr {
        src_port,
        dst_port,
        payload_len: 1,
    };
    repr.emit(&mut UdpPacket::new_unchecked(&mut *buf))?;
    emit_keepalive(bytes::tail_mut(buf, UDP_HEADER_LEN))?;
    Ok(UDP_HEADER_LEN + 1)
}

/// Writes the UDP header in front of an ESP packet of `esp_len` bytes, with checksum 0 as
/// RFC 3948 §2.1 recommends for IPv4 (IPv6 callers must call
/// [`UdpPacket::fill_checksum`] afterwards); returns 8.
pub fn emit_esp_udp_header(
    buf: &mut [u8],
    src_port: u16,
    dst_port: u16,
    esp_len: usize,
) -> Result<usize> {
    let repr = UdpRepr {
        src_port,
        dst_port,
        payload_len: esp_len,
    };
    repr.emit(&mut UdpPacket::new_unchecked(buf))?;
    Ok(UDP_HEADER_LEN)
}

impl fmt::Display for UdpEncapPayload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keepalive => f.write_str("NAT-keepalive"),
            Self::Ike(b) => write!(f, "IKE (non-ESP marker), length {}", b.len()),
            Self::Esp(b) => write!(f, "UDP-encap {}", esp::EspPacket::new_unchecked(*b)),
        }
    }
}
