//! IPv6 fixed header (RFC 8200 §3) and, in the re-exported `ext` items, extension headers.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! |                  Source Address (16 bytes)                    |
//! |               Destination Address (16 bytes)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Jumbograms (payload length 0 with a Jumbo Payload option) are not supported: a payload
//! length of 0 means an empty payload.

use core::fmt;
use core::net::Ipv6Addr;

use crate::bytes::{self, set_u16, set_u8, u16_at, u32_at, u8_at};
use crate::ip::{self, UpperLayer};
use crate::{need, Error, Result};

mod ext;

pub use ext::{
    is_extension_header, option, unfragmentable_len, ExtChain, ExtHeader, ExtHeaderInfo,
    ExtHeaderIter, FragmentHeader, FragmentRepr, Ipv6Option, Ipv6OptionIter, RoutingHeader,
    MAX_EXT_HEADERS,
};

/// Byte offsets of the IPv6 fixed header fields.
pub mod field {
    use crate::{Field, Rest};
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Field = 0..4;
    /// Payload length (everything after the fixed header).
    pub const LENGTH: Field = 4..6;
    /// Next header.
    pub const NXT_HDR: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Field = 8..24;
    /// Destination address.
    pub const DST_ADDR: Field = 24..40;
    /// Payload (extension headers and upper layer).
    pub const PAYLOAD: Rest = 40..;
}

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = 40;

/// A zero-copy view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checks (for emit buffers).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps untrusted bytes: version must be 6 and [`check_len`](Self::check_len) must pass.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().is_empty() {
            return Err(Error::Truncated);
        }
        if p.version() != 6 {
            return Err(Error::BadVersion);
        }
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the fixed header and the announced payload length.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.total_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The underlying bytes (the whole buffer).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn word0(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::VER_TC_FLOW.start)
    }

    /// Version (6).
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0) >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        ((self.word0() >> 20) & 0xff) as u8
    }

    /// DSCP (6 bits).
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// ECN (2 bits).
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }

    /// Payload length.
    pub fn payload_len(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Next header (of the fixed header).
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::NXT_HDR)
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        bytes::v6_at(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        bytes::v6_at(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// Fixed header length (40).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// 40 + payload length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The packet bytes up to the total length (clamped to the buffer).
    pub fn packet_bytes(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        bytes::slice(b, 0, self.total_len().min(b.len()))
    }

    /// The payload after the fixed header (`40..40 + payload_len`).
    pub fn payload(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), HEADER_LEN, self.total_len())
    }

    /// Walks the extension header chain (see [`ExtHeaderIter`]).
    pub fn ext_headers(&self) -> ExtHeaderIter<'_> {
        ExtHeaderIter::from_parts(
            self.packet_bytes(),
            self.next_header(),
            HEADER_LEN,
            field::NXT_HDR,
        )
    }

    /// Walks the whole chain and returns where the upper layer (or ESP, or No Next Header,
    /// or the data of a non-first fragment) starts.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        self.check_len()?;
        self.ext_headers().finish()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn set_word0(&mut self, w: u32) {
        bytes::set_u32(self.buffer.as_mut(), field::VER_TC_FLOW.start, w);
    }

    /// Sets the version.
    pub fn set_version(&mut self, v: u8) {
        let w = (self.word0() & 0x0fff_ffff) | (u32::from(v & 0x0f) << 28);
        self.set_word0(w);
    }

    /// Sets the traffic class.
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = (self.word0() & 0xf00f_ffff) | (u32::from(tc) << 20);
        self.set_word0(w);
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, dscp: u8) {
        let ecn = self.ecn();
        self.set_traffic_class((dscp << 2) | ecn);
    }

    /// Sets the ECN (2 bits).
    pub fn set_ecn(&mut self, ecn: u8) {
        let tc = self.traffic_class();
        self.set_traffic_class((tc & 0xfc) | (ecn & 0x03));
    }

    /// Sets the flow label (low 20 bits used).
    pub fn set_flow_label(&mut self, fl: u32) {
        let w = (self.word0() & 0xfff0_0000) | (fl & 0x000f_ffff);
        self.set_word0(w);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        set_u8(self.buffer.as_mut(), field::NXT_HDR, nh);
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, h: u8) {
        set_u8(self.buffer.as_mut(), field::HOP_LIMIT, h);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        bytes::set_arr(self.buffer.as_mut(), field::SRC_ADDR.start, &a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        bytes::set_arr(self.buffer.as_mut(), field::DST_ADDR.start, &a.octets());
    }

    /// Mutable payload (`40..40 + payload_len`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        bytes::slice_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }

    /// Prepares the packet for the AH ICV computation (RFC 4302 §3.3.3.1.2): zeroes traffic
    /// class, flow label and hop limit; in every Hop-by-Hop and Destination Options header
    /// before the first AH, zeroes the data of options whose "may change" bit is set; and for
    /// a Routing header (types 0, 2 and 4) puts the packet in the form it will have at the
    /// final destination ([`RoutingHeader::make_final_view`]). Headers after the first AH
    /// are left alone. Fails on a malformed chain or an unsupported routing header with
    /// segments left.
    pub fn zero_mutable_fields_for_ah(&mut self) -> Result<()> {
        self.check_len()?;
        let chain = ExtChain::parse(self.packet_bytes())?;
        let mut dst = self.dst_addr();
        let end = self.total_len();
        let pkt = bytes::slice_mut(self.buffer.as_mut(), 0, end);
        for h in chain.headers() {
            let hdr_end = h.offset.checked_add(h.len).ok_or(Error::Truncated)?;
            let hdr = pkt.get_mut(h.offset..hdr_end).ok_or(Error::Truncated)?;
            match h.kind {
                ip::protocol::AH => break,
                ip::protocol::HOPOPT | ip::protocol::DSTOPTS => {
                    ExtHeader::new_unchecked(hdr).zero_mutable_options()?;
                }
                ip::protocol::ROUTING => {
                    RoutingHeader::new_checked(hdr)?.make_final_view(&mut dst)?;
                }
                _ => {}
            }
        }
        self.set_traffic_class(0);
        self.set_flow_label(0);
        self.set_hop_limit(0);
        self.set_dst_addr(dst);
        Ok(())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload with the lifetime of the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(u16_at(b, field::LENGTH.start));
        bytes::slice(b, HEADER_LEN, end)
    }
}

/// An owned, validated IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header of the fixed header.
    pub next_header: u8,
    /// Payload length (extension headers included), ≤ 65535.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses the fixed header (version and lengths checked; the chain is not walked).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Self> {
        if packet.as_bytes().is_empty() {
            return Err(Error::Truncated);
        }
        if packet.version() != 6 {
            return Err(Error::BadVersion);
        }
        packet.check_len()?;
        Ok(Self {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// 40.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// 40 + payload length.
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the fixed header. Errors: buffer < 40 ([`Error::Truncated`]), payload length
    /// over 65535 ([`Error::BadTotalLength`]), flow label over 20 bits ([`Error::Malformed`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) -> Result<()> {
        need(packet.as_bytes(), HEADER_LEN)?;
        let pl = u16::try_from(self.payload_len).map_err(|_| Error::BadTotalLength)?;
        if self.flow_label > 0x000f_ffff {
            return Err(Error::Malformed);
        }
        packet.set_word0((6u32 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label);
        packet.set_payload_len(pl);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv6Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "IP6 [{e}]");
        }
        write!(f, "IP6 {} > {}: ", self.src_addr(), self.dst_addr())?;
        let mut it = self.ext_headers();
        for h in &mut it {
            match h {
                Ok(h) => {
                    ext::fmt_ext(f, self.packet_bytes(), &h)?;
                    f.write_str(" ")?;
                }
                Err(e) => write!(f, "[{e}] ")?,
            }
        }
        if let Some(u) = it.upper_layer() {
            ip::fmt_protocol(f, u.protocol)?;
            if u.non_first_fragment {
                f.write_str(" (non-first fragment)")?;
            }
        }
        write!(
            f,
            ", payload length {}, hlim {}",
            self.payload_len(),
            self.hop_limit()
        )?;
        if self.traffic_class() != 0 {
            write!(f, ", class 0x{:02x}", self.traffic_class())?;
        }
        if self.flow_label() != 0 {
            write!(f, ", flowlabel 0x{:05x}", self.flow_label())?;
        }
        Ok(())
    }
}

impl fmt::Display for Ipv6Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPv6 {} > {}: ", self.src_addr, self.dst_addr)?;
        ip::fmt_protocol(f, self.next_header)?;
        write!(f, ", payload {}, hlim {}", self.payload_len, self.hop_limit)
    }
}
