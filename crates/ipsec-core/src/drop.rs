//! Drop reasons, modelled on the Solaris `ipdrop.h` taxonomy, and the counters that record them.
//!
//! Every packet the data path discards carries exactly one [`DropReason`]. The names follow the
//! Solaris kstat counter names (`esp_no_sa`, `esp_replay`, `ah_bad_auth`, ...) so that an operator who
//! knows `kstat ip:0:ipdrop` finds the same words here. Reasons Solaris does not have (ESN, NAT-T
//! keepalive, dummy packets, sequence exhaustion, fragment reassembly limits) follow the same style.

use core::fmt;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// Why a packet was dropped.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[ $( DropReason::$variant, )* ];
            /// Number of distinct reasons (the length of a counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// The Solaris-style counter name, e.g. `esp_bad_auth`.
            pub const fn name(self) -> &'static str {
                match self { $( DropReason::$variant => $name, )* }
            }

            /// Looks a reason up by its counter name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|r| r.name() == name)
            }
        }
    };
}

drop_reasons! {
    /// Packet shorter than its headers claim, or a header inconsistent with the buffer.
    MalformedPacket => "spd_malformed_packet",
    /// A fragment that cannot be reassembled (bad offsets, bad length).
    MalformedFrag => "spd_malformed_frag",
    /// Fragments overlapping each other.
    OverlapFrag => "spd_overlap_frag",
    /// Too many fragments queued for reassembly (memory bound).
    MaxFrags => "spd_max_frags",
    /// Reassembly did not complete in time.
    ExpiredFrags => "spd_expired_frags",
    /// A fragment reached ESP/AH processing (RFC 4303 §3.4.1).
    EvilFrag => "spd_evil_frag",
    /// ESP: no SA for <ESP, destination, SPI>.
    EspNoSa => "esp_no_sa",
    /// ESP: sequence number outside the window or already seen (cheap check before the ICV).
    EspEarlyReplay => "esp_early_replay",
    /// ESP: replay detected after the ICV check (a duplicate that raced its twin).
    EspReplay => "esp_replay",
    /// ESP: byte or packet lifetime exhausted (hard limit).
    EspBytesExpire => "esp_bytes_expire",
    /// ESP: pad length larger than the payload.
    EspBadPadlen => "esp_bad_padlen",
    /// ESP: padding bytes are not 1, 2, 3, ...
    EspBadPadding => "esp_bad_padding",
    /// ESP: ICV (or AEAD tag) verification failed.
    EspBadAuth => "esp_bad_auth",
    /// ESP: cipher failure (length not a block multiple, ...).
    EspCryptoFailed => "esp_crypto_failed",
    /// ESP: packet too short for header, IV, trailer and ICV.
    EspBadLength => "esp_bad_length",
    /// ESP: next header 59 (dummy/TFC packet): discarded silently, counted.
    EspDummy => "esp_dummy",
    /// ESP: next header does not match the SA's mode (e.g. IP-in-IP on a transport SA).
    EspBadNextHeader => "esp_bad_next_header",
    /// ESP-in-UDP: NAT-T keepalive (one 0xFF byte): consumed, counted.
    EspNatTKeepalive => "esp_nat_t_ka",
    /// ESP-in-UDP: non-ESP marker (IKE) on the data path.
    EspNatTIke => "esp_nat_t_ipsec",
    /// Outbound: the sequence number space is exhausted; the SA is finished and must be replaced.
    EspSeqExhausted => "esp_iv_wrap",
    /// AH: no SA for <AH, destination, SPI>.
    AhNoSa => "ah_no_sa",
    /// AH: early replay (before the ICV).
    AhEarlyReplay => "ah_early_replay",
    /// AH: replay after the ICV.
    AhReplay => "ah_replay",
    /// AH: byte or packet lifetime exhausted.
    AhBytesExpire => "ah_bytes_expire",
    /// AH: ICV mismatch.
    AhBadAuth => "ah_bad_auth",
    /// AH: header length inconsistent with the SA's ICV, or packet truncated.
    AhBadLength => "ah_bad_length",
    /// AH: malformed IPv4 options.
    AhBadV4Opts => "ah_bad_v4_opts",
    /// AH: malformed IPv6 extension headers.
    AhBadV6Hdrs => "ah_bad_v6_hdrs",
    /// AH: outbound sequence space exhausted.
    AhSeqExhausted => "ah_seq_wrap",
    /// The SA exists but is larval or dead.
    SaNotMature => "sadb_not_mature",
    /// The SA's hard lifetime has passed.
    SaExpired => "sadb_expired",
    /// Inner packet of a tunnel does not match the SA's inner selectors (RFC 4301 §5.2).
    InnerMismatch => "spd_esp_innermismatch",
    /// Outer ECN CE on a not-ECT inner packet (RFC 6040 §4.2).
    EcnDrop => "ip_ecn_drop",
    /// Packet plus IPsec overhead exceeds the path MTU (an ICMP error is generated for the sender).
    TooBig => "ip_too_big",
    /// No room in the caller's buffer to add headers or trailers.
    NoBufferSpace => "esp_nomem",
    /// Protocol of the outer packet is neither ESP, AH nor UDP-encapsulated ESP.
    NotIpsec => "ip_not_ipsec",
}

/// Every drop-reason name the data path counts: the engine's [`DropReason`]s and the policy
/// engine's [`PolicyDrop`](crate::spd::PolicyDrop)s (some names are shared, e.g.
/// `spd_malformed_packet`), sorted and without duplicates.
pub fn all_reason_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = DropReason::ALL
        .iter()
        .map(|r| r.name())
        .chain(crate::spd::PolicyDrop::ALL.iter().map(|r| r.name()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A counter per drop reason. The counters are allocated on the first drop, so the
/// counters of an SA that never drops take one pointer.
#[derive(Clone, Default)]
pub struct DropCounters {
    counts: Option<Box<[u64; DropReason::COUNT]>>,
}

impl PartialEq for DropCounters {
    fn eq(&self, other: &Self) -> bool {
        DropReason::ALL
            .iter()
            .all(|r| self.get(*r) == other.get(*r))
    }
}

impl Eq for DropCounters {}

impl DropCounters {
    /// Adds one to `reason`'s counter.
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        let counts = self
            .counts
            .get_or_insert_with(|| Box::new([0; DropReason::COUNT]));
        if let Some(c) = counts.get_mut(reason as usize) {
            *c = c.wrapping_add(1);
        }
    }

    /// The counter for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts
            .as_ref()
            .and_then(|c| c.get(reason as usize).copied())
            .unwrap_or(0)
    }

    /// Sum of all counters.
    pub fn total(&self) -> u64 {
        self.counts
            .as_ref()
            .map_or(0, |c| c.iter().fold(0u64, |a, b| a.wrapping_add(*b)))
    }

    /// Non-zero counters, in counter order.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .copied()
            .enumerate()
            .map(|(i, r)| {
                (
                    r,
                    self.counts
                        .as_ref()
                        .and_then(|c| c.get(i).copied())
                        .unwrap_or(0),
                )
            })
            .filter(|(_, n)| *n != 0)
    }
}

impl fmt::Debug for DropCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.nonzero().map(|(r, n)| (r.name(), n)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_resolve() {
        for r in DropReason::ALL {
            assert_eq!(DropReason::from_name(r.name()), Some(*r));
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn counters_count() {
        let mut c = DropCounters::default();
        c.count(DropReason::EspReplay);
        c.count(DropReason::EspReplay);
        c.count(DropReason::AhBadAuth);
        assert_eq!(c.get(DropReason::EspReplay), 2);
        assert_eq!(c.total(), 3);
        assert_eq!(c.nonzero().count(), 2);
    }
}
