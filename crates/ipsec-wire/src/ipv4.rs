//! IPv4 header (RFC 791) with options, and the AH mutability rules (RFC 4302 §3.3.3.1.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options (0..40 bytes)                      |
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use crate::bytes::{self, set_u16, set_u8, u16_at, u8_at};
use crate::{checksum, ip, need, Error, Result};

/// Byte offsets of the IPv4 header fields.
pub mod field {
    use crate::{Field, Rest};
    /// Version (high nibble) and IHL (low nibble, in 32-bit words).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits), the old TOS byte.
    pub const DSCP_ECN: usize = 1;
    /// Total length in bytes, header included.
    pub const LENGTH: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..6;
    /// Flags (3 bits: reserved, DF, MF) and fragment offset (13 bits, 8-byte units).
    pub const FLG_OFF: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC_ADDR: Field = 12..16;
    /// Destination address.
    pub const DST_ADDR: Field = 16..20;
    /// Options, up to the header length.
    pub const OPTIONS: Rest = 20..;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Maximum IPv4 header length (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Maximum length of the options area.
pub const MAX_OPTIONS_LEN: usize = 40;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// IPv4 option type values (the whole type byte: copied flag, class, number).
pub mod option {
    /// End of Option List.
    pub const EOL: u8 = 0;
    /// No Operation.
    pub const NOP: u8 = 1;
    /// Record Route.
    pub const RR: u8 = 7;
    /// MTU Probe (obsolete).
    pub const MTUP: u8 = 11;
    /// MTU Reply (obsolete).
    pub const MTUR: u8 = 12;
    /// Internet Timestamp.
    pub const TS: u8 = 68;
    /// Traceroute (RFC 1393).
    pub const TR: u8 = 82;
    /// Basic Security (RFC 1108).
    pub const SEC: u8 = 130;
    /// Loose Source and Record Route.
    pub const LSRR: u8 = 131;
    /// Extended Security (RFC 1108).
    pub const ESEC: u8 = 133;
    /// Commercial Security (CIPSO).
    pub const CIPSO: u8 = 134;
    /// Stream ID (obsolete).
    pub const SID: u8 = 136;
    /// Strict Source and Record Route.
    pub const SSRR: u8 = 137;
    /// Router Alert (RFC 2113).
    pub const RA: u8 = 148;
    /// Sender Directed Multi-Destination Delivery (RFC 1770).
    pub const SDMDD: u8 = 149;
}

/// Whether an IPv4 option must be zeroed (as a whole: type, length and data) for the AH ICV
/// computation, per RFC 4302 §3.3.3.1.1.2 and Appendix A.1.
///
/// Immutable (included in the ICV): End of Options List, No Operation, Security, Extended
/// Security, Commercial Security, Router Alert, Sender Directed Multi-Destination Delivery.
/// Everything else — the mutable ones (LSRR, SSRR, RR, Timestamp, Traceroute), the
/// experimental/superseded ones, and any unknown option — is treated as mutable.
pub const fn option_is_mutable(kind: u8) -> bool {
    !matches!(
        kind,
        option::EOL
            | option::NOP
            | option::SEC
            | option::ESEC
            | option::CIPSO
            | option::RA
            | option::SDMDD
    )
}

/// Short name of an option type for printing.
pub fn option_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        option::EOL => "EOL",
        option::NOP => "NOP",
        option::RR => "RR",
        option::MTUP => "MTUP",
        option::MTUR => "MTUR",
        option::TS => "TS",
        option::TR => "TR",
        option::SEC => "SEC",
        option::LSRR => "LSRR",
        option::ESEC => "ESEC",
        option::CIPSO => "CIPSO",
        option::SID => "SID",
        option::SSRR => "SSRR",
        option::RA => "RA",
        option::SDMDD => "SDMDD",
        _ => return None,
    })
}

/// One IPv4 option found by [`Ipv4OptionIter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Option<'a> {
    /// Option type byte.
    pub kind: u8,
    /// Offset of the type byte from the start of the options area (header byte 20).
    pub offset: usize,
    /// Total length of the option in bytes (1 for EOL and NOP).
    pub len: usize,
    /// Option data after the type and length bytes (empty for EOL and NOP).
    pub data: &'a [u8],
}

impl Ipv4Option<'_> {
    /// The copied-on-fragmentation flag.
    pub const fn copied(&self) -> bool {
        self.kind & 0x80 != 0
    }
    /// The option class (0 control, 2 debugging and measurement).
    pub const fn class(&self) -> u8 {
        (self.kind >> 5) & 0x03
    }
    /// The option number (low 5 bits).
    pub const fn number(&self) -> u8 {
        self.kind & 0x1f
    }
    /// See [`option_is_mutable`].
    pub const fn is_mutable(&self) -> bool {
        option_is_mutable(self.kind)
    }
}

/// Iterator over the options area of an IPv4 header.
///
/// Yields `Err(Error::BadOption)` once (then stops) for an option whose length byte is
/// missing, below 2 or runs past the options area. Stops after End of Option List (which is
/// yielded). Each step consumes at least one byte, so it ends after at most 40 items.
#[derive(Debug, Clone)]
pub struct Ipv4OptionIter<'a> {
    opts: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Ipv4OptionIter<'a> {
    /// Iterates over a raw options area (the bytes after the fixed 20-byte header).
    pub const fn new(opts: &'a [u8]) -> Self {
        Self {
            opts,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Ipv4OptionIter<'a> {
    type Item = Result<Ipv4Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let pos = self.pos;
        let Some(&kind) = self.opts.get(pos) else {
            self.done = true;
            return None;
        };
        let single = Some(Ok(Ipv4Option {
            kind,
            offset: pos,
            len: 1,
            data: &[][..],
        }));
        match kind {
            option::EOL => {
                self.done = true;
                single
            }
            option::NOP => {
                self.pos = pos.saturating_add(1);
                single
            }
            _ => {
                let len = self
                    .opts
                    .get(pos.saturating_add(1))
                    .map(|&l| usize::from(l));
                let end = len.filter(|&l| l >= 2).and_then(|l| pos.checked_add(l));
                match end.and_then(|end| self.opts.get(pos + 2..end).map(|d| (end, d))) {
                    Some((end, data)) => {
                        self.pos = end;
                        Some(Ok(Ipv4Option {
                            kind,
                            offset: pos,
                            len: end - pos,
                            data,
                        }))
                    }
                    None => {
                        self.done = true;
                        Some(Err(Error::BadOption))
                    }
                }
            }
        }
    }
}

/// Validates a whole options area: every option well formed.
pub fn check_options(opts: &[u8]) -> Result<()> {
    if opts.len() > MAX_OPTIONS_LEN {
        return Err(Error::BadOption);
    }
    for o in Ipv4OptionIter::new(opts) {
        o?;
    }
    Ok(())
}

/// A zero-copy view of an IPv4 header and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without any check (use for emit buffers).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps untrusted bytes: version must be 4 and [`check_len`](Self::check_len) must pass.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().is_empty() {
            return Err(Error::Truncated);
        }
        if p.version() != 4 {
            return Err(Error::BadVersion);
        }
        p.check_len()?;
        Ok(p)
    }

    /// Checks lengths: buffer ≥ 20, IHL ≥ 5 ([`Error::BadHeaderLength`]), buffer ≥ IHL,
    /// total length ≥ IHL ([`Error::BadTotalLength`]) and buffer ≥ total length. The buffer may
    /// be longer than the total length (link-layer padding); [`payload`](Self::payload) stops
    /// at the total length.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if len < hl {
            return Err(Error::Truncated);
        }
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(Error::BadTotalLength);
        }
        if len < tl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The underlying bytes (the whole buffer, possibly past the total length).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// Header length in bytes (IHL × 4), 0..=60.
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.buffer.as_ref(), field::VER_IHL) & 0x0f) * 4
    }

    /// The TOS byte (DSCP << 2 | ECN).
    pub fn tos(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::DSCP_ECN)
    }

    /// Differentiated Services Code Point (6 bits).
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// Explicit Congestion Notification (2 bits).
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// Total length (header + payload) in bytes.
    pub fn total_len(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::IDENT.start)
    }

    fn flg_off(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    /// The reserved (evil) flag bit.
    pub fn reserved_flag(&self) -> bool {
        self.flg_off() & FLAG_RESERVED != 0
    }

    /// Don't Fragment.
    pub fn dont_frag(&self) -> bool {
        self.flg_off() & FLAG_DF != 0
    }

    /// More Fragments.
    pub fn more_frags(&self) -> bool {
        self.flg_off() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the 13-bit field × 8).
    pub fn frag_offset(&self) -> u16 {
        (self.flg_off() & OFFSET_MASK) << 3
    }

    /// True for any fragment (MF set or non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::TTL)
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::PROTOCOL)
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        bytes::v4_at(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        bytes::v4_at(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// The header bytes (`0..header_len`).
    pub fn header(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), 0, self.header_len())
    }

    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        let hl = self.header_len();
        hl >= HEADER_LEN && self.buffer.as_ref().len() >= hl && checksum::verify(self.header())
    }

    /// The raw options area (`20..header_len`).
    pub fn options(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), HEADER_LEN, self.header_len())
    }

    /// Iterates over the options.
    pub fn option_iter(&self) -> Ipv4OptionIter<'_> {
        Ipv4OptionIter::new(self.options())
    }

    /// The payload (`header_len..total_len`).
    pub fn payload(&self) -> &[u8] {
        bytes::slice(
            self.buffer.as_ref(),
            self.header_len(),
            usize::from(self.total_len()),
        )
    }

    /// The destination the packet will have on arrival: with a Loose or Strict Source Route
    /// option whose route is not yet exhausted, the last address of the route; otherwise the
    /// destination address. AH computes its ICV over this value (RFC 4302 §3.3.3.1.1.1).
    pub fn final_dst_addr(&self) -> Result<Ipv4Addr> {
        let mut found: Option<Ipv4Addr> = None;
        let mut seen = false;
        for o in self.option_iter() {
            let o = o?;
            if o.kind != option::LSRR && o.kind != option::SSRR {
                continue;
            }
            if seen {
                return Err(Error::BadOption);
            }
            seen = true;
            let (&pointer, route) = o.data.split_first().ok_or(Error::BadOption)?;
            if route.is_empty() || route.len() % 4 != 0 {
                return Err(Error::BadOption);
            }
            if usize::from(pointer) <= o.len {
                let last = route.len() - 4;
                found = Some(bytes::v4_at(route, last));
            }
        }
        Ok(found.unwrap_or_else(|| self.dst_addr()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    pub fn set_version(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        let old = u8_at(b, field::VER_IHL);
        set_u8(b, field::VER_IHL, (old & 0x0f) | (v << 4));
    }

    /// Sets the header length in bytes (rounded down to 4, at most 60).
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        let old = u8_at(b, field::VER_IHL);
        let ihl = u8::try_from((len / 4).min(15)).unwrap_or(15);
        set_u8(b, field::VER_IHL, (old & 0xf0) | ihl);
    }

    /// Sets the TOS byte.
    pub fn set_tos(&mut self, tos: u8) {
        set_u8(self.buffer.as_mut(), field::DSCP_ECN, tos);
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, dscp: u8) {
        let ecn = self.ecn();
        self.set_tos((dscp << 2) | ecn);
    }

    /// Sets the ECN (2 bits).
    pub fn set_ecn(&mut self, ecn: u8) {
        let tos = self.tos();
        self.set_tos((tos & 0xfc) | (ecn & 0x03));
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, id: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT.start, id);
    }

    fn set_flg_off(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, v);
    }

    /// Clears all flags, keeping the fragment offset.
    pub fn clear_flags(&mut self) {
        let v = self.flg_off() & OFFSET_MASK;
        self.set_flg_off(v);
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flg_off();
        self.set_flg_off(if on { v | FLAG_DF } else { v & !FLAG_DF });
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flg_off();
        self.set_flg_off(if on { v | FLAG_MF } else { v & !FLAG_MF });
    }

    /// Sets the fragment offset in bytes (must be a multiple of 8; low bits are dropped).
    pub fn set_frag_offset(&mut self, off: u16) {
        let v = self.flg_off() & !OFFSET_MASK;
        self.set_flg_off(v | (off >> 3));
    }

    /// Sets the TTL.
    pub fn set_ttl(&mut self, ttl: u8) {
        set_u8(self.buffer.as_mut(), field::TTL, ttl);
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, p: u8) {
        set_u8(self.buffer.as_mut(), field::PROTOCOL, p);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        bytes::set_arr(self.buffer.as_mut(), field::SRC_ADDR.start, &a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        bytes::set_arr(self.buffer.as_mut(), field::DST_ADDR.start, &a.octets());
    }

    /// Computes and stores the header checksum over `0..header_len` (clamped to the buffer).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len().min(self.buffer.as_ref().len());
        let c = checksum::checksum(bytes::slice(self.buffer.as_ref(), 0, hl));
        self.set_checksum(c);
    }

    /// Mutable options area.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        bytes::slice_mut(self.buffer.as_mut(), HEADER_LEN, hl)
    }

    /// Mutable payload (`header_len..total_len`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let tl = usize::from(self.total_len());
        bytes::slice_mut(self.buffer.as_mut(), hl, tl)
    }

    /// Zeroes every mutable option as a whole (type, length and data), per
    /// [`option_is_mutable`]. Fails without changing anything if the options are malformed.
    pub fn zero_mutable_options(&mut self) -> Result<()> {
        let mut copy = [0u8; MAX_OPTIONS_LEN];
        let opts = self.options();
        let n = opts.len().min(MAX_OPTIONS_LEN);
        copy[..n].copy_from_slice(&opts[..n]);
        check_options(&copy[..n])?;
        let area = self.options_mut();
        for o in Ipv4OptionIter::new(&copy[..n]).flatten() {
            if o.is_mutable() {
                let end = o.offset.saturating_add(o.len);
                if let Some(s) = area.get_mut(o.offset..end) {
                    s.fill(0);
                }
            }
        }
        Ok(())
    }

    /// Prepares the header for the AH ICV computation (RFC 4302 §3.3.3.1.1): zeroes TOS,
    /// flags, fragment offset, TTL and checksum, zeroes mutable options, and sets the
    /// destination to [`final_dst_addr`](Ipv4Packet::final_dst_addr).
    pub fn zero_mutable_fields_for_ah(&mut self) -> Result<()> {
        let dst = self.final_dst_addr()?;
        self.zero_mutable_options()?;
        self.set_tos(0);
        self.set_flg_off(0);
        self.set_ttl(0);
        self.set_checksum(0);
        self.set_dst_addr(dst);
        Ok(())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload with the lifetime of the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        let hl = usize::from(u8_at(b, 0) & 0x0f) * 4;
        bytes::slice(b, hl, usize::from(u16_at(b, field::LENGTH.start)))
    }
}

/// The options of an [`Ipv4Repr`], held in a fixed 40-byte array.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Options {
    bytes: [u8; MAX_OPTIONS_LEN],
    len: u8,
}

impl Ipv4Options {
    /// No options.
    pub const EMPTY: Self = Self {
        bytes: [0; MAX_OPTIONS_LEN],
        len: 0,
    };

    /// Copies an options area: at most 40 bytes, a multiple of 4, all options well formed.
    pub fn new(opts: &[u8]) -> Result<Self> {
        if opts.len() % 4 != 0 {
            return Err(Error::BadOption);
        }
        check_options(opts)?;
        let mut bytes = [0u8; MAX_OPTIONS_LEN];
        bytes
            .get_mut(..opts.len())
            .ok_or(Error::BadOption)?
            .copy_from_slice(opts);
        let len = u8::try_from(opts.len()).map_err(|_| Error::BadOption)?;
        Ok(Self { bytes, len })
    }

    /// The option bytes.
    pub fn as_bytes(&self) -> &[u8] {
        bytes::slice(&self.bytes, 0, usize::from(self.len))
    }

    /// Length in bytes (a multiple of 4).
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True when there are no options.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterates over the options.
    pub fn iter(&self) -> Ipv4OptionIter<'_> {
        Ipv4OptionIter::new(self.as_bytes())
    }
}

impl Default for Ipv4Options {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl fmt::Debug for Ipv4Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ipv4Options(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// An owned, validated IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Payload length in bytes (total length − header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// TOS byte (DSCP << 2 | ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (multiple of 8, ≤ 65528).
    pub frag_offset: u16,
    /// Options (empty for a 20-byte header).
    pub options: Ipv4Options,
}

impl Ipv4Repr {
    /// Parses and validates a header, verifying the checksum ([`Error::BadChecksum`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Self> {
        let r = Self::parse_ignoring_checksum(packet)?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(r)
    }

    /// Like [`parse`](Self::parse) but does not verify the checksum.
    pub fn parse_ignoring_checksum<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Self> {
        if packet.as_bytes().is_empty() {
            return Err(Error::Truncated);
        }
        if packet.version() != 4 {
            return Err(Error::BadVersion);
        }
        packet.check_len()?;
        let options = Ipv4Options::new(packet.options())?;
        let payload_len = usize::from(packet.total_len())
            .checked_sub(packet.header_len())
            .ok_or(Error::BadTotalLength)?;
        Ok(Self {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len,
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options,
        })
    }

    /// Header length in bytes (20 + options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Total length (header + payload).
    pub const fn total_len(&self) -> usize {
        self.buffer_len() + self.payload_len
    }

    /// Writes the header (checksum filled) into the start of `packet`'s buffer. The payload
    /// is not touched. Errors: buffer shorter than [`buffer_len`](Self::buffer_len)
    /// ([`Error::Truncated`]), total length over 65535 ([`Error::BadTotalLength`]), fragment
    /// offset not a multiple of 8 ([`Error::Malformed`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) -> Result<()> {
        let hl = self.buffer_len();
        need(packet.as_bytes(), hl)?;
        let total = u16::try_from(self.total_len()).map_err(|_| Error::BadTotalLength)?;
        if self.frag_offset % 8 != 0 {
            return Err(Error::Malformed);
        }
        packet.set_version(4);
        packet.set_header_len(hl);
        packet.set_tos(self.tos);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_flg_off(0);
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        bytes::set_arr(packet.options_mut(), 0, self.options.as_bytes());
        packet.fill_checksum();
        Ok(())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv4Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "IP [{e}]");
        }
        write!(f, "IP {} > {}: ", self.src_addr(), self.dst_addr())?;
        ip::fmt_protocol(f, self.protocol())?;
        write!(
            f,
            ", length {}, ttl {}, id 0x{:04x}",
            self.total_len(),
            self.ttl(),
            self.ident()
        )?;
        if self.tos() != 0 {
            write!(f, ", tos 0x{:02x}", self.tos())?;
        }
        if self.dont_frag() || self.more_frags() {
            f.write_str(", flags [")?;
            if self.dont_frag() {
                f.write_str("DF")?;
            }
            if self.more_frags() {
                f.write_str(if self.dont_frag() { "+MF" } else { "MF" })?;
            }
            f.write_str("]")?;
        }
        if self.frag_offset() != 0 {
            write!(f, ", offset {}", self.frag_offset())?;
        }
        if !self.options().is_empty() {
            f.write_str(", options (")?;
            for (i, o) in self.option_iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                match o {
                    Ok(o) => match option_name(o.kind) {
                        Some(n) => f.write_str(n)?,
                        None => write!(f, "opt-{}", o.kind)?,
                    },
                    Err(e) => write!(f, "[{e}]")?,
                }
            }
            f.write_str(")")?;
        }
        if !self.verify_checksum() {
            f.write_str(", bad cksum")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ipv4Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPv4 {} > {}: ", self.src_addr, self.dst_addr)?;
        ip::fmt_protocol(f, self.protocol)?;
        write!(f, ", payload {}, ttl {}", self.payload_len, self.ttl)
    }
}
