//! Why the policy engine dropped a packet, named after the Solaris `ipdrop.h` SPD counters
//! (`ipds_spd_*`), so that `kstat ip:0:ipdrop` readers find the same words.

use core::fmt;

macro_rules! policy_drops {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// A policy-side drop reason. [`name`](Self::name) gives the Solaris counter name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PolicyDrop {
            $( $(#[$doc])* $variant, )*
        }

        impl PolicyDrop {
            /// Every reason, in counter order.
            pub const ALL: &'static [PolicyDrop] = &[ $( PolicyDrop::$variant, )* ];

            /// The Solaris-style counter name, e.g. `spd_got_clear`.
            pub const fn name(self) -> &'static str {
                match self { $( PolicyDrop::$variant => $name, )* }
            }

            /// Looks a reason up by its counter name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|r| r.name() == name)
            }
        }
    };
}

policy_drops! {
    /// Cleartext packet where policy requires protection (`ipds_spd_got_clear`, "unprotected
    /// not accepted").
    GotClear => "spd_got_clear",
    /// Protected packet where policy wants cleartext or has no entry (`ipds_spd_got_secure`,
    /// "expected clear, got protected" / IPSEC_POLICY_NOT_NEEDED).
    GotSecure => "spd_got_secure",
    /// The AH SA's algorithm or key size is not one the policy accepts (`ipds_spd_bad_ahalg`).
    BadAhAlg => "spd_bad_ahalg",
    /// The ESP SA's encryption algorithm or key size is not acceptable (`ipds_spd_bad_espealg`).
    BadEspEAlg => "spd_bad_espealg",
    /// The ESP SA's authentication algorithm or key size is not acceptable
    /// (`ipds_spd_bad_espaalg`).
    BadEspAAlg => "spd_bad_espaalg",
    /// AH and ESP SAs of one packet carry different identities (`ipds_spd_ahesp_diffid`).
    AhEspDiffId => "spd_ahesp_diffid",
    /// The inner packet does not match the AH SA's selectors or unique binding
    /// (`ipds_spd_ah_innermismatch`).
    AhInnerMismatch => "spd_ah_innermismatch",
    /// The inner packet does not match the ESP SA's selectors or unique binding
    /// (`ipds_spd_esp_innermismatch`).
    EspInnerMismatch => "spd_esp_innermismatch",
    /// A `drop` rule matched (`ipds_spd_explicit`, "blocked by policy").
    Explicit => "spd_explicit",
    /// AH present where the policy does not use AH (`ipds_spd_got_ah`).
    GotAh => "spd_got_ah",
    /// ESP present where the policy does not use ESP (`ipds_spd_got_esp`).
    GotEsp => "spd_got_esp",
    /// Tunnel-mode (self-encapsulated) packet where policy expects transport mode
    /// (`ipds_spd_got_selfencap`).
    GotSelfEncap => "spd_got_selfencap",
    /// Transport-mode packet where policy requires self-encapsulation / tunnel mode
    /// (`ipds_spd_bad_selfencap`).
    BadSelfEncap => "spd_bad_selfencap",
    /// Intra-machine packet whose outbound protection does not satisfy the inbound policy
    /// (`ipds_spd_loopback_mismatch`).
    LoopbackMismatch => "spd_loopback_mismatch",
    /// A tunnel with policy has no rule for the packet (`ipds_spd_no_policy`).
    NoPolicy => "spd_no_policy",
    /// A latched connection received an AH SA with other identities than the one it latched
    /// (`ipds_spd_ah_badid`).
    AhBadId => "spd_ah_badid",
    /// A latched connection received an ESP SA with other identities than the one it latched
    /// (`ipds_spd_esp_badid`).
    EspBadId => "spd_esp_badid",
    /// The packet description could not be built (truncated header, mixed address families).
    MalformedPacket => "spd_malformed_packet",
    /// The SA reported by inbound processing no longer exists (deleted in between).
    StaleSa => "spd_stale_sa",
    /// The inbound SA bundle is not one policy can express (two SAs of one protocol).
    BadBundle => "spd_bad_bundle",
}

impl fmt::Display for PolicyDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<PolicyDrop> for &'static str {
    fn from(r: PolicyDrop) -> Self {
        r.name()
    }
}

impl From<PolicyDrop> for String {
    fn from(r: PolicyDrop) -> Self {
        r.name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_resolvable() {
        let mut names: Vec<_> = PolicyDrop::ALL.iter().map(|r| r.name()).collect();
        for r in PolicyDrop::ALL {
            assert_eq!(PolicyDrop::from_name(r.name()), Some(*r));
            assert!(r.name().starts_with("spd_"));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PolicyDrop::ALL.len());
    }
}
