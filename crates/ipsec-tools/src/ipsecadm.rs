//! `ipsecadm`: administration of the running ipsecd, in the manner of Solaris' `ipadm`
//! property commands and `svcadm refresh`.
//!
//! | command | control request | what it does |
//! |---|---|---|
//! | `ipsecadm show-prop [-p NAME[,NAME...]] [PROTO]` | `prop show ...` | the properties as `ipadm show-prop` lists them: PROTO PROPERTY PERM CURRENT PERSISTENT DEFAULT POSSIBLE |
//! | `ipsecadm set-prop [-t] -p NAME=VALUE [PROTO]` | `prop set ...` | sets a property; persistent (written to ipsecd's `--props-file`) unless `-t` |
//! | `ipsecadm reset-prop [-t] -p NAME [PROTO]` | `prop reset ...` | back to the default |
//! | `ipsecadm reload` | `reload` | what SIGHUP does: re-reads the properties, policy and keys files (all or nothing) |
//! | `ipsecadm logger ARGS...` | `logger ARGS...` | the policy logger's actions and properties (status, getprop, setprop NAME=VALUE, enable, disable, refresh, restart), passed on as written |
//!
//! PROTO is `ip` (icmp-accept-clear, igmp-accept-clear, pim-accept-clear,
//! persock-require-priv), `ipsec` (replay-size, acquire-timeout, larval-timeout,
//! default-soft-addtime, default-hard-addtime) or `esp` (nat-keepalive-interval); ipsecd
//! validates names, protocols and values and says what it expected.
//!
//! The daemon is reached on its control socket: `--socket PATH`, else
//! `$IRONSWAN_CONTROL_SOCKET`, else `/run/ironswan/control.sock` (root or CAP_NET_ADMIN).
//! Exit status: 0 on success; 1 when ipsecd refused the request (its message on standard
//! error) or could not be reached; 2 for a usage error.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::ipsecconf::{socket_path, Client, Fatal};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "ipsecadm",
    about = "Administer the running ipsecd: properties, reload, policy logger"
)]
pub struct Args {
    /// The control socket of ipsecd (default: $IRONSWAN_CONTROL_SOCKET, else /run/ironswan/control.sock).
    #[arg(long, value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Show properties (all, or those named) of all protocols or of PROTO.
    ShowProp {
        /// Property names, comma-separated.
        #[arg(short = 'p', value_name = "NAME[,NAME...]")]
        props: Option<String>,
        /// ip, ipsec or esp.
        proto: Option<String>,
    },
    /// Set a property (persistently unless -t).
    SetProp {
        /// Temporary: change the running value only, not the properties file.
        #[arg(short = 't')]
        temporary: bool,
        /// NAME=VALUE.
        #[arg(short = 'p', value_name = "NAME=VALUE", required = true)]
        prop: String,
        /// ip, ipsec or esp.
        proto: Option<String>,
    },
    /// Reset a property to its default (persistently unless -t).
    ResetProp {
        /// Temporary: change the running value only, not the properties file.
        #[arg(short = 't')]
        temporary: bool,
        /// The property name.
        #[arg(short = 'p', value_name = "NAME", required = true)]
        prop: String,
        /// ip, ipsec or esp.
        proto: Option<String>,
    },
    /// Re-read the properties, policy and keys files (as SIGHUP does).
    Reload,
    /// Pass `logger ARGS...` to the daemon's policy logger and print its reply.
    Logger {
        /// status, getprop, setprop NAME=VALUE, enable, disable, refresh or restart.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
}

/// The control request for a command.
pub fn request(cmd: &Cmd) -> Result<String, String> {
    let word = |w: &str| {
        if w.is_empty() || w.chars().any(char::is_whitespace) {
            Err(format!("{w:?}: expected one word without spaces"))
        } else {
            Ok(w.to_string())
        }
    };
    let mut parts = Vec::new();
    match cmd {
        Cmd::ShowProp { props, proto } => {
            parts.push("prop show".to_string());
            parts.extend(
                props
                    .iter()
                    .map(|p| word(p))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            parts.extend(
                proto
                    .iter()
                    .map(|p| word(p))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Cmd::SetProp {
            temporary,
            prop,
            proto,
        }
        | Cmd::ResetProp {
            temporary,
            prop,
            proto,
        } => {
            let verb = if matches!(cmd, Cmd::SetProp { .. }) {
                "set"
            } else {
                "reset"
            };
            parts.push(format!("prop {verb}"));
            if *temporary {
                parts.push("-t".into());
            }
            parts.push(word(prop)?);
            parts.extend(
                proto
                    .iter()
                    .map(|p| word(p))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Cmd::Reload => parts.push("reload".into()),
        Cmd::Logger { args } => {
            parts.push("logger".into());
            parts.extend(args.iter().cloned());
        }
    }
    Ok(parts.join(" "))
}

/// Runs ipsecadm with these arguments (argv\[0\] first); the process exit status.
pub fn main_with(args: Vec<OsString>) -> ExitCode {
    let args: Args = match crate::parse_args(args, 2) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let req = match request(&args.command) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ipsecadm: {e}");
            return ExitCode::from(2);
        }
    };
    let mut client = Client::new(socket_path(args.socket.clone()));
    match client.request(&req) {
        Ok(Ok(reply)) => {
            // set-prop and reset-prop are silent on success, as ipadm's are.
            let quiet = matches!(args.command, Cmd::SetProp { .. } | Cmd::ResetProp { .. });
            let mut text = String::new();
            if !quiet {
                if !reply.head.is_empty() {
                    text.push_str(&reply.head);
                    text.push('\n');
                }
                text.push_str(&reply.body);
            }
            let mut o = std::io::stdout().lock();
            if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
                eprintln!("ipsecadm: writing standard output: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Ok(Err(msg)) | Err(Fatal(msg)) => {
            eprintln!("ipsecadm: {msg}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn req(argv: &[&str]) -> String {
        let mut v = vec!["ipsecadm"];
        v.extend(argv);
        request(&Args::try_parse_from(v).unwrap().command).unwrap()
    }

    #[test]
    fn commands_become_requests() {
        assert_eq!(req(&["show-prop"]), "prop show");
        assert_eq!(
            req(&["show-prop", "-p", "larval-timeout,replay-size", "ipsec"]),
            "prop show larval-timeout,replay-size ipsec"
        );
        assert_eq!(
            req(&["set-prop", "-t", "-p", "icmp-accept-clear=off", "ip"]),
            "prop set -t icmp-accept-clear=off ip"
        );
        assert_eq!(
            req(&["reset-prop", "-p", "replay-size"]),
            "prop reset replay-size"
        );
        assert_eq!(req(&["reload"]), "reload");
        assert_eq!(
            req(&["logger", "setprop", "log_level=message+packet"]),
            "logger setprop log_level=message+packet"
        );
        assert!(Args::try_parse_from(["ipsecadm", "set-prop"]).is_err());
        assert!(Args::try_parse_from(["ipsecadm", "logger"]).is_err());
        let a = Args::try_parse_from(["ipsecadm", "set-prop", "-p", "a b=1"]).unwrap();
        assert!(request(&a.command).is_err());
    }
}
