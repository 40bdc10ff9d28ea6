//! ICMPv6 (RFC 4443), with the Neighbor Discovery (RFC 4861) and MLD (RFC 2710/3810)
//! messages the IPsec layer must recognise.
//!
//! The checksum covers an IPv6 pseudo-header (next header 58) and the whole message.

use core::fmt;
use core::net::Ipv6Addr;

use crate::bytes::{self, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use crate::icmpv4::{lookup, rlookup};
use crate::ipv6::Ipv6Packet;
use crate::{checksum, ip, need, Error, Result};

/// Byte offsets of the ICMPv6 fields.
pub mod field {
    use crate::{Field, Rest};
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Field = 2..4;
    /// Rest of the 8-byte header.
    pub const REST: Field = 4..8;
    /// Echo identifier.
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Field = 6..8;
    /// Packet Too Big MTU.
    pub const MTU: Field = 4..8;
    /// Parameter Problem pointer.
    pub const POINTER: Field = 4..8;
    /// Data of error and echo messages.
    pub const DATA: Rest = 8..;
    /// Router Advertisement: current hop limit.
    pub const CUR_HOP_LIMIT: usize = 4;
    /// Router Advertisement: M/O flags. Neighbor Advertisement: R/S/O flags.
    pub const FLAGS: usize = 5;
    /// Neighbor Advertisement flags byte.
    pub const NA_FLAGS: usize = 4;
    /// Router Advertisement: router lifetime.
    pub const ROUTER_LIFETIME: Field = 6..8;
    /// Router Advertisement: reachable time.
    pub const REACHABLE_TIME: Field = 8..12;
    /// Router Advertisement: retransmission timer.
    pub const RETRANS_TIME: Field = 12..16;
    /// NS/NA/Redirect target address.
    pub const TARGET: Field = 8..24;
    /// Redirect destination address.
    pub const REDIRECT_DEST: Field = 24..40;
    /// MLD maximum response delay.
    pub const MLD_MAX_DELAY: Field = 4..6;
    /// MLD multicast address.
    pub const MLD_ADDR: Field = 8..24;
}

/// Length of the common header (type, code, checksum, 4 more bytes).
pub const HEADER_LEN: usize = 8;

/// Largest quote of an invoking packet so the error fits in the IPv6 minimum MTU
/// (RFC 4443 §2.4 (c)): 1280 − 40 − 8.
pub const MAX_QUOTE_LEN: usize = 1280 - 40 - HEADER_LEN;

/// ICMPv6 message types.
pub mod message {
    /// Destination Unreachable.
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet Too Big.
    pub const PKT_TOO_BIG: u8 = 2;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter Problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Multicast Listener Query.
    pub const MLD_QUERY: u8 = 130;
    /// Multicast Listener Report (MLDv1).
    pub const MLD_REPORT: u8 = 131;
    /// Multicast Listener Done.
    pub const MLD_DONE: u8 = 132;
    /// Router Solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router Advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor Solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor Advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
    /// Version 2 Multicast Listener Report (RFC 3810).
    pub const MLDV2_REPORT: u8 = 143;
}

/// Destination Unreachable codes.
pub mod unreach {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Beyond scope of source address.
    pub const BEYOND_SCOPE: u8 = 2;
    /// Address unreachable.
    pub const ADDR_UNREACHABLE: u8 = 3;
    /// Port unreachable.
    pub const PORT_UNREACHABLE: u8 = 4;
    /// Source address failed ingress/egress policy.
    pub const FAILED_POLICY: u8 = 5;
    /// Reject route to destination.
    pub const REJECT_ROUTE: u8 = 6;
}

/// Time Exceeded codes.
pub mod time_exceeded {
    /// Hop limit exceeded in transit.
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const FRAG_REASSEMBLY: u8 = 1;
}

/// Parameter Problem codes.
pub mod param_problem {
    /// Erroneous header field.
    pub const HEADER_FIELD: u8 = 0;
    /// Unrecognized Next Header type.
    pub const UNRECOGNIZED_NH: u8 = 1;
    /// Unrecognized IPv6 option.
    pub const UNRECOGNIZED_OPTION: u8 = 2;
}

/// ICMPv6 type names of the ipsecconf(8) grammar.
pub const TYPE_NAMES: &[(&str, u8)] = &[
    ("unreach6", message::DST_UNREACHABLE),
    ("pkttoobig6", message::PKT_TOO_BIG),
    ("timex6", message::TIME_EXCEEDED),
    ("paramprob6", message::PARAM_PROBLEM),
    ("echo6", message::ECHO_REQUEST),
    ("echorep6", message::ECHO_REPLY),
    ("router-sol6", message::ROUTER_SOLICIT),
    ("router-ad6", message::ROUTER_ADVERT),
    ("neigh-sol6", message::NEIGHBOR_SOLICIT),
    ("neigh-ad6", message::NEIGHBOR_ADVERT),
    ("redir6", message::REDIRECT),
];

/// ICMPv6 code names of the ipsecconf(8) grammar: (name, type, code).
pub const CODE_NAMES: &[(&str, u8, u8)] = &[
    ("no-route6", message::DST_UNREACHABLE, unreach::NO_ROUTE),
    (
        "adm-prohib6",
        message::DST_UNREACHABLE,
        unreach::ADMIN_PROHIBITED,
    ),
    (
        "addr-unr6",
        message::DST_UNREACHABLE,
        unreach::ADDR_UNREACHABLE,
    ),
    (
        "port-unr6",
        message::DST_UNREACHABLE,
        unreach::PORT_UNREACHABLE,
    ),
    (
        "hop-limex6",
        message::TIME_EXCEEDED,
        time_exceeded::HOP_LIMIT,
    ),
    (
        "frag-re-timex6",
        message::TIME_EXCEEDED,
        time_exceeded::FRAG_REASSEMBLY,
    ),
    (
        "err-head6",
        message::PARAM_PROBLEM,
        param_problem::HEADER_FIELD,
    ),
    (
        "unrec-head6",
        message::PARAM_PROBLEM,
        param_problem::UNRECOGNIZED_NH,
    ),
    (
        "unreq-opt6",
        message::PARAM_PROBLEM,
        param_problem::UNRECOGNIZED_OPTION,
    ),
];

/// Type number for an ipsecconf type name (`"echo6"` → 128).
pub fn type_by_name(name: &str) -> Option<u8> {
    lookup(TYPE_NAMES, name)
}

/// ipsecconf name of a type number.
pub fn type_name(t: u8) -> Option<&'static str> {
    rlookup(TYPE_NAMES, t)
}

/// `(type, code)` for an ipsecconf code name (`"port-unr6"` → `(1, 4)`).
pub fn code_by_name(name: &str) -> Option<(u8, u8)> {
    CODE_NAMES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, t, c)| (t, c))
}

/// ipsecconf name of a code of a given type.
pub fn code_name(msg_type: u8, code: u8) -> Option<&'static str> {
    CODE_NAMES
        .iter()
        .find(|(_, t, c)| *t == msg_type && *c == code)
        .map(|&(n, _, _)| n)
}

/// True for error messages (types 0..=127), which quote an invoking packet.
pub const fn is_error(msg_type: u8) -> bool {
    msg_type < 128
}

/// Minimum message length for a type: 8, or the fixed part for ND/MLD messages
/// (RA 16, NS/NA/MLD 24, Redirect 40).
pub const fn min_len(msg_type: u8) -> usize {
    match msg_type {
        message::ROUTER_ADVERT => 16,
        message::MLD_QUERY
        | message::MLD_REPORT
        | message::MLD_DONE
        | message::NEIGHBOR_SOLICIT
        | message::NEIGHBOR_ADVERT => 24,
        message::REDIRECT => 40,
        _ => HEADER_LEN,
    }
}

/// How much of `invoking` (an IPv6 packet) to quote in an error: as much as fits in 1280
/// bytes ([`MAX_QUOTE_LEN`]), never past its announced length when that is readable.
pub fn quote(invoking: &[u8]) -> &[u8] {
    let mut n = invoking.len().min(MAX_QUOTE_LEN);
    if let Ok(p) = Ipv6Packet::new_checked(invoking) {
        n = n.min(p.total_len());
    }
    bytes::slice(invoking, 0, n)
}

/// A zero-copy view of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
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

    /// The buffer must hold [`min_len`] of its type (at least 8).
    pub fn check_len(&self) -> Result<()> {
        need(self.buffer.as_ref(), HEADER_LEN)?;
        need(self.buffer.as_ref(), min_len(self.msg_type()))
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

    /// Bytes 4..8.
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

    /// Packet Too Big MTU.
    pub fn mtu(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::MTU.start)
    }

    /// Parameter Problem pointer.
    pub fn pointer(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::POINTER.start)
    }

    /// Router Advertisement current hop limit.
    pub fn cur_hop_limit(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::CUR_HOP_LIMIT)
    }

    /// Router Advertisement flags (M 0x80, O 0x40, ...).
    pub fn router_flags(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::FLAGS)
    }

    /// Router Advertisement router lifetime (seconds).
    pub fn router_lifetime(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::ROUTER_LIFETIME.start)
    }

    /// Router Advertisement reachable time (ms).
    pub fn reachable_time(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::REACHABLE_TIME.start)
    }

    /// Router Advertisement retransmission timer (ms).
    pub fn retrans_time(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::RETRANS_TIME.start)
    }

    /// Neighbor Advertisement flags (R 0x80, S 0x40, O 0x20).
    pub fn neighbor_flags(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::NA_FLAGS)
    }

    /// NS/NA/Redirect target address.
    pub fn target_addr(&self) -> Ipv6Addr {
        bytes::v6_at(self.buffer.as_ref(), field::TARGET.start)
    }

    /// Redirect destination address.
    pub fn redirect_dest(&self) -> Ipv6Addr {
        bytes::v6_at(self.buffer.as_ref(), field::REDIRECT_DEST.start)
    }

    /// MLD maximum response delay.
    pub fn mld_max_resp_delay(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::MLD_MAX_DELAY.start)
    }

    /// MLD multicast address.
    pub fn mld_addr(&self) -> Ipv6Addr {
        bytes::v6_at(self.buffer.as_ref(), field::MLD_ADDR.start)
    }

    /// Bytes after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        bytes::tail(self.buffer.as_ref(), HEADER_LEN)
    }

    /// Bytes after the fixed part of the type ([`min_len`]): ND options, MLD extra data.
    pub fn body(&self) -> &[u8] {
        bytes::tail(self.buffer.as_ref(), min_len(self.msg_type()))
    }

    /// The quoted invoking packet of an error message (empty for other messages).
    pub fn invoking_packet(&self) -> &[u8] {
        if is_error(self.msg_type()) {
            self.data()
        } else {
            &[]
        }
    }

    /// Verifies the checksum over the pseudo-header and the whole buffer.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, ip::protocol::ICMPV6, len),
            checksum::data(b),
        ]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
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

    /// Sets bytes 4..8.
    pub fn set_rest_of_header(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::REST.start, v);
    }

    /// Sets a 32-bit word at byte `at` (for RA timers).
    fn set_word(&mut self, at: usize, v: u32) {
        set_u32(self.buffer.as_mut(), at, v);
    }

    /// Sets the target address.
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        bytes::set_arr(self.buffer.as_mut(), field::TARGET.start, &a.octets());
    }

    /// Sets the Redirect destination.
    pub fn set_redirect_dest(&mut self, a: Ipv6Addr) {
        bytes::set_arr(
            self.buffer.as_mut(),
            field::REDIRECT_DEST.start,
            &a.octets(),
        );
    }

    /// Mutable bytes after the 8-byte header.
    pub fn data_mut(&mut self) -> &mut [u8] {
        bytes::tail_mut(self.buffer.as_mut(), HEADER_LEN)
    }

    /// Computes and stores the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, ip::protocol::ICMPV6, len),
            checksum::data(b),
        ]);
        self.set_checksum(!sum);
    }
}

/// An owned (borrowing its data) ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Destination Unreachable.
    DstUnreachable {
        /// Code ([`unreach`]).
        code: u8,
        /// Quoted invoking packet.
        invoking: &'a [u8],
    },
    /// Packet Too Big.
    PktTooBig {
        /// MTU of the next hop.
        mtu: u32,
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
        /// Code ([`param_problem`]).
        code: u8,
        /// Offset of the offending byte.
        pointer: u32,
        /// Quoted invoking packet.
        invoking: &'a [u8],
    },
    /// Echo Request (a non-zero code is not kept).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Echo Reply (a non-zero code is not kept).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Router Solicitation.
    RouterSolicit {
        /// ND options.
        options: &'a [u8],
    },
    /// Router Advertisement.
    RouterAdvert {
        /// Current hop limit.
        hop_limit: u8,
        /// Flags byte (M, O, ...).
        flags: u8,
        /// Router lifetime (s).
        router_lifetime: u16,
        /// Reachable time (ms).
        reachable_time: u32,
        /// Retransmission timer (ms).
        retrans_time: u32,
        /// ND options.
        options: &'a [u8],
    },
    /// Neighbor Solicitation.
    NeighborSolicit {
        /// Target address.
        target: Ipv6Addr,
        /// ND options.
        options: &'a [u8],
    },
    /// Neighbor Advertisement.
    NeighborAdvert {
        /// Flags byte (R 0x80, S 0x40, O 0x20).
        flags: u8,
        /// Target address.
        target: Ipv6Addr,
        /// ND options.
        options: &'a [u8],
    },
    /// Redirect.
    Redirect {
        /// Better first hop.
        target: Ipv6Addr,
        /// Destination being redirected.
        dest: Ipv6Addr,
        /// ND options.
        options: &'a [u8],
    },
    /// MLDv1 query/report/done (types 130..=132; an MLDv2 query carries `data`).
    Mld {
        /// Type (130, 131 or 132).
        msg_type: u8,
        /// Maximum response delay.
        max_resp_delay: u16,
        /// Multicast address.
        mcast_addr: Ipv6Addr,
        /// Bytes after the 24-byte MLDv1 message (MLDv2 query fields).
        data: &'a [u8],
    },
    /// Any other type.
    Other {
        /// Type (not one of the above).
        msg_type: u8,
        /// Code.
        code: u8,
        /// Bytes 4..8.
        rest: u32,
        /// Data after byte 8.
        data: &'a [u8],
    },
}

const fn is_nd_or_mld(t: u8) -> bool {
    matches!(t, 130..=137)
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a message and verifies its checksum ([`Error::BadChecksum`]). ND and MLD
    /// messages with a non-zero code are rejected ([`Error::Malformed`], RFC 4861 §6.1).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv6Packet<&'a T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Self::parse_ignoring_checksum(packet)
    }

    /// Parses without verifying the checksum.
    pub fn parse_ignoring_checksum<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv6Packet<&'a T>,
    ) -> Result<Self> {
        packet.check_len()?;
        let buf: &'a [u8] = packet.buffer.as_ref();
        let t = packet.msg_type();
        let code = packet.msg_code();
        if is_nd_or_mld(t) && code != 0 {
            return Err(Error::Malformed);
        }
        let data = bytes::tail(buf, HEADER_LEN);
        let body = bytes::tail(buf, min_len(t));
        Ok(match t {
            message::DST_UNREACHABLE => Self::DstUnreachable {
                code,
                invoking: data,
            },
            message::PKT_TOO_BIG => Self::PktTooBig {
                mtu: packet.mtu(),
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
            message::ROUTER_SOLICIT => Self::RouterSolicit { options: body },
            message::ROUTER_ADVERT => Self::RouterAdvert {
                hop_limit: packet.cur_hop_limit(),
                flags: packet.router_flags(),
                router_lifetime: packet.router_lifetime(),
                reachable_time: packet.reachable_time(),
                retrans_time: packet.retrans_time(),
                options: body,
            },
            message::NEIGHBOR_SOLICIT => Self::NeighborSolicit {
                target: packet.target_addr(),
                options: body,
            },
            message::NEIGHBOR_ADVERT => Self::NeighborAdvert {
                flags: packet.neighbor_flags(),
                target: packet.target_addr(),
                options: body,
            },
            message::REDIRECT => Self::Redirect {
                target: packet.target_addr(),
                dest: packet.redirect_dest(),
                options: body,
            },
            message::MLD_QUERY | message::MLD_REPORT | message::MLD_DONE => Self::Mld {
                msg_type: t,
                max_resp_delay: packet.mld_max_resp_delay(),
                mcast_addr: packet.mld_addr(),
                data: body,
            },
            msg_type => Self::Other {
                msg_type,
                code,
                rest: packet.rest_of_header(),
                data,
            },
        })
    }

    /// A Packet Too Big error for `invoking` (quoted per [`quote`]).
    pub fn packet_too_big(mtu: u32, invoking: &'a [u8]) -> Self {
        Self::PktTooBig {
            mtu,
            invoking: quote(invoking),
        }
    }

    /// Message type.
    pub const fn msg_type(&self) -> u8 {
        match self {
            Self::DstUnreachable { .. } => message::DST_UNREACHABLE,
            Self::PktTooBig { .. } => message::PKT_TOO_BIG,
            Self::TimeExceeded { .. } => message::TIME_EXCEEDED,
            Self::ParamProblem { .. } => message::PARAM_PROBLEM,
            Self::EchoRequest { .. } => message::ECHO_REQUEST,
            Self::EchoReply { .. } => message::ECHO_REPLY,
            Self::RouterSolicit { .. } => message::ROUTER_SOLICIT,
            Self::RouterAdvert { .. } => message::ROUTER_ADVERT,
            Self::NeighborSolicit { .. } => message::NEIGHBOR_SOLICIT,
            Self::NeighborAdvert { .. } => message::NEIGHBOR_ADVERT,
            Self::Redirect { .. } => message::REDIRECT,
            Self::Mld { msg_type, .. } | Self::Other { msg_type, .. } => *msg_type,
        }
    }

    /// Message code.
    pub const fn code(&self) -> u8 {
        match self {
            Self::DstUnreachable { code, .. }
            | Self::TimeExceeded { code, .. }
            | Self::ParamProblem { code, .. }
            | Self::Other { code, .. } => *code,
            _ => 0,
        }
    }

    /// The variable part written after the type's fixed part.
    const fn tail(&self) -> &'a [u8] {
        match self {
            Self::DstUnreachable { invoking, .. }
            | Self::PktTooBig { invoking, .. }
            | Self::TimeExceeded { invoking, .. }
            | Self::ParamProblem { invoking, .. } => invoking,
            Self::EchoRequest { data, .. }
            | Self::EchoReply { data, .. }
            | Self::Mld { data, .. }
            | Self::Other { data, .. } => data,
            Self::RouterSolicit { options }
            | Self::RouterAdvert { options, .. }
            | Self::NeighborSolicit { options, .. }
            | Self::NeighborAdvert { options, .. }
            | Self::Redirect { options, .. } => options,
        }
    }

    /// Fixed part length for this message ([`min_len`] of its type).
    const fn fixed_len(&self) -> usize {
        min_len(self.msg_type())
    }

    /// Message length.
    pub const fn buffer_len(&self) -> usize {
        self.fixed_len() + self.tail().len()
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len) bytes of the
    /// packet's buffer and fills the checksum for `src`/`dst` over exactly those bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv6Packet<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<()> {
        let len = self.buffer_len();
        need(packet.as_bytes(), len)?;
        let buf = bytes::slice_mut(packet.buffer.as_mut(), 0, len);
        buf.fill(0);
        let mut p = Icmpv6Packet::new_unchecked(buf);
        p.set_msg_type(self.msg_type());
        p.set_msg_code(self.code());
        match *self {
            Self::PktTooBig { mtu, .. } => p.set_rest_of_header(mtu),
            Self::ParamProblem { pointer, .. } => p.set_rest_of_header(pointer),
            Self::EchoRequest { ident, seq_no, .. } | Self::EchoReply { ident, seq_no, .. } => {
                p.set_rest_of_header((u32::from(ident) << 16) | u32::from(seq_no));
            }
            Self::RouterAdvert {
                hop_limit,
                flags,
                router_lifetime,
                reachable_time,
                retrans_time,
                ..
            } => {
                p.set_rest_of_header(
                    (u32::from(hop_limit) << 24)
                        | (u32::from(flags) << 16)
                        | u32::from(router_lifetime),
                );
                p.set_word(field::REACHABLE_TIME.start, reachable_time);
                p.set_word(field::RETRANS_TIME.start, retrans_time);
            }
            Self::NeighborSolicit { target, .. } => p.set_target_addr(target),
            Self::NeighborAdvert { flags, target, .. } => {
                p.set_rest_of_header(u32::from(flags) << 24);
                p.set_target_addr(target);
            }
            Self::Redirect { target, dest, .. } => {
                p.set_target_addr(target);
                p.set_redirect_dest(dest);
            }
            Self::Mld {
                max_resp_delay,
                mcast_addr,
                ..
            } => {
                p.set_rest_of_header(u32::from(max_resp_delay) << 16);
                bytes::set_arr(p.buffer, field::MLD_ADDR.start, &mcast_addr.octets());
            }
            Self::Other { rest, .. } => p.set_rest_of_header(rest),
            Self::DstUnreachable { .. }
            | Self::TimeExceeded { .. }
            | Self::RouterSolicit { .. } => {}
        }
        let fixed = self.fixed_len();
        bytes::set_arr(p.buffer, fixed, self.tail());
        p.fill_checksum(src, dst);
        Ok(())
    }
}

fn fmt_type(f: &mut fmt::Formatter<'_>, t: u8, code: u8) -> fmt::Result {
    let s = match t {
        message::DST_UNREACHABLE => match code {
            unreach::NO_ROUTE => "destination unreachable, no route",
            unreach::ADMIN_PROHIBITED => "destination unreachable, prohibited",
            unreach::ADDR_UNREACHABLE => "destination unreachable, address",
            unreach::PORT_UNREACHABLE => "destination unreachable, port",
            _ => return write!(f, "destination unreachable code {code}"),
        },
        message::PKT_TOO_BIG => "packet too big",
        message::TIME_EXCEEDED => "time exceeded",
        message::PARAM_PROBLEM => "parameter problem",
        message::ECHO_REQUEST => "echo request",
        message::ECHO_REPLY => "echo reply",
        message::MLD_QUERY => "multicast listener query",
        message::MLD_REPORT => "multicast listener report",
        message::MLD_DONE => "multicast listener done",
        message::ROUTER_SOLICIT => "router solicitation",
        message::ROUTER_ADVERT => "router advertisement",
        message::NEIGHBOR_SOLICIT => "neighbor solicitation",
        message::NEIGHBOR_ADVERT => "neighbor advertisement",
        message::REDIRECT => "redirect",
        message::MLDV2_REPORT => "multicast listener report v2",
        _ => return write!(f, "type-#{t} code {code}"),
    };
    f.write_str(s)
}

impl<T: AsRef<[u8]>> fmt::Display for Icmpv6Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "ICMP6 [{e}]");
        }
        f.write_str("ICMP6, ")?;
        fmt_type(f, self.msg_type(), self.msg_code())?;
        match self.msg_type() {
            message::ECHO_REQUEST | message::ECHO_REPLY => {
                write!(f, ", id {}, seq {}", self.echo_ident(), self.echo_seq_no())?
            }
            message::PKT_TOO_BIG => write!(f, ", mtu {}", self.mtu())?,
            message::PARAM_PROBLEM => write!(f, ", pointer {}", self.pointer())?,
            message::NEIGHBOR_SOLICIT | message::NEIGHBOR_ADVERT => {
                write!(f, ", who has {}", self.target_addr())?
            }
            message::REDIRECT => write!(f, ", {} to {}", self.redirect_dest(), self.target_addr())?,
            message::MLD_QUERY | message::MLD_REPORT | message::MLD_DONE => {
                write!(f, ", group {}", self.mld_addr())?
            }
            _ => {}
        }
        write!(f, ", length {}", self.buffer.as_ref().len())
    }
}
