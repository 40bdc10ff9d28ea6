//! Tunable properties, `ipadm`-style: the Solaris IPsec tunables the daemon implements,
//! readable and settable at run time over the control socket and persisted in a file.
//!
//! ```text
//!  ipsecadm set-prop -p NAME=VALUE ──"prop set NAME=VALUE"──► handle ──validate──►
//!     persistent? write --props-file atomically (0600) ──► current value ──apply──►
//!        ip:    Spd tunables (checked per packet; the nft table follows at the next turn)
//!        ipsec: KeyEngine config (new larval SAs and ACQUIREs), ACQUIRE proposals
//!        esp:   the data plane's NAT keepalive timer and inbound padding check
//! ```
//!
//! | PROTO | property | default | possible | Solaris | used by |
//! |---|---|---|---|---|---|
//! | ip | `icmp-accept-clear` | on | on,off | `_icmp_accept_clear_messages` | inbound SPD check, nft table |
//! | ip | `igmp-accept-clear` | on | on,off | `_igmp_accept_clear_messages` | inbound SPD check, nft table |
//! | ip | `pim-accept-clear` | on | on,off | `_pim_accept_clear_messages` | inbound SPD check, nft table |
//! | ip | `persock-require-priv` | on | on,off | `persock-require-priv` | per-socket policy check |
//! | ipsec | `replay-size` | 64 | 1-255 | `ipsec{esp,ah}_replay_size` | replay counter of ACQUIRE proposals |
//! | ipsec | `acquire-timeout` | 15 | 1-4294967295 | `ipsec{esp,ah}_acquire_timeout` | how long an ACQUIRE suppresses another |
//! | ipsec | `larval-timeout` | 90 | 1-4294967295 | `ipsec{esp,ah}_larval_timeout` | how long a GETSPI SA waits for its UPDATE |
//! | ipsec | `default-soft-addtime` | 24000 | 0-4294967295 | `ipsec{esp,ah}_default_soft_addtime` | soft lifetime of ACQUIRE proposals |
//! | ipsec | `default-hard-addtime` | 28800 | 0-4294967295 | `ipsec{esp,ah}_default_hard_addtime` | hard lifetime of ACQUIRE proposals |
//! | esp | `nat-keepalive-interval` | 20 | 0-600 | `ipsecesp_nat_keepalive_interval` | seconds between NAT keepalives (0: none), sent for outbound SAs flagged `NATT_LOC` |
//! | esp | `padding-check` | on | on,off | `ipsecesp_padding_check` | inbound ESP checks the padding bytes (1, 2, 3, ...) of SAs that do not opt out |
//!
//! Solaris keeps separate `ipsecesp_*` and `ipsecah_*` sets; this daemon has one key engine
//! for both protocols, so the shared ones are listed once under protocol `ipsec`.
//! `replay-size` stops at 255 because the proposal's replay field is 8 bits. A soft
//! lifetime may not exceed a non-zero hard one. `padding-check` is the host-wide switch; an
//! SA can still opt out on its own (`SaConfig::padding_check`).
//!
//! Values: the start value of each property is its default, or the ipsecd option that
//! names it (`--larval-timeout`, `--acquire-timeout`, `--keepalive-interval`); the
//! properties file (`--props-file`, lines `NAME=VALUE`, `#` comments) overrides that at
//! start and on reload. `set` without `-t` writes the file first (atomically) and changes
//! the value only when the write worked; `-t` changes the running value only. `reset`
//! goes back to the default (and, without `-t`, removes the line from the file).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::core::Shared;
use crate::server::Server;

/// What values a property takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `on` or `off` (stored as 1 or 0).
    Bool,
    /// An integer in `min..=max`.
    Range(u64, u64),
}

/// One property.
#[derive(Debug)]
struct Def {
    proto: &'static str,
    name: &'static str,
    kind: Kind,
    default: u64,
}

/// Indexes into [`DEFS`].
pub const ICMP_ACCEPT_CLEAR: usize = 0;
/// `igmp-accept-clear`.
pub const IGMP_ACCEPT_CLEAR: usize = 1;
/// `pim-accept-clear`.
pub const PIM_ACCEPT_CLEAR: usize = 2;
/// `persock-require-priv`.
pub const PERSOCK_REQUIRE_PRIV: usize = 3;
/// `replay-size`.
pub const REPLAY_SIZE: usize = 4;
/// `acquire-timeout`.
pub const ACQUIRE_TIMEOUT: usize = 5;
/// `larval-timeout`.
pub const LARVAL_TIMEOUT: usize = 6;
/// `default-soft-addtime`.
pub const SOFT_ADDTIME: usize = 7;
/// `default-hard-addtime`.
pub const HARD_ADDTIME: usize = 8;
/// `nat-keepalive-interval`.
pub const NAT_KEEPALIVE_INTERVAL: usize = 9;
/// `padding-check`.
pub const PADDING_CHECK: usize = 10;

const N: usize = 11;

const U32: u64 = u32::MAX as u64;

const DEFS: [Def; N] = [
    Def {
        proto: "ip",
        name: "icmp-accept-clear",
        kind: Kind::Bool,
        default: 1,
    },
    Def {
        proto: "ip",
        name: "igmp-accept-clear",
        kind: Kind::Bool,
        default: 1,
    },
    Def {
        proto: "ip",
        name: "pim-accept-clear",
        kind: Kind::Bool,
        default: 1,
    },
    Def {
        proto: "ip",
        name: "persock-require-priv",
        kind: Kind::Bool,
        default: 1,
    },
    Def {
        proto: "ipsec",
        name: "replay-size",
        kind: Kind::Range(1, 255),
        default: 64,
    },
    Def {
        proto: "ipsec",
        name: "acquire-timeout",
        kind: Kind::Range(1, U32),
        default: 15,
    },
    Def {
        proto: "ipsec",
        name: "larval-timeout",
        kind: Kind::Range(1, U32),
        default: 90,
    },
    Def {
        proto: "ipsec",
        name: "default-soft-addtime",
        kind: Kind::Range(0, U32),
        default: 24_000,
    },
    Def {
        proto: "ipsec",
        name: "default-hard-addtime",
        kind: Kind::Range(0, U32),
        default: 28_800,
    },
    Def {
        proto: "esp",
        name: "nat-keepalive-interval",
        kind: Kind::Range(0, 600),
        default: 20,
    },
    Def {
        proto: "esp",
        name: "padding-check",
        kind: Kind::Bool,
        default: 1,
    },
];

/// The protocol words, in listing order.
const PROTOS: [&str; 3] = ["ip", "ipsec", "esp"];

impl Def {
    fn parse(&self, v: &str) -> Result<u64, String> {
        let bad = |want: String| format!("invalid value {v:?} for {}: expected {want}", self.name);
        match self.kind {
            Kind::Bool => match v {
                "on" => Ok(1),
                "off" => Ok(0),
                _ => Err(bad("on or off".into())),
            },
            Kind::Range(min, max) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| bad(format!("an integer from {min} to {max}"))),
        }
    }

    fn show(&self, v: u64) -> String {
        match self.kind {
            Kind::Bool if v != 0 => "on".into(),
            Kind::Bool => "off".into(),
            Kind::Range(..) => v.to_string(),
        }
    }

    fn possible(&self) -> String {
        match self.kind {
            Kind::Bool => "on,off".into(),
            Kind::Range(min, max) => format!("{min}-{max}"),
        }
    }
}

fn index(name: &str) -> Result<usize, String> {
    DEFS.iter().position(|d| d.name == name).ok_or_else(|| {
        let all: Vec<&str> = DEFS.iter().map(|d| d.name).collect();
        format!("unknown property {name:?} (known: {})", all.join(", "))
    })
}

fn unknown_proto(p: &str) -> String {
    format!("unknown protocol {p:?} (expected {})", PROTOS.join(", "))
}

/// The property values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Props {
    current: [u64; N],
    /// The start values (defaults, or the ipsecd options that name a property).
    base: [u64; N],
    /// The values of the properties file.
    persistent: [Option<u64>; N],
    /// The properties file (`--props-file`).
    file: Option<PathBuf>,
}

impl Default for Props {
    fn default() -> Self {
        let d = DEFS.map(|d| d.default);
        Self {
            current: d,
            base: d,
            persistent: [None; N],
            file: None,
        }
    }
}

impl Props {
    /// Properties starting from the defaults with `overrides` (index, value) applied (the
    /// ipsecd options), then the properties file, if given and present.
    pub fn new(overrides: &[(usize, u64)], file: Option<PathBuf>) -> Result<Self, String> {
        let mut p = Self::default();
        for &(i, v) in overrides {
            let d = DEFS.get(i).ok_or("no such property")?;
            if let Kind::Range(min, max) = d.kind {
                if !(min..=max).contains(&v) {
                    return Err(format!(
                        "{} {v}: expected an integer from {min} to {max}",
                        d.name
                    ));
                }
            }
            if let (Some(b), Some(c)) = (p.base.get_mut(i), p.current.get_mut(i)) {
                *b = v;
                *c = v;
            }
        }
        p.file = file;
        p.reread()
    }

    /// These properties with the properties file read again: its values replace the
    /// persistent ones, and the current value of every property is its file value, else
    /// its start value. A missing file holds no values.
    pub fn reread(&self) -> Result<Self, String> {
        let mut p = self.clone();
        p.persistent = match &self.file {
            Some(f) if f.exists() => parse_file(f)?,
            _ => [None; N],
        };
        for i in 0..N {
            let v = p.persistent[i].unwrap_or(p.base[i]);
            p.current[i] = v;
        }
        check_lifetimes(&p.current)?;
        Ok(p)
    }

    /// The current value of property `i` (one of the index constants).
    pub fn get(&self, i: usize) -> u64 {
        self.current.get(i).copied().unwrap_or(0)
    }

    /// The properties file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The `ipadm show-prop` table of the properties named (all when empty) and of protocol
    /// `proto` (all when `None`).
    fn table(&self, names: &[usize], proto: Option<&str>) -> String {
        let mut rows = vec![[
            "PROTO".to_string(),
            "PROPERTY".into(),
            "PERM".into(),
            "CURRENT".into(),
            "PERSISTENT".into(),
            "DEFAULT".into(),
            "POSSIBLE".into(),
        ]];
        for (i, d) in DEFS.iter().enumerate() {
            if (!names.is_empty() && !names.contains(&i)) || proto.is_some_and(|p| p != d.proto) {
                continue;
            }
            rows.push([
                d.proto.into(),
                d.name.into(),
                "rw".into(),
                d.show(self.current[i]),
                self.persistent[i].map_or_else(|| "--".into(), |v| d.show(v)),
                d.show(d.default),
                d.possible(),
            ]);
        }
        let mut width = [0usize; 7];
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let mut o = String::new();
        for r in &rows {
            let mut line = String::new();
            for (k, (w, c)) in width.iter().zip(r).enumerate() {
                if k + 1 == r.len() {
                    line.push_str(c);
                } else {
                    let _ = write!(line, "{c:<w$} ");
                }
            }
            o.push_str(line.trim_end());
            o.push('\n');
        }
        o
    }

    /// The properties file's text for the persistent values.
    fn render(&self) -> String {
        let mut o = String::from(
            "# ipsecd properties (ipsecadm set-prop); NAME=VALUE per line, read at start and on reload.\n",
        );
        for (i, d) in DEFS.iter().enumerate() {
            if let Some(v) = self.persistent[i] {
                let _ = writeln!(o, "{}={}", d.name, d.show(v));
            }
        }
        o
    }
}

/// A soft lifetime longer than a non-zero hard one would never fire.
fn check_lifetimes(v: &[u64; N]) -> Result<(), String> {
    let (soft, hard) = (v[SOFT_ADDTIME], v[HARD_ADDTIME]);
    if hard != 0 && soft > hard {
        return Err(format!(
            "default-soft-addtime ({soft}) must not exceed default-hard-addtime ({hard})"
        ));
    }
    Ok(())
}

/// Reads a properties file: `NAME=VALUE` lines, blank lines and `#` comments. Errors name
/// the file, line and column and what was expected.
fn parse_file(path: &Path) -> Result<[Option<u64>; N], String> {
    let f = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{f}: {e}"))?;
    let mut out = [None; N];
    let mut lines = [0usize; N];
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let content = raw.split('#').next().unwrap_or("");
        let col = content.len() - content.trim_start().len() + 1;
        let content = content.trim();
        if content.is_empty() {
            continue;
        }
        let Some((name, value)) = content.split_once('=') else {
            return Err(format!(
                "{f}:{line}:{col}: unexpected {content:?}, expected NAME=VALUE"
            ));
        };
        let name = name.trim_end();
        let i = index(name).map_err(|e| format!("{f}:{line}:{col}: {e}"))?;
        let vcol = col + content.find('=').unwrap_or(0) + 1;
        let vtrim = value.trim_start();
        let vcol = vcol + value.len() - vtrim.len();
        let v = DEFS[i]
            .parse(vtrim.trim_end())
            .map_err(|e| format!("{f}:{line}:{vcol}: {e}"))?;
        if lines[i] != 0 {
            return Err(format!(
                "{f}:{line}:{col}: {name} is set twice (first on line {})",
                lines[i]
            ));
        }
        lines[i] = line;
        out[i] = Some(v);
    }
    Ok(out)
}

/// Applies the current values to what uses them: the SPD tunables and the key engine's
/// timers (the ACQUIRE proposals and the NAT keepalive read [`Props::get`] when they run).
pub fn apply(g: &mut Shared) {
    let p = &g.props;
    let t = g.spd.tunables_mut();
    t.icmp_accept_clear = p.get(ICMP_ACCEPT_CLEAR) != 0;
    t.igmp_accept_clear = p.get(IGMP_ACCEPT_CLEAR) != 0;
    t.pim_accept_clear = p.get(PIM_ACCEPT_CLEAR) != 0;
    t.persock_require_priv = p.get(PERSOCK_REQUIRE_PRIV) != 0;
    let c = g.keys.config_mut();
    c.larval_timeout = p.get(LARVAL_TIMEOUT);
    c.acquire_timeout = p.get(ACQUIRE_TIMEOUT);
}

/// The replay window ACQUIRE proposals ask for (`replay-size`).
pub fn replay(p: &Props) -> u8 {
    u8::try_from(p.get(REPLAY_SIZE)).unwrap_or(u8::MAX)
}

/// Sets a proposal combination's soft and hard add-time lifetimes from
/// `default-soft-addtime` and `default-hard-addtime`.
pub fn set_lifetimes(c: &mut ipsec_pfkey::wire::Comb, p: &Props) {
    c.soft_addtime = p.get(SOFT_ADDTIME);
    c.hard_addtime = p.get(HARD_ADDTIME);
}

/// The request's text after the verb `prop`, if it is a property request.
pub fn request(request: &str) -> Option<&str> {
    let rest = request.trim().strip_prefix("prop")?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest.trim())
}

/// Handles `show [NAME[,NAME...]] [PROTO]`, `set [-t] NAME=VALUE [PROTO]` and
/// `reset [-t] NAME [PROTO]`; returns the reply.
pub fn handle(srv: &Server, rest: &str) -> String {
    match handle_inner(srv, rest) {
        Ok(s) => s,
        Err(e) => format!("error {e}"),
    }
}

fn handle_inner(srv: &Server, rest: &str) -> Result<String, String> {
    let mut words = rest.split_whitespace();
    let verb = words.next().unwrap_or("");
    let mut temporary = false;
    let mut proto = None;
    let mut arg = None;
    for w in words {
        if w == "-t" && verb != "show" {
            temporary = true;
        } else if PROTOS.contains(&w) {
            proto = Some(w);
        } else if arg.is_none() {
            arg = Some(w);
        } else {
            return Err(unknown_proto(w));
        }
    }
    let of_proto = |i: usize| match proto {
        Some(p) if DEFS[i].proto != p => Err(format!(
            "property {} does not apply to protocol {p} (it belongs to protocol {})",
            DEFS[i].name, DEFS[i].proto
        )),
        _ => Ok(i),
    };
    match verb {
        "show" => {
            let names = match arg {
                Some(a) if !a.contains(',') => match index(a) {
                    Ok(i) => vec![of_proto(i)?],
                    Err(e) => return Err(format!("{e}; {}", unknown_proto(a))),
                },
                Some(a) => a
                    .split(',')
                    .map(|n| index(n).and_then(of_proto))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            Ok(format!("ok\n{}", srv.lock().props.table(&names, proto)))
        }
        "set" | "reset" => {
            let arg = arg.ok_or_else(|| {
                format!(
                    "{verb} needs {}",
                    if verb == "set" { "NAME=VALUE" } else { "NAME" }
                )
            })?;
            let mut p = srv.lock().props.clone();
            let (i, v) = if verb == "set" {
                let (name, value) = arg
                    .split_once('=')
                    .ok_or_else(|| format!("unexpected {arg:?}, expected NAME=VALUE"))?;
                let i = of_proto(index(name)?)?;
                (i, DEFS[i].parse(value)?)
            } else {
                let i = of_proto(index(arg)?)?;
                (i, DEFS[i].default)
            };
            p.current[i] = v;
            check_lifetimes(&p.current)?;
            if !temporary {
                p.persistent[i] = (verb == "set").then_some(v);
                let Some(f) = &p.file else {
                    return Err(
                        "no properties file (ipsecd --props-file): only a temporary change (-t) is possible"
                            .into(),
                    );
                };
                // Written before the running value changes: a failed write changes nothing.
                ipsec_sys::file::write_private_atomic(f, p.render().as_bytes())
                    .map_err(|e| format!("writing {}: {e}", f.display()))?;
            }
            let d = &DEFS[i];
            crate::log::info(format_args!(
                "property {} {}={}{}",
                d.proto,
                d.name,
                d.show(v),
                if temporary { " (temporary)" } else { "" }
            ));
            let mut g = srv.lock();
            g.props = p;
            apply(&mut g);
            Ok(format!(
                "ok {}={}{}",
                d.name,
                d.show(v),
                if temporary { " temporary" } else { "" }
            ))
        }
        _ => Err(format!(
            "unknown prop request {verb:?} (expected show, set or reset)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ipsecd-props-{}-{name}", std::process::id()));
        std::fs::write(&d, text).unwrap();
        d
    }

    #[test]
    fn file_values_override_options() {
        let f = tmp(
            "ok",
            "# comment\n\nlarval-timeout = 33\nicmp-accept-clear=off # no\n",
        );
        let p = Props::new(
            &[(LARVAL_TIMEOUT, 50), (ACQUIRE_TIMEOUT, 7)],
            Some(f.clone()),
        )
        .unwrap();
        assert_eq!(p.get(LARVAL_TIMEOUT), 33);
        assert_eq!(p.get(ACQUIRE_TIMEOUT), 7);
        assert_eq!(p.get(ICMP_ACCEPT_CLEAR), 0);
        let t = p.table(&[], None);
        assert!(t.starts_with("PROTO PROPERTY"), "{t}");
        assert!(
            t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "ipsec",
                    "larval-timeout",
                    "rw",
                    "33",
                    "33",
                    "90",
                    "1-4294967295"
                ]),
            "{t}"
        );
        assert_eq!(t.lines().count(), N + 1);
        std::fs::remove_file(f).unwrap();
    }

    #[test]
    fn file_errors_name_line_and_column() {
        for (text, want) in [
            (
                "larval-timeout=0\n",
                ":1:16: invalid value \"0\" for larval-timeout: expected an integer from 1 to 4294967295",
            ),
            ("\n  nosuch=1\n", ":2:3: unknown property \"nosuch\""),
            (
                "icmp-accept-clear\n",
                ":1:1: unexpected \"icmp-accept-clear\", expected NAME=VALUE",
            ),
            (
                "pim-accept-clear=yes\n",
                ":1:18: invalid value \"yes\" for pim-accept-clear: expected on or off",
            ),
            (
                "replay-size=8\nreplay-size=9\n",
                ":2:1: replay-size is set twice (first on line 1)",
            ),
        ] {
            let f = tmp("bad", text);
            let e = Props::new(&[], Some(f.clone())).unwrap_err();
            assert!(e.starts_with(&f.display().to_string()), "{e}");
            assert!(e.contains(want), "{text:?}: {e}");
            std::fs::remove_file(f).unwrap();
        }
        let f = tmp("life", "default-soft-addtime=30000\n");
        let e = Props::new(&[], Some(f.clone())).unwrap_err();
        assert!(
            e.contains("must not exceed default-hard-addtime (28800)"),
            "{e}"
        );
        std::fs::remove_file(f).unwrap();
    }

    #[test]
    fn render_reads_back() {
        let mut p = Props::default();
        p.persistent[REPLAY_SIZE] = Some(32);
        p.persistent[PIM_ACCEPT_CLEAR] = Some(0);
        let f = tmp("render", &p.render());
        let q = Props::new(&[], Some(f.clone())).unwrap();
        assert_eq!(q.get(REPLAY_SIZE), 32);
        assert_eq!(q.get(PIM_ACCEPT_CLEAR), 0);
        assert_eq!(q.persistent, p.persistent);
        std::fs::remove_file(f).unwrap();
    }
}
