//! IPv6 extension headers (RFC 8200 §4): the chain walker, Hop-by-Hop / Destination
//! Options with their options, Routing, Fragment, and the ESP/AH insertion point.

use core::fmt;
use core::net::Ipv6Addr;

use crate::bytes::{self, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use crate::ip::protocol::{AH, DSTOPTS, ESP, FRAGMENT, HOPOPT, MOBILITY, ROUTING};
use crate::ip::UpperLayer;
use crate::{need, Error, Result};

/// The most extension headers [`ExtHeaderIter`] will walk before failing with
/// [`Error::TooManyExtensionHeaders`].
pub const MAX_EXT_HEADERS: usize = 32;

/// True for the next-header values the chain walker treats as extension headers with a
/// length: Hop-by-Hop (0), Routing (43), Fragment (44), AH (51), Destination Options (60)
/// and Mobility (135). ESP (50) is an extension header too (RFC 8200 §4) but has no length,
/// so the walker stops there; it is included here.
pub const fn is_extension_header(nh: u8) -> bool {
    matches!(
        nh,
        HOPOPT | ROUTING | FRAGMENT | ESP | AH | DSTOPTS | MOBILITY
    )
}

/// One header found by [`ExtHeaderIter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ExtHeaderInfo {
    /// Header type: the next-header value that announced it (0, 43, 44, 51, 60, 135).
    pub kind: u8,
    /// Offset of the header from the start of the IPv6 packet.
    pub offset: usize,
    /// Length of the header in bytes.
    pub len: usize,
    /// The header's own Next Header field (byte 0 of the header).
    pub next_header: u8,
}

impl ExtHeaderInfo {
    /// Offset just past the header.
    pub const fn end(&self) -> usize {
        self.offset + self.len
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Done(UpperLayer),
    Failed,
}

/// Walks the extension header chain of an IPv6 packet.
///
/// Yields one [`ExtHeaderInfo`] per Hop-by-Hop, Routing, Fragment, Destination Options, AH
/// and Mobility header, in order. It stops (returns `None`) at the first other value — an
/// upper-layer protocol, ESP (which has no length field) or No Next Header (59) — and after
/// a Fragment header with a non-zero offset (what follows is not a header). After the end,
/// [`upper_layer`](Self::upper_layer) tells what was found there.
///
/// Errors are yielded once and end the walk: [`Error::Truncated`] when a header runs past the
/// packet, [`Error::BadExtensionHeader`] for a Hop-by-Hop header not first or an AH shorter
/// than 12 bytes, [`Error::TooManyExtensionHeaders`] past [`MAX_EXT_HEADERS`]. Every header
/// is at least 8 bytes, so offsets strictly increase and the walk can never loop.
#[derive(Debug, Clone)]
pub struct ExtHeaderIter<'a> {
    buf: &'a [u8],
    next: u8,
    offset: usize,
    nh_field: usize,
    count: usize,
    state: State,
}

impl<'a> ExtHeaderIter<'a> {
    /// Walks the chain of a whole IPv6 packet (validates the fixed header first; the walk is
    /// bounded by the payload length, not the buffer).
    pub fn new(packet: &'a [u8]) -> Result<Self> {
        let p = super::Ipv6Packet::new_checked(packet)?;
        Ok(Self::from_parts(
            bytes::slice(packet, 0, p.total_len()),
            p.next_header(),
            super::HEADER_LEN,
            super::field::NXT_HDR,
        ))
    }

    /// Walks `buf` starting at `offset` with the header type `first`, announced by the byte
    /// at `nh_field`. Offsets reported are relative to `buf`.
    pub const fn from_parts(buf: &'a [u8], first: u8, offset: usize, nh_field: usize) -> Self {
        Self {
            buf,
            next: first,
            offset,
            nh_field,
            count: 0,
            state: State::Running,
        }
    }

    /// What follows the last extension header, once the walk has ended without error.
    pub fn upper_layer(&self) -> Option<UpperLayer> {
        match self.state {
            State::Done(u) => Some(u),
            _ => None,
        }
    }

    /// Runs the walk to the end and returns [`upper_layer`](Self::upper_layer) or the error.
    pub fn finish(mut self) -> Result<UpperLayer> {
        for h in &mut self {
            h?;
        }
        self.upper_layer().ok_or(Error::Malformed)
    }

    fn fail(&mut self, e: Error) -> Option<Result<ExtHeaderInfo>> {
        self.state = State::Failed;
        Some(Err(e))
    }

    fn done(&mut self, non_first_fragment: bool) {
        self.state = State::Done(UpperLayer {
            protocol: self.next,
            offset: self.offset,
            nh_field: self.nh_field,
            non_first_fragment,
        });
    }
}

impl Iterator for ExtHeaderIter<'_> {
    type Item = Result<ExtHeaderInfo>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state != State::Running {
            return None;
        }
        let kind = self.next;
        let off = self.offset;
        if !matches!(kind, HOPOPT | ROUTING | FRAGMENT | AH | DSTOPTS | MOBILITY) {
            self.done(false);
            return None;
        }
        if kind == HOPOPT && self.count != 0 {
            return self.fail(Error::BadExtensionHeader);
        }
        if self.count >= MAX_EXT_HEADERS {
            return self.fail(Error::TooManyExtensionHeaders);
        }
        // Next Header and length bytes.
        let (Some(&nh), Some(&raw_len)) = (
            self.buf.get(off),
            off.checked_add(1).and_then(|i| self.buf.get(i)),
        ) else {
            return self.fail(Error::Truncated);
        };
        let raw_len = usize::from(raw_len);
        let len = match kind {
            FRAGMENT => FragmentHeader::<&[u8]>::HEADER_LEN,
            AH => {
                if raw_len < 1 {
                    return self.fail(Error::BadExtensionHeader);
                }
                (raw_len + 2) * 4
            }
            _ => (raw_len + 1) * 8,
        };
        let Some(end) = off.checked_add(len).filter(|&e| e <= self.buf.len()) else {
            return self.fail(Error::Truncated);
        };
        let info = ExtHeaderInfo {
            kind,
            offset: off,
            len,
            next_header: nh,
        };
        self.count += 1;
        self.next = nh;
        self.nh_field = off;
        self.offset = end;
        if kind == FRAGMENT {
            let frag = FragmentHeader::new_unchecked(bytes::slice(self.buf, off, end));
            if frag.frag_offset() != 0 {
                self.done(true);
            }
        }
        Some(Ok(info))
    }
}

/// A fully walked chain in a fixed-capacity array (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtChain {
    headers: [ExtHeaderInfo; MAX_EXT_HEADERS],
    len: usize,
    upper: UpperLayer,
}

impl ExtChain {
    /// Walks the chain of a whole IPv6 packet (see [`ExtHeaderIter::new`]).
    pub fn parse(packet: &[u8]) -> Result<Self> {
        let mut it = ExtHeaderIter::new(packet)?;
        let mut headers = [ExtHeaderInfo::default(); MAX_EXT_HEADERS];
        let mut len = 0;
        for h in &mut it {
            let h = h?;
            let slot = headers.get_mut(len).ok_or(Error::TooManyExtensionHeaders)?;
            *slot = h;
            len += 1;
        }
        let upper = it.upper_layer().ok_or(Error::Malformed)?;
        Ok(Self {
            headers,
            len,
            upper,
        })
    }

    /// The extension headers, in order.
    pub fn headers(&self) -> &[ExtHeaderInfo] {
        self.headers.get(..self.len).unwrap_or(&[])
    }

    /// What follows them.
    pub const fn upper_layer(&self) -> UpperLayer {
        self.upper
    }
}

/// Where ESP or AH must be inserted into an IPv6 packet in transport mode (RFC 4303
/// §3.1.1, RFC 4302 §3.1.1): after the Hop-by-Hop, Routing and Fragment headers and any
/// Destination Options header that precedes a Routing header; before a final Destination
/// Options header, AH/ESP already present, Mobility, and the upper layer.
///
/// Returns `(insert_offset, next_header_field)`: the offset at which to insert the new
/// header, and the offset of the byte that currently holds the next-header value of what is
/// at `insert_offset` (6 in the fixed header, or byte 0 of the last unfragmentable extension
/// header) — the caller copies that value into the new header and patches the byte to 50/51.
pub fn unfragmentable_len(packet: &[u8]) -> Result<(usize, usize)> {
    let mut insert = super::HEADER_LEN;
    let mut nh_field = super::field::NXT_HDR;
    let mut it = ExtHeaderIter::new(packet)?;
    for h in &mut it {
        let h = h?;
        match h.kind {
            HOPOPT | ROUTING | FRAGMENT => {
                insert = h.end();
                nh_field = h.offset;
            }
            // Unfragmentable only if a Routing header follows, which moves `insert` past it.
            DSTOPTS => {}
            _ => break,
        }
    }
    Ok((insert, nh_field))
}

/// IPv6 option types (RFC 8200 §4.2 and IANA "Destination Options and Hop-by-Hop Options").
pub mod option {
    /// Pad1 (a single zero byte, no length).
    pub const PAD1: u8 = 0x00;
    /// PadN.
    pub const PADN: u8 = 0x01;
    /// Tunnel Encapsulation Limit (RFC 2473).
    pub const TUNNEL_LIMIT: u8 = 0x04;
    /// Router Alert (RFC 2711).
    pub const ROUTER_ALERT: u8 = 0x05;
    /// CALIPSO (RFC 5570).
    pub const CALIPSO: u8 = 0x07;
    /// Quick-Start (RFC 4782); may change en route.
    pub const QUICK_START: u8 = 0x26;
    /// RPL option (RFC 6553); may change en route.
    pub const RPL: u8 = 0x63;
    /// Jumbo Payload (RFC 2675).
    pub const JUMBO: u8 = 0xc2;
    /// Home Address (RFC 6275).
    pub const HOME_ADDRESS: u8 = 0xc9;

    /// The "option data may change en route" bit of the option type (RFC 8200 §4.2).
    pub const MAY_CHANGE: u8 = 0x20;
}

/// One option inside a Hop-by-Hop or Destination Options header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Option<'a> {
    /// Option type.
    pub kind: u8,
    /// Offset of the type byte from the start of the extension header.
    pub offset: usize,
    /// Option data (empty for Pad1).
    pub data: &'a [u8],
}

impl Ipv6Option<'_> {
    /// The "may change en route" bit (0x20): when set, AH zeroes the option data for the ICV
    /// (RFC 4302 §3.3.3.1.2.1).
    pub const fn may_change(&self) -> bool {
        self.kind & option::MAY_CHANGE != 0
    }

    /// The action for an unrecognised option (the two high bits, 0..=3).
    pub const fn action(&self) -> u8 {
        self.kind >> 6
    }

    /// Pad1 or PadN.
    pub const fn is_padding(&self) -> bool {
        self.kind == option::PAD1 || self.kind == option::PADN
    }

    /// Total length of the option (1 for Pad1, else 2 + data length).
    pub const fn total_len(&self) -> usize {
        if self.kind == option::PAD1 {
            1
        } else {
            2 + self.data.len()
        }
    }

    /// Offset of the option data from the start of the extension header.
    pub const fn data_offset(&self) -> usize {
        if self.kind == option::PAD1 {
            self.offset + 1
        } else {
            self.offset + 2
        }
    }
}

/// Iterator over the options of a Hop-by-Hop or Destination Options header.
///
/// Yields `Err(Error::BadOption)` once (then stops) for an option whose length byte is
/// missing or whose data runs past the header.
#[derive(Debug, Clone)]
pub struct Ipv6OptionIter<'a> {
    header: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Ipv6OptionIter<'a> {
    /// Iterates over the options of a whole extension header (`header[2..]`).
    pub const fn new(header: &'a [u8]) -> Self {
        Self {
            header,
            pos: 2,
            done: false,
        }
    }
}

impl<'a> Iterator for Ipv6OptionIter<'a> {
    type Item = Result<Ipv6Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let pos = self.pos;
        let Some(&kind) = self.header.get(pos) else {
            self.done = true;
            return None;
        };
        if kind == option::PAD1 {
            self.pos = pos + 1;
            return Some(Ok(Ipv6Option {
                kind,
                offset: pos,
                data: &[],
            }));
        }
        let data = self.header.get(pos + 1).and_then(|&l| {
            let start = pos + 2;
            let end = start + usize::from(l);
            self.header.get(start..end).map(|d| (end, d))
        });
        match data {
            Some((end, data)) => {
                self.pos = end;
                Some(Ok(Ipv6Option {
                    kind,
                    offset: pos,
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

/// Byte offsets shared by the generic extension header layout.
pub mod field {
    use crate::Field;
    /// Next header.
    pub const NXT_HDR: usize = 0;
    /// Header extension length (8-byte units, not counting the first 8).
    pub const LENGTH: usize = 1;
    /// Routing type (Routing header).
    pub const ROUTING_TYPE: usize = 2;
    /// Segments left (Routing header).
    pub const SEG_LEFT: usize = 3;
    /// Type-specific data (Routing header), e.g. Last Entry/Flags/Tag for type 4.
    pub const ROUTING_DATA: Field = 4..8;
    /// First address (Routing header types 0, 2 and 4).
    pub const ADDRESSES: usize = 8;
    /// Reserved byte (Fragment header).
    pub const FRAG_RESERVED: usize = 1;
    /// Fragment offset (13 bits), reserved (2 bits) and M flag (Fragment header).
    pub const FRAG_OFF_M: Field = 2..4;
    /// Identification (Fragment header).
    pub const FRAG_IDENT: Field = 4..8;
}

/// A view of a generic extension header whose length is `(hdr_ext_len + 1) * 8`:
/// Hop-by-Hop, Destination Options, Routing, Mobility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps untrusted bytes after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// The buffer must hold 8 bytes and the announced length.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < 8 || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next header.
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::NXT_HDR)
    }

    /// Raw header extension length.
    pub fn hdr_ext_len(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::LENGTH)
    }

    /// Header length in bytes, `(hdr_ext_len + 1) * 8`.
    pub fn header_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * 8
    }

    /// Bytes after the next-header and length bytes, up to the header length.
    pub fn data(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), 2, self.header_len())
    }

    /// Options (for Hop-by-Hop and Destination Options headers).
    pub fn options(&self) -> Ipv6OptionIter<'_> {
        Ipv6OptionIter::new(bytes::slice(self.buffer.as_ref(), 0, self.header_len()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        set_u8(self.buffer.as_mut(), field::NXT_HDR, nh);
    }

    /// Sets the raw header extension length.
    pub fn set_hdr_ext_len(&mut self, len: u8) {
        set_u8(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Mutable data after the first two bytes.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        bytes::slice_mut(self.buffer.as_mut(), 2, end)
    }

    /// Zeroes the data of every option with the "may change" bit set (RFC 4302
    /// §3.3.3.1.2.1; type and length stay). Fails without changing anything if the options
    /// are malformed.
    pub fn zero_mutable_options(&mut self) -> Result<()> {
        self.check_len()?;
        for o in self.options() {
            o?;
        }
        let hl = self.header_len();
        let buf = bytes::slice_mut(self.buffer.as_mut(), 0, hl);
        let mut pos = 2;
        while let Some(&kind) = buf.get(pos) {
            if kind == option::PAD1 {
                pos += 1;
                continue;
            }
            let end = pos + 2 + usize::from(u8_at(buf, pos + 1));
            if kind & option::MAY_CHANGE != 0 {
                if let Some(d) = buf.get_mut(pos + 2..end) {
                    d.fill(0);
                }
            }
            pos = end;
        }
        Ok(())
    }
}

/// Routing types.
pub mod routing_type {
    /// Type 0 (deprecated by RFC 5095, still parsed).
    pub const TYPE0: u8 = 0;
    /// Type 2, Mobile IPv6 (RFC 6275).
    pub const TYPE2: u8 = 2;
    /// Segment Routing Header (RFC 8754).
    pub const SRH: u8 = 4;
}

/// A view of a Routing header (RFC 8200 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RoutingHeader<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps untrusted bytes after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Length checks, plus for types 0 and 2 the layout: type 0 needs an even
    /// `hdr_ext_len` and `segments_left ≤ addresses`; type 2 needs `hdr_ext_len == 2` and
    /// `segments_left ≤ 1`; type 4 needs `last_entry < addresses` and `segments_left ≤
    /// last_entry + 1` ([`Error::BadExtensionHeader`]).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < 8 || len < self.header_len() {
            return Err(Error::Truncated);
        }
        let slots = usize::from(self.hdr_ext_len()) / 2;
        let sl = usize::from(self.segments_left());
        let ok = match self.routing_type() {
            routing_type::TYPE0 => self.hdr_ext_len() % 2 == 0 && sl <= slots,
            routing_type::TYPE2 => self.hdr_ext_len() == 2 && sl <= 1,
            routing_type::SRH => {
                let last = usize::from(self.last_entry());
                last < slots && sl <= last + 1
            }
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::BadExtensionHeader)
        }
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next header.
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::NXT_HDR)
    }

    /// Raw header extension length.
    pub fn hdr_ext_len(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::LENGTH)
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * 8
    }

    /// Routing type.
    pub fn routing_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::ROUTING_TYPE)
    }

    /// Segments left.
    pub fn segments_left(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::SEG_LEFT)
    }

    /// Last Entry (type 4 only; byte 4).
    pub fn last_entry(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::ROUTING_DATA.start)
    }

    /// Number of addresses: `hdr_ext_len / 2` for types 0 and 2, `last_entry + 1` for
    /// type 4, 0 for other types.
    pub fn num_addresses(&self) -> usize {
        match self.routing_type() {
            routing_type::TYPE0 | routing_type::TYPE2 => usize::from(self.hdr_ext_len()) / 2,
            routing_type::SRH => usize::from(self.last_entry()) + 1,
            _ => 0,
        }
    }

    /// Address `i` (0-based), if present.
    pub fn address(&self, i: usize) -> Option<Ipv6Addr> {
        if i >= self.num_addresses() {
            return None;
        }
        let at = field::ADDRESSES + 16 * i;
        let b = self.buffer.as_ref();
        if at + 16 > self.header_len().min(b.len()) {
            return None;
        }
        Some(bytes::v6_at(b, at))
    }

    /// The final destination when segments remain: the last address for types 0 and 2,
    /// `Segment List[0]` for type 4. `None` when segments left is 0 (the IPv6 destination is
    /// final) or the type is not understood.
    pub fn final_destination(&self) -> Option<Ipv6Addr> {
        if self.segments_left() == 0 {
            return None;
        }
        match self.routing_type() {
            routing_type::TYPE0 | routing_type::TYPE2 => {
                self.address(self.num_addresses().checked_sub(1)?)
            }
            routing_type::SRH => self.address(0),
            _ => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RoutingHeader<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        set_u8(self.buffer.as_mut(), field::NXT_HDR, nh);
    }

    /// Sets the raw header extension length.
    pub fn set_hdr_ext_len(&mut self, len: u8) {
        set_u8(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the routing type.
    pub fn set_routing_type(&mut self, t: u8) {
        set_u8(self.buffer.as_mut(), field::ROUTING_TYPE, t);
    }

    /// Sets segments left.
    pub fn set_segments_left(&mut self, n: u8) {
        set_u8(self.buffer.as_mut(), field::SEG_LEFT, n);
    }

    /// Sets the 4 type-specific bytes (reserved for types 0/2).
    pub fn set_type_data(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::ROUTING_DATA.start, v);
    }

    /// Writes address `i` (ignored if outside the buffer).
    pub fn set_address(&mut self, i: usize, a: Ipv6Addr) {
        if let Some(at) = i
            .checked_mul(16)
            .and_then(|x| x.checked_add(field::ADDRESSES))
        {
            bytes::set_arr(self.buffer.as_mut(), at, &a.octets());
        }
    }

    /// Rewrites the header and `dst` (the packet's destination address) into the form they
    /// will have on arrival at the final destination, as AH needs for its ICV (RFC 4302
    /// §3.3.3.1.2.2 with RFC 8200 §4.4 processing). With `n` addresses and `s` segments left,
    /// every remaining hop swaps the destination with the next address: finally `dst` is the
    /// last address, addresses `n-s..n` become `[old dst, a[n-s], .., a[n-2]]`, and segments
    /// left is 0. For type 4, `dst` becomes `Segment List[0]` and only segments left changes.
    /// Segments left 0: nothing changes. Other types with segments left: error.
    pub fn make_final_view(&mut self, dst: &mut Ipv6Addr) -> Result<()> {
        self.check_len()?;
        let s = usize::from(self.segments_left());
        if s == 0 {
            return Ok(());
        }
        match self.routing_type() {
            routing_type::TYPE0 | routing_type::TYPE2 => {
                let n = self.num_addresses();
                let first = n.checked_sub(s).ok_or(Error::BadExtensionHeader)?;
                let last = self
                    .address(n.checked_sub(1).ok_or(Error::BadExtensionHeader)?)
                    .ok_or(Error::Truncated)?;
                // Shift a[first..n-1] up by one, then put the old dst at `first`.
                let mut i = n - 1;
                while i > first {
                    let a = self.address(i - 1).ok_or(Error::Truncated)?;
                    self.set_address(i, a);
                    i -= 1;
                }
                self.set_address(first, *dst);
                *dst = last;
            }
            routing_type::SRH => {
                *dst = self.address(0).ok_or(Error::Truncated)?;
            }
            _ => return Err(Error::BadExtensionHeader),
        }
        self.set_segments_left(0);
        Ok(())
    }
}

/// A view of a Fragment header (RFC 8200 §4.5), always 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    /// Length of a Fragment header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps untrusted bytes after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// The buffer must hold 8 bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next header (of the first fragmentable header).
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::NXT_HDR)
    }

    /// Reserved byte.
    pub fn reserved(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::FRAG_RESERVED)
    }

    /// Fragment offset in bytes (multiple of 8).
    pub fn frag_offset(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::FRAG_OFF_M.start) & 0xfff8
    }

    /// More Fragments (M) flag.
    pub fn more_frags(&self) -> bool {
        u16_at(self.buffer.as_ref(), field::FRAG_OFF_M.start) & 1 != 0
    }

    /// Identification.
    pub fn ident(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::FRAG_IDENT.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FragmentHeader<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        set_u8(self.buffer.as_mut(), field::NXT_HDR, nh);
    }

    /// Sets the reserved byte.
    pub fn set_reserved(&mut self, r: u8) {
        set_u8(self.buffer.as_mut(), field::FRAG_RESERVED, r);
    }

    /// Sets offset (bytes, low 3 bits dropped) and M flag together.
    pub fn set_offset_and_more(&mut self, offset: u16, more: bool) {
        set_u16(
            self.buffer.as_mut(),
            field::FRAG_OFF_M.start,
            (offset & 0xfff8) | u16::from(more),
        );
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, id: u32) {
        set_u32(self.buffer.as_mut(), field::FRAG_IDENT.start, id);
    }
}

/// An owned Fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentRepr {
    /// Next header.
    pub next_header: u8,
    /// Offset in bytes (multiple of 8).
    pub frag_offset: u16,
    /// More Fragments.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

impl FragmentRepr {
    /// Parses a Fragment header.
    pub fn parse<T: AsRef<[u8]>>(h: &FragmentHeader<T>) -> Result<Self> {
        h.check_len()?;
        Ok(Self {
            next_header: h.next_header(),
            frag_offset: h.frag_offset(),
            more_frags: h.more_frags(),
            ident: h.ident(),
        })
    }

    /// 8.
    pub const fn buffer_len(&self) -> usize {
        8
    }

    /// Writes the header; the offset must be a multiple of 8 ([`Error::Malformed`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut FragmentHeader<T>) -> Result<()> {
        need(h.buffer.as_ref(), 8)?;
        if self.frag_offset % 8 != 0 {
            return Err(Error::Malformed);
        }
        h.set_next_header(self.next_header);
        h.set_reserved(0);
        h.set_offset_and_more(self.frag_offset, self.more_frags);
        h.set_ident(self.ident);
        Ok(())
    }
}

fn fmt_options(f: &mut fmt::Formatter<'_>, hdr: &[u8]) -> fmt::Result {
    let mut first = true;
    for o in Ipv6OptionIter::new(hdr) {
        match o {
            Ok(o) if o.is_padding() => continue,
            Ok(o) => {
                f.write_str(if first { " " } else { "," })?;
                write!(f, "opt-0x{:02x}", o.kind)?;
                if o.may_change() {
                    f.write_str("(chg)")?;
                }
            }
            Err(e) => write!(f, " [{e}]")?,
        }
        first = false;
    }
    Ok(())
}

/// Prints one walked header, e.g. `HBH`, `RT(type 0, segleft 2)`, `FRAG(off 0, id 0x1, +)`.
pub(crate) fn fmt_ext(f: &mut fmt::Formatter<'_>, pkt: &[u8], h: &ExtHeaderInfo) -> fmt::Result {
    let hdr = bytes::slice(pkt, h.offset, h.offset.saturating_add(h.len));
    match h.kind {
        HOPOPT => {
            f.write_str("HBH(")?;
            fmt_options(f, hdr)?;
            f.write_str(")")
        }
        DSTOPTS => {
            f.write_str("DSTOPT(")?;
            fmt_options(f, hdr)?;
            f.write_str(")")
        }
        ROUTING => write!(f, "{}", RoutingHeader::new_unchecked(hdr)),
        FRAGMENT => write!(f, "{}", FragmentHeader::new_unchecked(hdr)),
        AH => write!(f, "{}", crate::ah::AhPacket::new_unchecked(hdr)),
        MOBILITY => write!(f, "MH(type {})", u8_at(hdr, 2)),
        k => write!(f, "EXT-{k}"),
    }
}

impl<T: AsRef<[u8]>> fmt::Display for RoutingHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "RT [{e}]");
        }
        write!(
            f,
            "RT(type {}, segleft {}",
            self.routing_type(),
            self.segments_left()
        )?;
        for i in 0..self.num_addresses() {
            if let Some(a) = self.address(i) {
                write!(f, ", [{i}]{a}")?;
            }
        }
        f.write_str(")")
    }
}

impl<T: AsRef<[u8]>> fmt::Display for FragmentHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "FRAG [{e}]");
        }
        write!(
            f,
            "FRAG(off {}, id 0x{:08x}{})",
            self.frag_offset(),
            self.ident(),
            if self.more_frags() { ", +" } else { "" }
        )
    }
}

impl<T: AsRef<[u8]>> fmt::Display for ExtHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "EXT [{e}]");
        }
        write!(
            f,
            "EXT(len {}, nh {}",
            self.header_len(),
            self.next_header()
        )?;
        fmt_options(f, bytes::slice(self.buffer.as_ref(), 0, self.header_len()))?;
        f.write_str(")")
    }
}
