//! Rule priorities exactly as Solaris computes them (ipsecconf.c, ipsec_impl.h): a base that
//! counts down from `0x000fffff` in file order, OR'ed with the bypass, ESP and AH boosts of the
//! rule's actions; per-socket policy sits at `0x1000000`, above every global rule. The highest
//! priority wins.

use core::fmt;

use super::model::Action;

/// `BYPASS_POLICY_BOOST`: bypass/pass rules are checked before every other rule.
pub const BYPASS_POLICY_BOOST: u32 = 0x0080_0000;
/// `ESP_POLICY_BOOST`: rules using ESP in any alternative.
pub const ESP_POLICY_BOOST: u32 = 0x0040_0000;
/// `AH_POLICY_BOOST`: rules using AH in any alternative.
pub const AH_POLICY_BOOST: u32 = 0x0020_0000;
/// `INITIAL_BASE_PRIORITY`: the base of the first rule of a file; each later rule is one less.
pub const INITIAL_BASE_PRIORITY: u32 = 0x000f_ffff;
/// `IPSEC_PRIO_SOCKET`: per-socket policy ("takes precedence... this priority value insures
/// it").
pub const IPSEC_PRIO_SOCKET: u32 = 0x0100_0000;
/// The largest number of rules one policy can hold (every base stays at least 1).
pub const MAX_RULES: usize = INITIAL_BASE_PRIORITY as usize;

/// A rule priority broken down into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Priority {
    /// `0x000fffff - index` (0 for per-socket policy).
    pub base: u32,
    /// The bypass boost applies.
    pub bypass: bool,
    /// The ESP boost applies.
    pub esp: bool,
    /// The AH boost applies.
    pub ah: bool,
    /// Per-socket policy (`IPSEC_PRIO_SOCKET`).
    pub socket: bool,
}

impl Priority {
    /// The priority of the rule at position `index` (file order, 0-based) with `action`.
    /// `index` must be below [`MAX_RULES`] (compilation refuses larger policies).
    pub fn for_rule(index: usize, action: &Action) -> Self {
        let base = INITIAL_BASE_PRIORITY.saturating_sub(u32::try_from(index).unwrap_or(u32::MAX));
        let (mut esp, mut ah) = (false, false);
        if let Action::Ipsec(alts) = action {
            for p in alts {
                esp |= p.esp.is_some();
                ah |= p.ah.is_some();
            }
        }
        Self {
            base,
            bypass: matches!(action, Action::Bypass),
            esp,
            ah,
            socket: false,
        }
    }

    /// The priority of per-socket policy.
    pub const fn socket() -> Self {
        Self {
            base: 0,
            bypass: false,
            esp: false,
            ah: false,
            socket: true,
        }
    }

    /// The 32-bit value compared by the lookup.
    pub const fn value(&self) -> u32 {
        if self.socket {
            return IPSEC_PRIO_SOCKET;
        }
        let mut v = self.base;
        if self.bypass {
            v |= BYPASS_POLICY_BOOST;
        }
        if self.esp {
            v |= ESP_POLICY_BOOST;
        }
        if self.ah {
            v |= AH_POLICY_BOOST;
        }
        v
    }
}

impl fmt::Display for Priority {
    /// `0x4ffffe (base 0xffffe + ESP 0x400000)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.socket {
            return write!(f, "{IPSEC_PRIO_SOCKET:#x} (per-socket policy)");
        }
        write!(f, "{:#x} (base {:#x}", self.value(), self.base)?;
        if self.bypass {
            write!(f, " + bypass {BYPASS_POLICY_BOOST:#x}")?;
        }
        if self.esp {
            write!(f, " + ESP {ESP_POLICY_BOOST:#x}")?;
        }
        if self.ah {
            write!(f, " + AH {AH_POLICY_BOOST:#x}")?;
        }
        f.write_str(")")
    }
}
