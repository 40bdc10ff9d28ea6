//! ICMP for IPv4 (RFC 792, RFC 1191 next-hop MTU, RFC 1812 §4.3.2.3 quoting).
//!
//! The view covers the whole ICMP message (the IPv4 payload); the checksum covers all of it.

use core::fmt;
use core::net::Ipv4Addr;

use crate::bytes::{self, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use crate::ipv4::Ipv4Packet;
use crate::{checksum, need, Error, Result};

/// Byte offsets of the ICMP fields.
pub mod field {
    use crate::{Field, Rest};
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Field = 2..4;
    /// Rest of header (4 bytes, meaning depends on the type).
    pub const REST: Field = 4..8;
    /// Echo identifier.
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Field = 6..8;
    /// Parameter problem pointer.
    pub const POINTER: usize = 4;
    /// Redirect gateway address.
    pub const GATEWAY: Field = 4..8;
    /// Next-hop MTU of "fragmentation needed" (RFC 1191).
    pub const MTU: Field = 6..8;
    /// Data: echo payload or the quoted invoking packet.
    pub const DATA: Rest = 8..;
}

/// ICMP header length (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = 8;

/// Largest quote of an invoking packet so that the error fits in 576 bytes
/// (RFC 1812 §4.3.2.3): 576 − 20 (IPv4 header) − 8 (ICMP header).
pub const MAX_QUOTE_LEN: usize = 576 - 20 - HEADER_LEN;

/// ICMP message types.
pub mod message {
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination Unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source Quench (deprecated).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Router Advertisement.
    pub const ROUTER_ADVERT: u8 = 9;
    /// Router Solicitation.
    pub const ROUTER_SOLICIT: u8 = 10;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter Problem.
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp.
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp Reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// Information Request.
    pub const INFO_REQUEST: u8 = 15;
    /// Information Reply.
    pub const INFO_REPLY: u8 = 16;
    /// Address Mask Request.
    pub const MASK_REQUEST: u8 = 17;
    /// Address Mask Reply.
    pub const MASK_REPLY: u8 = 18;
}

/// Destination Unreachable codes.
pub mod unreach {
    /// Net unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set.
    pub const FRAG_NEEDED: u8 = 4;
    /// Source route failed.
    pub const SRC_ROUTE_FAILED: u8 = 5;
    /// Destination network unknown.
    pub const NET_UNKNOWN: u8 = 6;
    /// Destination host unknown.
    pub const HOST_UNKNOWN: u8 = 7;
    /// Source host isolated.
    pub const ISOLATED: u8 = 8;
    /// Network administratively prohibited.
    pub const NET_PROHIBITED: u8 = 9;
    /// Host administratively prohibited.
    pub const HOST_PROHIBITED: u8 = 10;
    /// Network unreachable for TOS.
    pub const NET_TOS: u8 = 11;
    /// Host unreachable for TOS.
    pub const HOST_TOS: u8 = 12;
    /// Communication administratively prohibited (filtered).
    pub const FILTER_PROHIBITED: u8 = 13;
    /// Host precedence violation.
    pub const HOST_PRECEDENCE: u8 = 14;
    /// Precedence cutoff in effect.
    pub const PRECEDENCE_CUTOFF: u8 = 15;
}

/// Time Exceeded codes.
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const FRAG_REASSEMBLY: u8 = 1;
}

/// Redirect codes.
pub mod redirect {
    /// For the network.
    pub const NET: u8 = 0;
    /// For the host.
    pub const HOST: u8 = 1;
    /// For TOS and network.
    pub const TOS_NET: u8 = 2;
    /// For TOS and host.
    pub const TOS_HOST: u8 = 3;
}

/// ICMP type names of the ipsecconf(8) grammar, with their numbers.
pub const TYPE_NAMES: &[(&str, u8)] = &[
    ("unreach", message::DST_UNREACHABLE),
    ("echo", message::ECHO_REQUEST),
    ("echorep", message::ECHO_REPLY),
    ("squench", message::SOURCE_QUENCH),
    ("redir", message::REDIRECT),
    ("timex", message::TIME_EXCEEDED),
    ("paramprob", message::PARAM_PROBLEM),
    ("timest", message::TIMESTAMP),
    ("timestrep", message::TIMESTAMP_REPLY),
    ("inforeq", message::INFO_REQUEST),
    ("inforep", message::INFO_REPLY),
    ("maskreq", message::MASK_REQUEST),
    ("maskrep", message::MASK_REPLY),
];

/// ICMP code names of the ipsecconf(8) grammar (Destination Unreachable codes).
pub const CODE_NAMES: &[(&str, u8)] = &[
    ("net-unr", unreach::NET),
    ("host-unr", unreach::HOST),
    ("proto-unr", unreach::PROTOCOL),
    ("port-unr", unreach::PORT),
    ("needfrag", unreach::FRAG_NEEDED),
    ("srcfail", unreach::SRC_ROUTE_FAILED),
    ("net-unk", unreach::NET_UNKNOWN),
    ("host-unk", unreach::HOST_UNKNOWN),
    ("isolate", unreach::ISOLATED),
    ("net-prohib", unreach::NET_PROHIBITED),
    ("host-prohib", unreach::HOST_PROHIBITED),
    ("net-tos", unreach::NET_TOS),
    ("host-tos", unreach::HOST_TOS),
    ("filter-prohib", unreach::FILTER_PROHIBITED),
    ("host-preced", unreach::HOST_PRECEDENCE),
    ("cutoff-preced", unreach::PRECEDENCE_CUTOFF),
];

pub(crate) fn lookup(table: &[(&str, u8)], name: &str) -> Option<u8> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

pub(crate) fn rlookup(table: &[(&'static str, u8)], v: u8) -> Option<&'static str> {
    table.iter().find(|(_, x)| *x == v).map(|&(n, _)| n)
}

/// Type number for an ipsecconf type name (`"echo"` → 8).
pub fn type_by_name(name: &str) -> Option<u8> {
    lookup(TYPE_NAMES, name)
}

/// ipsecconf name of a type number.
pub fn type_name(t: u8) -> Option<&'static str> {
    rlookup(TYPE_NAMES, t)
}

/// Code number for an ipsecconf code name (`"needfrag"` → 4).
pub fn code_by_name(name: &str) -> Option<u8> {
    lookup(CODE_NAMES, name)
}

/// ipsecconf name of a code (only Destination Unreachable codes have names).
pub fn code_name(msg_type: u8, code: u8) -> Option<&'static str> {
    if msg_type == message::DST_UNREACHABLE {
        rlookup(CODE_NAMES, code)
    } else {
        None
    }
}

/// True for error messages, which quote an invoking packet.
pub const fn is_error(msg_type: u8) -> bool {
    matches!(
        msg_type,
        message::DST_UNREACHABLE
            | message::SOURCE_QUENCH
            | message::REDIRECT
            | message::TIME_EXCEEDED
            | message::PARAM_PROBLEM
    )
}

/// How much of `invoking` (an IPv4 packet) to quote in an error: as much as fits in a
/// 576-byte datagram ([`MAX_QUOTE_LEN`]), never past its announced total length when that is
/// readable.
pub fn quote(invoking: &[u8]) -> &[u8] {
    let mut n = invoking.len().min(MAX_QUOTE_LEN);
    if let Ok(p) = Ipv4Packet::new_checked(invoking) {
        n = n.min(usize::from(p.total_len()));
    }
    bytes::slice(invoking, 0, n)
}

/// A zero-copy view of an ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps untrusted bytes after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The buffer must hold the 8-byte header.
    pub fn check_len(&self) -> Result<()> {
        need(self.buffer.as_ref(), HEADER_LEN)
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::TYPE)
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::CODE)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The 4-byte rest-of-header word.
    pub fn rest_of_header(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::REST.start)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// Next-hop MTU of a "fragmentation needed" message (0 from pre-RFC 1191 routers).
    pub fn next_hop_mtu(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::MTU.start)
    }

    /// Parameter Problem pointer.
    pub fn pointer(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::POINTER)
    }

    /// Redirect gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        bytes::v4_at(self.buffer.as_ref(), field::GATEWAY.start)
    }

    /// Bytes after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        bytes::tail(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The quoted invoking packet of an error message (empty for other messages).
    pub fn invoking_packet(&self) -> &[u8] {
        if is_error(self.msg_type()) {
            self.data()
        } else {
            &[]
        }
    }

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, t: u8) {
        set_u8(self.buffer.as_mut(), field::TYPE, t);
    }

    /// Sets the code.
    pub fn set_msg_code(&mut self, c: u8) {
        set_u8(self.buffer.as_mut(), field::CODE, c);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Sets the rest-of-header word.
    pub fn set_rest_of_header(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::REST.start, v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_SEQNO.start, v);
    }

    /// Sets the next-hop MTU.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::MTU.start, v);
    }

    /// Sets the Parameter Problem pointer.
    pub fn set_pointer(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), field::POINTER, v);
    }

    /// Sets the Redirect gateway.
    pub fn set_gateway(&mut self, a: Ipv4Addr) {
        bytes::set_arr(self.buffer.as_mut(), field::GATEWAY.start, &a.octets());
    }

    /// Mutable data after the header.
    pub fn data_mut(&mut self) -> &mut [u8] {
        bytes::tail_mut(self.buffer.as_mut(), HEADER_LEN)
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An owned (borrowing its data) ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo Request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Echo Reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Destination Unreachable (code 4: fragmentation needed, with next-hop MTU).
    DstUnreachable {
        /// Code ([`unreach`]).
        code: u8,
        /// Next-hop MTU (bytes 6..8; meaningful for code 4, else 0).
        next_hop_mtu: u16,
        /// Quoted invoking packet.
        invoking: &'a [u8],
    },
    /// Source Quench.
    SourceQuench {
        /// Quoted invoking packet.
        invoking: &'a [u8],
    },
    /// Redirect.
    Redirect {
        /// Code ([`redirect`]).
        code: u8,
        /// Gateway to use.
        gateway: Ipv4Addr,
        /// Quoted invoking packet.
        invoking: &'a [u8],
    },
    /// Time Exceeded.
    TimeExceeded {
        /// Code ([`time_exceeded`]).
        code: u8,
        /// Quoted invoking packet.
        invoking: &'a [u8],
    },
    /// Parameter Problem.
    ParamProblem {
        /// Code.
        code: u8,
        /// Offset of the offending byte in the invoking packet.
        pointer: u8,
        /// Quoted invoking packet.
        invoking: &'a [u8],
    },
    /// Any other type (router advertisement/solicitation, timestamp, mask, ...).
    Other {
        /// Type (not one of the types above).
        msg_type: u8,
        /// Code.
        code: u8,
        /// Rest-of-header word.
        rest: u32,
        /// Data after the header.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message and verifies its checksum ([`Error::BadChecksum`]).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Icmpv4Packet<&'a T>) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Self::parse_ignoring_checksum(packet)
    }

    /// Parses without verifying the checksum.
    pub fn parse_ignoring_checksum<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
    ) -> Result<Self> {
        packet.check_len()?;
        let buf: &'a [u8] = packet.buffer.as_ref();
        let data = bytes::tail(buf, HEADER_LEN);
        let code = packet.msg_code();
        Ok(match packet.msg_type() {
            message::ECHO_REQUEST => Self::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            message::ECHO_REPLY => Self::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            message::DST_UNREACHABLE => Self::DstUnreachable {
                code,
                next_hop_mtu: packet.next_hop_mtu(),
                invoking: data,
            },
            message::SOURCE_QUENCH => Self::SourceQuench { invoking: data },
            message::REDIRECT => Self::Redirect {
                code,
                gateway: packet.gateway(),
                invoking: data,
            },
            message::TIME_EXCEEDED => Self::TimeExceeded {
                code,
                invoking: data,
            },
            message::PARAM_PROBLEM => Self::ParamProblem {
                code,
                pointer: packet.pointer(),
                invoking: data,
            },
            msg_type => Self::Other {
                msg_type,
                code,
                rest: packet.rest_of_header(),
                data,
            },
        })
    }

    /// A "fragmentation needed and DF set" error for `invoking` (quoted per [`quote`]).
    pub fn frag_needed(next_hop_mtu: u16, invoking: &'a [u8]) -> Self {
        Self::DstUnreachable {
            code: unreach::FRAG_NEEDED,
            next_hop_mtu,
            invoking: quote(invoking),
        }
    }

    /// Message type.
    pub const fn msg_type(&self) -> u8 {
        match self {
            Self::EchoRequest { .. } => message::ECHO_REQUEST,
            Self::EchoReply { .. } => message::ECHO_REPLY,
            Self::DstUnreachable { .. } => message::DST_UNREACHABLE,
            Self::SourceQuench { .. } => message::SOURCE_QUENCH,
            Self::Redirect { .. } => message::REDIRECT,
            Self::TimeExceeded { .. } => message::TIME_EXCEEDED,
            Self::ParamProblem { .. } => message::PARAM_PROBLEM,
            Self::Other { msg_type, .. } => *msg_type,
        }
    }

    /// Message code.
    pub const fn code(&self) -> u8 {
        match self {
            Self::EchoRequest { .. } | Self::EchoReply { .. } | Self::SourceQuench { .. } => 0,
            Self::DstUnreachable { code, .. }
            | Self::Redirect { code, .. }
            | Self::TimeExceeded { code, .. }
            | Self::ParamProblem { code, .. }
            | Self::Other { code, .. } => *code,
        }
    }

    /// The data after the header (echo payload or quoted packet).
    pub const fn data(&self) -> &'a [u8] {
        match self {
            Self::EchoRequest { data, .. }
            | Self::EchoReply { data, .. }
            | Self::Other { data, .. } => data,
            Self::DstUnreachable { invoking, .. }
            | Self::SourceQuench { invoking }
            | Self::Redirect { invoking, .. }
            | Self::TimeExceeded { invoking, .. }
            | Self::ParamProblem { invoking, .. } => invoking,
        }
    }

    fn rest(&self) -> u32 {
        match *self {
            Self::EchoRequest { ident, seq_no, .. } | Self::EchoReply { ident, seq_no, .. } => {
                (u32::from(ident) << 16) | u32::from(seq_no)
            }
            Self::DstUnreachable { next_hop_mtu, .. } => u32::from(next_hop_mtu),
            Self::SourceQuench { .. } | Self::TimeExceeded { .. } => 0,
            Self::Redirect { gateway, .. } => u32::from(gateway),
            Self::ParamProblem { pointer, .. } => u32::from(pointer) << 24,
            Self::Other { rest, .. } => rest,
        }
    }

    /// 8 + data length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len) bytes of the
    /// packet's buffer and fills the checksum over exactly those bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) -> Result<()> {
        let len = self.buffer_len();
        need(packet.as_bytes(), len)?;
        let buf = bytes::slice_mut(packet.buffer.as_mut(), 0, len);
        let mut p = Icmpv4Packet::new_unchecked(buf);
        p.set_msg_type(self.msg_type());
        p.set_msg_code(self.code());
        p.set_rest_of_header(self.rest());
        bytes::set_arr(p.data_mut(), 0, self.data());
        p.fill_checksum();
        Ok(())
    }
}

fn fmt_type(f: &mut fmt::Formatter<'_>, t: u8, code: u8) -> fmt::Result {
    let s = match t {
        message::ECHO_REQUEST => "echo request",
        message::ECHO_REPLY => "echo reply",
        message::DST_UNREACHABLE => match code {
            unreach::NET => "net unreachable",
            unreach::HOST => "host unreachable",
            unreach::PROTOCOL => "protocol unreachable",
            unreach::PORT => "port unreachable",
            unreach::FRAG_NEEDED => "need to frag",
            _ => return write!(f, "unreachable code {code}"),
        },
        message::SOURCE_QUENCH => "source quench",
        message::REDIRECT => "redirect",
        message::TIME_EXCEEDED => "time exceeded",
        message::PARAM_PROBLEM => "parameter problem",
        message::ROUTER_ADVERT => "router advertisement",
        message::ROUTER_SOLICIT => "router solicitation",
        message::TIMESTAMP => "time stamp query",
        message::TIMESTAMP_REPLY => "time stamp reply",
        message::INFO_REQUEST => "information request",
        message::INFO_REPLY => "information reply",
        message::MASK_REQUEST => "address mask request",
        message::MASK_REPLY => "address mask reply",
        _ => return write!(f, "type-#{t} code {code}"),
    };
    f.write_str(s)
}

impl<T: AsRef<[u8]>> fmt::Display for Icmpv4Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "ICMP [{e}]");
        }
        f.write_str("ICMP ")?;
        fmt_type(f, self.msg_type(), self.msg_code())?;
        match self.msg_type() {
            message::ECHO_REQUEST | message::ECHO_REPLY => {
                write!(f, ", id {}, seq {}", self.echo_ident(), self.echo_seq_no())?
            }
            message::DST_UNREACHABLE if self.msg_code() == unreach::FRAG_NEEDED => {
                write!(f, " (mtu {})", self.next_hop_mtu())?
            }
            message::REDIRECT => write!(f, " to {}", self.gateway())?,
            message::PARAM_PROBLEM => write!(f, " at {}", self.pointer())?,
            _ => {}
        }
        write!(f, ", length {}", self.buffer.as_ref().len())?;
        if is_error(self.msg_type()) {
            let inner = Ipv4Packet::new_unchecked(self.data());
            if self.data().len() >= crate::ipv4::HEADER_LEN && inner.version() == 4 {
                write!(f, " for {} > {}", inner.src_addr(), inner.dst_addr())?;
            }
        }
        Ok(())
    }
}
