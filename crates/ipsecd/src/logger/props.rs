//! The logger's properties (Solaris `svc:/network/ipsec/policy:logger`, `config/*`), their
//! validation and the properties file that stores them.
//!
//! The file holds one `name=value` per line; `#` starts a comment. Besides the properties it
//! holds `enabled=true|false`, the service's persistent enable state (SMF's
//! `general/enabled`). Errors name the file, line and column and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// Default log file (Solaris `config/log_file`).
pub const DEFAULT_LOG_FILE: &str = "/var/log/ipsec/ipsec.log";
/// Default rate-limit interval in milliseconds: one record per interval, as the illumos
/// `ipsec_policy_log_interval` tunable (1000 ms).
pub const DEFAULT_INTERVAL_MS: u64 = 1000;
/// Largest accepted `log_interval_ms` (the illumos tunable's upper bound).
pub const MAX_INTERVAL_MS: u64 = 999_999;
/// Largest accepted `backtrace_depth`.
pub const MAX_BACKTRACE_DEPTH: u32 = 1000;

/// What each record holds (`config/log_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// `minimal`: time, direction and reason only; excludes every other level.
    pub minimal: bool,
    /// `message`: time, direction, reason, rule index, SA (SPI) and addresses.
    pub message: bool,
    /// `packet`: a partial decode of the packet.
    pub packet: bool,
    /// `stack`: the processing stages up to the drop.
    pub stack: bool,
}

impl Default for Level {
    fn default() -> Self {
        Self {
            minimal: false,
            message: true,
            packet: true,
            stack: false,
        }
    }
}

impl Level {
    /// Parses `minimal`, `message`, `packet`, `stack` joined by `+` in any order.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut l = Self {
            minimal: false,
            message: false,
            packet: false,
            stack: false,
        };
        for part in s.split('+') {
            let slot = match part.trim() {
                "minimal" => &mut l.minimal,
                "message" => &mut l.message,
                "packet" => &mut l.packet,
                "stack" => &mut l.stack,
                "" => return Err(format!("empty level in {s:?} (expected minimal, message, packet or stack joined by '+')")),
                other => {
                    return Err(format!(
                        "unknown level {other:?} (expected minimal, message, packet or stack joined by '+')"
                    ))
                }
            };
            if *slot {
                return Err(format!("level {:?} given twice", part.trim()));
            }
            *slot = true;
        }
        if l.minimal && (l.message || l.packet || l.stack) {
            return Err("minimal excludes the other levels (message, packet, stack)".into());
        }
        Ok(l)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.minimal, "minimal"),
            (self.message, "message"),
            (self.packet, "packet"),
            (self.stack, "stack"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        f.write_str(&on.join("+"))
    }
}

/// Record format (beyond Solaris: JSON lines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One text line per record.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The logger's properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Props {
    /// `log_level`.
    pub level: Level,
    /// `log_file`.
    pub file: PathBuf,
    /// `log_rotation_size`, in `units`.
    pub rotation_size: u64,
    /// `log_size_units`: `b`, `k`, `m` or `g` (stored lower case).
    pub units: char,
    /// `backtrace_depth`: most stages a `stack` record shows.
    pub backtrace_depth: u32,
    /// `format`: text or JSON lines.
    pub format: Format,
    /// `log_interval_ms`: at most one record per interval (0: no limit).
    pub interval_ms: u64,
}

impl Default for Props {
    fn default() -> Self {
        Self {
            level: Level::default(),
            file: PathBuf::from(DEFAULT_LOG_FILE),
            rotation_size: 1,
            units: 'b',
            backtrace_depth: 25,
            format: Format::Text,
            interval_ms: DEFAULT_INTERVAL_MS,
        }
    }
}

/// Every property name, in display order.
pub const NAMES: [&str; 7] = [
    "log_level",
    "log_file",
    "log_rotation_size",
    "log_size_units",
    "backtrace_depth",
    "format",
    "log_interval_ms",
];

impl Props {
    /// The rotation threshold in bytes.
    pub fn threshold(&self) -> u64 {
        let mult: u64 = match self.units {
            'k' => 1 << 10,
            'm' => 1 << 20,
            'g' => 1 << 30,
            _ => 1,
        };
        self.rotation_size.saturating_mul(mult)
    }

    /// The value of property `name` as text.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "log_level" => self.level.to_string(),
            "log_file" => self.file.display().to_string(),
            "log_rotation_size" => self.rotation_size.to_string(),
            "log_size_units" => self.units.to_string(),
            "backtrace_depth" => self.backtrace_depth.to_string(),
            "format" => match self.format {
                Format::Text => "text".into(),
                Format::Json => "json".into(),
            },
            "log_interval_ms" => self.interval_ms.to_string(),
            _ => return None,
        })
    }

    /// Sets property `name` from text, validating it; the error says what was expected.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let num = |max: u64| -> Result<u64, String> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{name}: {value:?} is not a whole number from 0 to {max}"))
        };
        match name {
            "log_level" => {
                self.level = Level::parse(value).map_err(|e| format!("log_level: {e}"))?
            }
            "log_file" => {
                if !value.starts_with('/') {
                    return Err(format!("log_file: {value:?} is not an absolute path"));
                }
                // What the properties file could not hold: it reads '#' as a comment and
                // trims values.
                if value.contains('#') || value.contains(char::is_control) || value.trim() != value
                {
                    return Err(format!(
                        "log_file: {value:?} may not contain '#' or control characters, or end with white space"
                    ));
                }
                self.file = PathBuf::from(value);
            }
            "log_rotation_size" => {
                let n = num(u64::from(u32::MAX))?;
                if n == 0 {
                    return Err("log_rotation_size: expected at least 1".into());
                }
                self.rotation_size = n;
            }
            "log_size_units" => {
                let mut c = value.chars();
                match (c.next().map(|c| c.to_ascii_lowercase()), c.next()) {
                    (Some(u @ ('b' | 'k' | 'm' | 'g')), None) => self.units = u,
                    _ => {
                        return Err(format!(
                            "log_size_units: {value:?} is not one of b, k, m, g (either case)"
                        ))
                    }
                }
            }
            "backtrace_depth" => {
                let n = num(u64::from(MAX_BACKTRACE_DEPTH))?;
                if n == 0 {
                    return Err("backtrace_depth: expected at least 1".into());
                }
                self.backtrace_depth = u32::try_from(n).unwrap_or(MAX_BACKTRACE_DEPTH);
            }
            "format" => {
                self.format = match value {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    _ => return Err(format!("format: {value:?} is not text or json")),
                }
            }
            "log_interval_ms" => self.interval_ms = num(MAX_INTERVAL_MS)?,
            _ => {
                return Err(format!(
                    "unknown property {name:?} (expected one of {})",
                    NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }
}

/// What a properties file holds: the properties and the persistent enable state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// The properties.
    pub props: Props,
    /// Whether the service is enabled.
    pub enabled: bool,
}

impl Stored {
    /// Parses a properties file's text; errors are `FILE:LINE:COLUMN: message`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let mut s = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let at =
                |col: usize, msg: String| format!("{}:{}:{}: {msg}", path.display(), i + 1, col);
            let line = raw.split('#').next().unwrap_or_default();
            let lead = line.len() - line.trim_start().len();
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(at(lead + 1, format!("expected NAME=VALUE, found {line:?}")));
            };
            let (name, value) = (name.trim(), value.trim());
            let after = raw.find('=').map_or(lead, |p| p + 1);
            let rest = raw.get(after..).unwrap_or_default();
            let vcol = after + (rest.len() - rest.trim_start().len()) + 1;
            if name == "enabled" {
                s.enabled = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(at(vcol, format!("enabled: {value:?} is not true or false"))),
                };
                continue;
            }
            if !NAMES.contains(&name) {
                return Err(at(
                    lead + 1,
                    format!(
                        "unknown property {name:?} (expected enabled or one of {})",
                        NAMES.join(", ")
                    ),
                ));
            }
            s.props.set(name, value).map_err(|e| at(vcol, e))?;
        }
        Ok(s)
    }

    /// Reads `path`; a missing file holds the defaults.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(t) => Self::parse(path, &t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut o = String::from(
            "# Ironswan policy logger (svc:/network/ipsec/policy:logger); written by ipsecd\n",
        );
        o.push_str(&format!("enabled={}\n", self.enabled));
        for n in NAMES {
            o.push_str(&format!("{n}={}\n", self.props.get(n).unwrap_or_default()));
        }
        o
    }

    /// Writes the file atomically (mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        ipsec_sys::file::write_private_atomic(path, self.render().as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log_file the properties file cannot store is refused (the `ipsecd_text` fuzz
    /// target found `setprop log_file=/a#b` saved as `/a`).
    #[test]
    fn log_file_values_survive_the_file() {
        let mut s = Stored::default();
        for bad in ["/var/log/a#b", "/var/log/a ", "/var/log/a\tb", "/a\rb"] {
            let e = s.props.set("log_file", bad).unwrap_err();
            assert!(e.contains("may not contain '#'"), "{e}");
        }
        s.props
            .set("log_file", "/var/log/with space/x.log")
            .unwrap();
        let back = Stored::parse(Path::new("f"), &s.render()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn levels_in_any_order_and_minimal_alone() {
        let l = Level::parse("stack+message").unwrap();
        assert!(l.stack && l.message && !l.packet && !l.minimal);
        assert_eq!(l.to_string(), "message+stack");
        assert_eq!(
            Level::parse("packet+stack+message").unwrap().to_string(),
            "message+packet+stack"
        );
        assert_eq!(Level::parse("minimal").unwrap().to_string(), "minimal");
        let e = Level::parse("minimal+packet").unwrap_err();
        assert!(e.contains("minimal excludes"), "{e}");
        assert!(Level::parse("message++packet")
            .unwrap_err()
            .contains("empty level"));
        assert!(Level::parse("verbose")
            .unwrap_err()
            .contains("unknown level \"verbose\""));
        assert!(Level::parse("packet+packet").unwrap_err().contains("twice"));
        assert_eq!(Level::default().to_string(), "message+packet");
    }

    #[test]
    fn defaults_match_solaris() {
        let p = Props::default();
        assert_eq!(p.get("log_level").unwrap(), "message+packet");
        assert_eq!(p.get("log_file").unwrap(), "/var/log/ipsec/ipsec.log");
        assert_eq!(p.threshold(), 1, "rotates on every restart");
        assert_eq!(p.backtrace_depth, 25);
    }

    #[test]
    fn units_either_case_and_validation() {
        let mut p = Props::default();
        p.set("log_size_units", "K").unwrap();
        p.set("log_rotation_size", "3").unwrap();
        assert_eq!(p.threshold(), 3 * 1024);
        p.set("log_size_units", "g").unwrap();
        assert_eq!(p.threshold(), 3 << 30);
        assert!(p.set("log_size_units", "kb").is_err());
        assert!(p.set("log_size_units", "x").is_err());
        assert!(p.set("log_rotation_size", "0").is_err());
        assert!(p.set("log_rotation_size", "-1").is_err());
        assert!(p.set("backtrace_depth", "0").is_err());
        assert!(p.set("log_file", "relative.log").is_err());
        assert!(p.set("format", "xml").is_err());
        assert!(p
            .set("nosuch", "1")
            .unwrap_err()
            .contains("unknown property"));
        p.set("format", "json").unwrap();
        assert_eq!(p.get("format").unwrap(), "json");
    }

    #[test]
    fn file_round_trip_and_errors_name_line_and_column() {
        let path = Path::new("/etc/logger.conf");
        let mut s = Stored {
            enabled: true,
            ..Stored::default()
        };
        s.props.set("log_level", "minimal").unwrap();
        s.props.set("log_file", "/tmp/x.log").unwrap();
        assert_eq!(Stored::parse(path, &s.render()).unwrap(), s);
        let e = Stored::parse(path, "# c\nlog_level = message+minimal\n").unwrap_err();
        assert!(
            e.starts_with("/etc/logger.conf:2:13: log_level: minimal excludes"),
            "{e}"
        );
        let e = Stored::parse(path, "  bogus\n").unwrap_err();
        assert!(
            e.starts_with("/etc/logger.conf:1:3: expected NAME=VALUE"),
            "{e}"
        );
        let e = Stored::parse(path, "colour=red\n").unwrap_err();
        assert!(
            e.starts_with("/etc/logger.conf:1:1: unknown property"),
            "{e}"
        );
    }
}
