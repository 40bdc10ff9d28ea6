//! Traffic selector arithmetic for narrowing (RFC 7296 §2.9).
//!
//! The responder answers with the part of the proposed selectors that its policy allows:
//! the pairwise intersections of the proposed list with its own. The initiator accepts an
//! answer only if every selector in it lies inside one it proposed.
//!
//! An IP protocol of 0 means any protocol; ports and addresses are inclusive ranges. A
//! selector whose start is above its end is empty.

use crate::wire::TrafficSelector;

fn same_family(a: &TrafficSelector, b: &TrafficSelector) -> bool {
    a.start.is_ipv4() == b.start.is_ipv4()
        && a.end.is_ipv4() == b.end.is_ipv4()
        && a.start.is_ipv4() == a.end.is_ipv4()
}

/// Whether the selector matches nothing.
#[must_use]
pub fn is_empty(s: &TrafficSelector) -> bool {
    s.start_port > s.end_port || s.start > s.end || s.start.is_ipv4() != s.end.is_ipv4()
}

/// The intersection of two selectors, if not empty.
#[must_use]
pub fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    if !same_family(a, b) {
        return None;
    }
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let s = TrafficSelector {
        ip_protocol,
        start_port: a.start_port.max(b.start_port),
        end_port: a.end_port.min(b.end_port),
        start: a.start.max(b.start),
        end: a.end.min(b.end),
    };
    (!is_empty(&s)).then_some(s)
}

/// Whether every packet `inner` matches is matched by `outer`.
#[must_use]
pub fn is_subset(inner: &TrafficSelector, outer: &TrafficSelector) -> bool {
    is_empty(inner)
        || (same_family(inner, outer)
            && (outer.ip_protocol == 0 || inner.ip_protocol == outer.ip_protocol)
            && outer.start_port <= inner.start_port
            && inner.end_port <= outer.end_port
            && outer.start <= inner.start
            && inner.end <= outer.end)
}

/// The narrowed list: every non-empty intersection of a proposed selector with an allowed
/// one, in the order proposed.
#[must_use]
pub fn narrow(proposed: &[TrafficSelector], allowed: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for p in proposed {
        for a in allowed {
            if let Some(x) = intersect(p, a) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
    }
    out
}

/// Whether each selector of `answer` lies inside one of `proposed` (and there is one).
#[must_use]
pub fn within(answer: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !answer.is_empty()
        && answer
            .iter()
            .all(|a| !is_empty(a) && proposed.iter().any(|p| is_subset(a, p)))
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn v4(p: u8, ports: (u16, u16), a: [u8; 4], b: [u8; 4]) -> TrafficSelector {
        TrafficSelector {
            ip_protocol: p,
            start_port: ports.0,
            end_port: ports.1,
            start: IpAddr::V4(Ipv4Addr::from(a)),
            end: IpAddr::V4(Ipv4Addr::from(b)),
        }
    }

    #[test]
    fn narrowing_examples() {
        let any = v4(0, (0, 65535), [0, 0, 0, 0], [255, 255, 255, 255]);
        let net = v4(0, (0, 65535), [10, 1, 0, 0], [10, 1, 255, 255]);
        let web = v4(6, (443, 443), [10, 1, 2, 0], [10, 1, 2, 255]);
        assert_eq!(intersect(&any, &net), Some(net));
        assert_eq!(intersect(&net, &web), Some(web));
        assert_eq!(narrow(&[any], &[web, net]), vec![web, net]);
        let udp = v4(17, (0, 65535), [10, 1, 0, 0], [10, 1, 255, 255]);
        assert_eq!(intersect(&udp, &web), None, "TCP and UDP do not meet");
        let other = v4(0, (0, 65535), [10, 2, 0, 0], [10, 2, 255, 255]);
        assert_eq!(intersect(&net, &other), None);
        let six = TrafficSelector {
            start: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            end: IpAddr::V6(Ipv6Addr::from([0xff; 16])),
            ..any
        };
        assert_eq!(intersect(&any, &six), None, "families never meet");
        assert!(within(&[web], &[net]));
        assert!(!within(&[net], &[web]));
        assert!(!within(&[], &[net]));
        assert!(narrow(&[net], &[other]).is_empty());
    }

    fn sel() -> impl Strategy<Value = TrafficSelector> {
        (0u8..3, 0u16..8, 0u16..8, any::<[u8; 2]>(), any::<[u8; 2]>()).prop_map(
            |(p, sp, ep, a, b)| v4(p, (sp, ep), [10, 0, 0, a[0] % 8], [10, 0, 0, b[0] % 8]),
        )
    }

    fn point() -> impl Strategy<Value = (u8, u16, u8)> {
        (1u8..3, 0u16..8, 0u8..8)
    }

    fn matches(s: &TrafficSelector, (p, port, host): (u8, u16, u8)) -> bool {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, host));
        (s.ip_protocol == 0 || s.ip_protocol == p)
            && s.start_port <= port
            && port <= s.end_port
            && s.start <= a
            && a <= s.end
    }

    proptest! {
        #[test]
        fn intersection_is_exactly_the_common_packets(a in sel(), b in sel(), x in point()) {
            let both = matches(&a, x) && matches(&b, x);
            let i = intersect(&a, &b);
            prop_assert_eq!(i.is_some_and(|i| matches(&i, x)), both);
            if let Some(i) = i {
                prop_assert!(is_subset(&i, &a) && is_subset(&i, &b));
            }
        }

        #[test]
        fn subset_means_every_packet(a in sel(), b in sel(), x in point()) {
            if is_subset(&a, &b) && matches(&a, x) {
                prop_assert!(matches(&b, x));
            }
        }
    }
}
