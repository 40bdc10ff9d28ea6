//! Built-in name tables: protocols (the names and aliases of the Linux `/etc/protocols`,
//! plus `icmp6` and `icmpv6`) and services (common `/etc/services` names), and the ICMP type
//! and code names of `ipsec_wire`.
//!
//! The tables are built in so that parsing does not depend on the host's files: a policy
//! means the same on every machine.

use ipsec_wire::{icmpv4, icmpv6};

/// IP protocol number of ICMP.
pub(crate) const ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub(crate) const ICMPV6: u8 = 58;

/// (canonical name, number, aliases), in number order.
const PROTOCOLS: &[(&str, u8, &[&str])] = &[
    ("icmp", 1, &[]),
    ("igmp", 2, &[]),
    ("ggp", 3, &[]),
    ("ipencap", 4, &["ip-encap"]),
    ("st", 5, &[]),
    ("tcp", 6, &[]),
    ("egp", 8, &[]),
    ("igp", 9, &[]),
    ("pup", 12, &[]),
    ("udp", 17, &[]),
    ("hmp", 20, &[]),
    ("xns-idp", 22, &[]),
    ("rdp", 27, &[]),
    ("iso-tp4", 29, &[]),
    ("dccp", 33, &[]),
    ("xtp", 36, &[]),
    ("ddp", 37, &[]),
    ("idpr-cmtp", 38, &[]),
    ("ipv6", 41, &[]),
    ("ipv6-route", 43, &[]),
    ("ipv6-frag", 44, &[]),
    ("idrp", 45, &[]),
    ("rsvp", 46, &[]),
    ("gre", 47, &[]),
    ("esp", 50, &["ipv6-crypt"]),
    ("ah", 51, &["ipv6-auth"]),
    ("skip", 57, &[]),
    ("ipv6-icmp", 58, &["icmp6", "icmpv6"]),
    ("ipv6-nonxt", 59, &[]),
    ("ipv6-opts", 60, &[]),
    ("rspf", 73, &["cphb"]),
    ("vmtp", 81, &[]),
    ("eigrp", 88, &[]),
    ("ospf", 89, &["ospfigp"]),
    ("ax.25", 93, &[]),
    ("ipip", 94, &[]),
    ("etherip", 97, &[]),
    ("encap", 98, &[]),
    ("pim", 103, &[]),
    ("ipcomp", 108, &[]),
    ("vrrp", 112, &[]),
    ("l2tp", 115, &[]),
    ("isis", 124, &[]),
    ("sctp", 132, &[]),
    ("fc", 133, &[]),
    ("mobility-header", 135, &[]),
    ("udplite", 136, &[]),
    ("mpls-in-ip", 137, &[]),
    ("manet", 138, &[]),
    ("hip", 139, &[]),
    ("shim6", 140, &[]),
    ("wesp", 141, &[]),
    ("rohc", 142, &[]),
    ("ethernet", 143, &[]),
];

/// (name, port): common `/etc/services` names; several names may share a port.
const SERVICES: &[(&str, u16)] = &[
    ("tcpmux", 1),
    ("echo", 7),
    ("discard", 9),
    ("sink", 9),
    ("null", 9),
    ("systat", 11),
    ("users", 11),
    ("daytime", 13),
    ("netstat", 15),
    ("chargen", 19),
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("mail", 25),
    ("time", 37),
    ("timserver", 37),
    ("whois", 43),
    ("nicname", 43),
    ("tacacs", 49),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("gopher", 70),
    ("finger", 79),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("kerberos5", 88),
    ("krb5", 88),
    ("kerberos-sec", 88),
    ("pop3", 110),
    ("pop-3", 110),
    ("sunrpc", 111),
    ("portmapper", 111),
    ("rpcbind", 111),
    ("auth", 113),
    ("authentication", 113),
    ("ident", 113),
    ("nntp", 119),
    ("readnews", 119),
    ("ntp", 123),
    ("epmap", 135),
    ("netbios-ns", 137),
    ("netbios-dgm", 138),
    ("netbios-ssn", 139),
    ("imap2", 143),
    ("imap", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("snmptrap", 162),
    ("xdmcp", 177),
    ("bgp", 179),
    ("irc", 194),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("kpasswd", 464),
    ("submissions", 465),
    ("smtps", 465),
    ("ssmtp", 465),
    ("isakmp", 500),
    ("exec", 512),
    ("biff", 512),
    ("login", 513),
    ("who", 513),
    ("shell", 514),
    ("cmd", 514),
    ("syslog", 514),
    ("printer", 515),
    ("spooler", 515),
    ("talk", 517),
    ("ntalk", 518),
    ("route", 520),
    ("router", 520),
    ("routed", 520),
    ("uucp", 540),
    ("klogin", 543),
    ("kshell", 544),
    ("dhcpv6-client", 546),
    ("dhcpv6-server", 547),
    ("afpovertcp", 548),
    ("nntps", 563),
    ("submission", 587),
    ("ldaps", 636),
    ("kerberos-adm", 749),
    ("rsync", 873),
    ("ftps-data", 989),
    ("ftps", 990),
    ("telnets", 992),
    ("imaps", 993),
    ("pop3s", 995),
    ("socks", 1080),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("ms-sql-m", 1434),
    ("l2tp", 1701),
    ("l2f", 1701),
    ("pptp", 1723),
    ("radius", 1812),
    ("radius-acct", 1813),
    ("radacct", 1813),
    ("nfs", 2049),
    ("cvspserver", 2401),
    ("mysql", 3306),
    ("svn", 3690),
    ("ipsec-nat-t", 4500),
    ("sip", 5060),
    ("sip-tls", 5061),
    ("xmpp-client", 5222),
    ("xmpp-server", 5269),
    ("postgresql", 5432),
    ("x11", 6000),
    ("http-alt", 8080),
    ("webcache", 8080),
];

/// Protocol number for a name or alias (case-insensitive): `tcp` → 6, `icmp6` → 58.
pub fn protocol_by_name(name: &str) -> Option<u8> {
    PROTOCOLS
        .iter()
        .find(|(n, _, aliases)| {
            n.eq_ignore_ascii_case(name) || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
        .map(|&(_, p, _)| p)
}

/// Canonical name of a protocol number, if the built-in table has one.
pub fn protocol_name(proto: u8) -> Option<&'static str> {
    PROTOCOLS
        .iter()
        .find(|(_, p, _)| *p == proto)
        .map(|&(n, _, _)| n)
}

/// Port for a service name (case-insensitive): `telnet` → 23, `ipsec-nat-t` → 4500.
pub fn service_by_name(name: &str) -> Option<u16> {
    SERVICES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, p)| p)
}

/// Every built-in service name with its port.
pub fn services() -> &'static [(&'static str, u16)] {
    SERVICES
}

/// Every built-in protocol: canonical name, number, aliases.
pub fn protocols() -> &'static [(&'static str, u8, &'static [&'static str])] {
    PROTOCOLS
}

/// An ICMP type name: the type and the protocol (1 or 58) it belongs to.
pub(crate) fn icmp_type_by_name(name: &str) -> Option<(u8, u8)> {
    icmpv4::type_by_name(name)
        .map(|t| (t, ICMP))
        .or_else(|| icmpv6::type_by_name(name).map(|t| (t, ICMPV6)))
}

/// An ICMP code name: the code, the type it belongs to and the protocol.
pub(crate) fn icmp_code_by_name(name: &str) -> Option<(u8, u8, u8)> {
    if let Some(c) = icmpv4::code_by_name(name) {
        return Some((c, icmpv4::message::DST_UNREACHABLE, ICMP));
    }
    icmpv6::code_by_name(name).map(|(t, c)| (c, t, ICMPV6))
}

/// The name of a type under a protocol, if it has one.
pub(crate) fn icmp_type_name(ulp: u8, t: u8) -> Option<&'static str> {
    match ulp {
        ICMP => icmpv4::type_name(t),
        ICMPV6 => icmpv6::type_name(t),
        _ => None,
    }
}

/// The name of a code of a type under a protocol, if it has one.
pub(crate) fn icmp_code_name(ulp: u8, t: u8, c: u8) -> Option<&'static str> {
    match ulp {
        ICMP => icmpv4::code_name(t, c),
        ICMPV6 => icmpv6::code_name(t, c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn tables_are_consistent() {
        for (i, (n, p, aliases)) in PROTOCOLS.iter().enumerate() {
            assert_eq!(protocol_by_name(n), Some(*p), "{n}");
            assert_eq!(protocol_name(*p), Some(*n));
            for a in *aliases {
                assert_eq!(protocol_by_name(a), Some(*p), "{a}");
            }
            if i > 0 {
                assert!(PROTOCOLS[i - 1].1 < *p, "protocols in number order");
            }
        }
        for (n, p) in SERVICES {
            assert_eq!(service_by_name(n), Some(*p), "{n} is listed twice");
            assert!(*p != 0);
        }
        assert_eq!(protocol_by_name("TCP"), Some(6));
        assert_eq!(protocol_by_name("IPv6-ICMP"), Some(58));
        assert_eq!(service_by_name("Telnet"), Some(23));
        assert_eq!(protocol_by_name("nope"), None);
        assert_eq!(protocol_name(0), None);
    }

    #[test]
    fn icmp_names() {
        assert_eq!(icmp_type_by_name("echo"), Some((8, ICMP)));
        assert_eq!(icmp_type_by_name("router-sol6"), Some((133, ICMPV6)));
        assert_eq!(icmp_code_by_name("needfrag"), Some((4, 3, ICMP)));
        assert_eq!(icmp_code_by_name("unreq-opt6"), Some((2, 4, ICMPV6)));
        assert_eq!(icmp_type_name(ICMPV6, 136), Some("neigh-ad6"));
        assert_eq!(icmp_type_name(6, 8), None);
        assert_eq!(icmp_code_name(ICMP, 3, 3), Some("port-unr"));
        assert_eq!(icmp_code_name(ICMP, 11, 0), None);
    }
}
