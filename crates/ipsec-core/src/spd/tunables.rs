//! The policy tunables (Solaris 11.4 `ipadm` protocol `ip` properties; illumos
//! `ip_tunables.c` defaults).

use core::fmt;

/// Policy tunables. `Default` gives the Solaris defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tunables {
    /// `icmp-accept-clear` (illumos `_icmp_accept_clear_messages`, default on): ICMP the IP
    /// stack itself consumes (echo requests it answers, errors and ND it processes) is accepted
    /// in clear without a policy check; the echo reply then goes out the way the request came in
    /// (clear for a clear request). When off, that ICMP goes through the policy check like any
    /// other packet. Delivery to sockets and latched connections is decided by the accept/reject
    /// tables of [`icmp`](super::icmp) either way.
    pub icmp_accept_clear: bool,
    /// `igmp-accept-clear` (default on): IGMP consumed by the stack is accepted in clear without
    /// a policy check.
    pub igmp_accept_clear: bool,
    /// `pim-accept-clear` (illumos `_pim_accept_clear_messages`, default on): the same for PIM.
    pub pim_accept_clear: bool,
    /// `persock-require-priv` (default on): an unprivileged socket may not choose algorithms the
    /// system policy does not use. Bypass (`IPSEC_PREF_NEVER`) needs privilege regardless.
    pub persock_require_priv: bool,
    /// The IKE port always bypassed for the key manager (UDP 500).
    pub ike_port: u16,
    /// Our NAT-T port, always bypassed too (UDP 4500).
    pub natt_port: u16,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            icmp_accept_clear: true,
            igmp_accept_clear: true,
            pim_accept_clear: true,
            persock_require_priv: true,
            ike_port: 500,
            natt_port: crate::engine::NATT_PORT,
        }
    }
}

/// An error setting a tunable by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunableError {
    /// No tunable of that name.
    UnknownName(String),
    /// A value the tunable cannot take.
    BadValue(String),
}

impl fmt::Display for TunableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunableError::UnknownName(n) => write!(f, "unknown property {n}"),
            TunableError::BadValue(v) => write!(f, "invalid property value {v}"),
        }
    }
}

impl std::error::Error for TunableError {}

fn parse_bool(v: &str) -> Result<bool, TunableError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "1" | "true" | "yes" => Ok(true),
        "off" | "0" | "false" | "no" => Ok(false),
        _ => Err(TunableError::BadValue(v.to_owned())),
    }
}

fn show(b: bool) -> String {
    if b { "on" } else { "off" }.to_owned()
}

impl Tunables {
    /// The property names, in `ipadm show-prop` order.
    pub const NAMES: &'static [&'static str] = &[
        "icmp-accept-clear",
        "igmp-accept-clear",
        "pim-accept-clear",
        "persock-require-priv",
        "ike-port",
        "natt-port",
    ];

    /// `ipadm set-prop -p name=value ip`: booleans take on/off (also 1/0, true/false).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), TunableError> {
        let port = |v: &str| {
            v.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| TunableError::BadValue(v.to_owned()))
        };
        match name {
            "icmp-accept-clear" => self.icmp_accept_clear = parse_bool(value)?,
            "igmp-accept-clear" => self.igmp_accept_clear = parse_bool(value)?,
            "pim-accept-clear" => self.pim_accept_clear = parse_bool(value)?,
            "persock-require-priv" => self.persock_require_priv = parse_bool(value)?,
            "ike-port" => self.ike_port = port(value)?,
            "natt-port" => self.natt_port = port(value)?,
            _ => return Err(TunableError::UnknownName(name.to_owned())),
        }
        Ok(())
    }

    /// `ipadm show-prop -p name ip`: the current value as text.
    pub fn get(&self, name: &str) -> Result<String, TunableError> {
        Ok(match name {
            "icmp-accept-clear" => show(self.icmp_accept_clear),
            "igmp-accept-clear" => show(self.igmp_accept_clear),
            "pim-accept-clear" => show(self.pim_accept_clear),
            "persock-require-priv" => show(self.persock_require_priv),
            "ike-port" => self.ike_port.to_string(),
            "natt-port" => self.natt_port.to_string(),
            _ => return Err(TunableError::UnknownName(name.to_owned())),
        })
    }
}
