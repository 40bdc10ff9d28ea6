//! The ICMP accept-clear tables (Solaris spd.c `ipsec_inbound_accept_clear()`): which cleartext
//! ICMP messages a receiver that requires protection still takes.
//!
//! IPv4 accepts replies (echo, timestamp, information), router advertisements, source quench,
//! time exceeded and the unreachables needed for path MTU discovery and routing (fragmentation
//! needed, host, net); it rejects requests (whose replies would be chosen-plaintext material),
//! address-mask replies, parameter problems, redirects, port/protocol and all other
//! unreachables, and every unknown type. IPv6 rejects parameter problems and echo requests and
//! accepts everything else (MLD, ND, destination unreachable, packet too big, echo reply, time
//! exceeded, unknown types). Non-ICMP cleartext is always rejected.

/// ICMPv4 type numbers (RFC 792, RFC 950, RFC 1256).
pub mod v4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const UNREACH: u8 = 3;
    /// Source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 9;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 10;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp request.
    pub const TIMESTAMP_REQUEST: u8 = 13;
    /// Timestamp reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// Information request.
    pub const INFO_REQUEST: u8 = 15;
    /// Information reply.
    pub const INFO_REPLY: u8 = 16;
    /// Address mask request.
    pub const MASK_REQUEST: u8 = 17;
    /// Address mask reply.
    pub const MASK_REPLY: u8 = 18;
    /// Unreachable code: network.
    pub const UNREACH_NET: u8 = 0;
    /// Unreachable code: host.
    pub const UNREACH_HOST: u8 = 1;
    /// Unreachable code: protocol.
    pub const UNREACH_PROTOCOL: u8 = 2;
    /// Unreachable code: port.
    pub const UNREACH_PORT: u8 = 3;
    /// Unreachable code: fragmentation needed and DF set.
    pub const UNREACH_FRAG_NEEDED: u8 = 4;
}

/// ICMPv6 type numbers (RFC 4443, RFC 4861, RFC 2710).
pub mod v6 {
    /// Destination unreachable.
    pub const DST_UNREACH: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROB: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// MLD listener query.
    pub const MLD_QUERY: u8 = 130;
    /// MLD listener report.
    pub const MLD_REPORT: u8 = 131;
    /// MLD listener reduction (done).
    pub const MLD_REDUCTION: u8 = 132;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
}

/// Whether a cleartext ICMPv4 message of `icmp_type`/`icmp_code` is accepted by a receiver
/// that requires protection.
pub const fn accept_clear_v4(icmp_type: u8, icmp_code: u8) -> bool {
    match icmp_type {
        v4::ECHO_REPLY | v4::TIMESTAMP_REPLY | v4::INFO_REPLY | v4::ROUTER_ADVERT => true,
        v4::ECHO_REQUEST
        | v4::TIMESTAMP_REQUEST
        | v4::INFO_REQUEST
        | v4::MASK_REQUEST
        | v4::ROUTER_SOLICIT
        | v4::MASK_REPLY => false,
        v4::UNREACH => matches!(
            icmp_code,
            v4::UNREACH_FRAG_NEEDED | v4::UNREACH_HOST | v4::UNREACH_NET
        ),
        v4::SOURCE_QUENCH => true,
        v4::PARAM_PROBLEM => false,
        v4::TIME_EXCEEDED => true,
        v4::REDIRECT => false,
        _ => false,
    }
}

/// Whether a cleartext ICMPv6 message of `icmp_type` is accepted by a receiver that requires
/// protection.
pub const fn accept_clear_v6(icmp_type: u8) -> bool {
    !matches!(icmp_type, v6::PARAM_PROB | v6::ECHO_REQUEST)
}

/// The table decision for a packet: `proto` with `v6` picks the table; non-ICMP is rejected,
/// as is ICMP whose type is unknown (a non-first fragment).
pub const fn accept_clear(
    proto: u8,
    v6: bool,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
) -> bool {
    let (Some(t), c) = (icmp_type, icmp_code) else {
        return false;
    };
    if v6 {
        proto == super::model::ulp::ICMPV6 && accept_clear_v6(t)
    } else {
        let c = match c {
            Some(c) => c,
            // Unknown code: no accepted unreachable has it.
            None => u8::MAX,
        };
        proto == super::model::ulp::ICMP && accept_clear_v4(t, c)
    }
}
