//! `ipsecconf(8)`: the system-wide IPsec policy, as Solaris' ipsecconf manages it, held by
//! `ipsecd` and changed over its control socket.
//!
//! ```text
//!  policy file / stdin ──(UTF-8 text)──► "policy add NAME\n<text>" ──► ipsecd (parses, compiles,
//!      swaps the SPD whole) ──► "ok ..." + warnings | "error file:line:column: ..."
//!  -l / -L / no flags ──► "policy list order|file SCOPE [numeric]" (paged) ──► #INDEX n + entry
//!  -c file ──► parsed and compiled here (ipsec_config::ipsecconf, ipsec_core::spd); no daemon
//! ```
//!
//! Synopsis (Solaris 11.4):
//!
//! | command | what it does |
//! |---|---|
//! | `ipsecconf` | the file policy entries in the order they were added, each after its `#INDEX` line |
//! | `ipsecconf -a FILE [-q]` | adds the entries of FILE (`-` = standard input) after the active ones |
//! | `ipsecconf -c FILE` | checks FILE (syntax and semantics) without contacting the daemon |
//! | `ipsecconf -d [-i TUNNEL] INDEX`, `-d TUNNEL,INDEX` | deletes one entry |
//! | `ipsecconf -f [-i TUNNEL]` | flushes the host policy (or one tunnel's) |
//! | `ipsecconf -F` | flushes the host policy and every tunnel's |
//! | `ipsecconf -Fa FILE [-q]` | flushes everything and adds FILE in one atomic step (`-fa`: the host policy or, with `-i`, one tunnel's) |
//! | `ipsecconf -l [-i TUNNEL] [-n]` | the host policy (or one tunnel's) in match order |
//! | `ipsecconf -L [-n]` | every policy (host, then each tunnel) in match order |
//! | `ipsecconf -r FILE [-q]` | removes the active entries that equal the entries of FILE |
//!
//! Beyond Solaris: `--explain "SRC DST PROTO [SPORT DPORT]" [--dir in|out] [-i TUNNEL]` says
//! which entry decides such a packet and why; `--socket PATH` (else
//! `$IRONSWAN_CONTROL_SOCKET`, else `/run/ironswan/control.sock`) names the daemon.
//!
//! Decisions where Solaris is unclear or this tool differs:
//! * `-r` removes, as illumos' ipsecconf.c does (`IPSEC_CONF_SUB`: "Policy entries that are
//!   being removed..."): an entry of FILE removes the first active entry that makes the same
//!   SPD rules (Solaris compares the text as written). Entries of FILE that are not active
//!   draw a warning.
//! * A file is parsed whole before anything changes: a syntax or semantic error anywhere
//!   (named `file:line:column` with what was expected) changes nothing, and every change
//!   (`-a`, `-Fa`, `-r`, `-d`, `-f`) reaches the data plane as one atomic SPD swap.
//! * Indexes number file policy entries (1, 2, ... while ipsecd runs; never reused). An entry
//!   that expands into several SPD rules (a host name with several addresses) keeps one
//!   index and is listed once (with `-n`, once per address pair). Entries ipsecd loaded with
//!   `--policy-file` at start are listed as the SPD holds them, one per rule, in new style.
//! * `-q` suppresses warnings (Solaris' "DANGER: ... encryption with no authentication", and
//!   the SPD analysis: entries that can never match or are overlapped by higher-priority
//!   entries of another action). The smf(5) and "may affect existing connections" banners
//!   are not printed.
//! * `-n` prints addresses as numbers (a name is replaced by each of its addresses); ports
//!   are always numbers and protocols names, as the ipsecconf printer writes them.
//! * Exit status: 0 on success, 1 on any error (including ipsecd not running).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use ipsec_config::ipsecconf::{self, PolicyFile};
use ipsec_core::spd::{self, AnalysisLimits, PolicySet};
use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::{PollFd, PollFlags};

/// The control socket when neither `--socket` nor `$IRONSWAN_CONTROL_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/ironswan/control.sock";

/// The largest request ipsecd reads (its control socket's receive buffer).
const MAX_REQUEST: usize = 1 << 20;

/// How long a reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Command-line options (Solaris' flags; see the module documentation).
#[derive(Parser, Debug)]
#[command(
    name = "ipsecconf",
    about = "Configure the system-wide IPsec policy (via ipsecd)",
    override_usage = "ipsecconf\n       ipsecconf -a FILE [-q]\n       ipsecconf -c FILE\n       \
        ipsecconf -d [-i TUNNEL] INDEX\n       ipsecconf -d TUNNEL,INDEX\n       \
        ipsecconf -f [-i TUNNEL]\n       ipsecconf -F\n       ipsecconf -Fa FILE [-q]\n       \
        ipsecconf -l [-i TUNNEL] [-n]\n       ipsecconf -L [-n]\n       ipsecconf -r FILE [-q]\n       \
        ipsecconf --explain \"SRC DST PROTO [SPORT DPORT]\" [--dir in|out] [-i TUNNEL]"
)]
pub struct Args {
    /// Add the policy entries of FILE (`-` = standard input); with -f or -F, replace.
    #[arg(short = 'a', value_name = "FILE", allow_hyphen_values = true)]
    pub add: Option<String>,
    /// Check FILE only (the daemon is not contacted).
    #[arg(short = 'c', value_name = "FILE", allow_hyphen_values = true)]
    pub check: Option<String>,
    /// Delete the entry with this index (`TUNNEL,INDEX` for a tunnel's entry).
    #[arg(short = 'd', value_name = "INDEX")]
    pub delete: Option<String>,
    /// Flush the host policy (with -i: one tunnel's).
    #[arg(short = 'f')]
    pub flush: bool,
    /// Flush the host policy and every tunnel's.
    #[arg(short = 'F')]
    pub flush_all: bool,
    /// List the host policy (with -i: one tunnel's) in match order.
    #[arg(short = 'l')]
    pub list: bool,
    /// List every policy (host and all tunnels) in match order.
    #[arg(short = 'L')]
    pub list_all: bool,
    /// Numeric output: addresses instead of host names.
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Quiet: no warnings.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Remove the policy entries of FILE (`-` = standard input) from the active policy.
    #[arg(short = 'r', value_name = "FILE", allow_hyphen_values = true)]
    pub remove: Option<String>,
    /// The tunnel interface whose policy -l, -f, -d or --explain act on.
    #[arg(short = 'i', value_name = "TUNNEL")]
    pub interface: Option<String>,
    /// The control socket of ipsecd (default: $IRONSWAN_CONTROL_SOCKET, else /run/ironswan/control.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Explain which entry decides a packet: "SRC DST PROTO [SPORT DPORT]" (for ICMP: type and code).
    #[arg(long, value_name = "PACKET")]
    pub explain: Option<String>,
    /// With --explain: the packet's direction.
    #[arg(long, value_name = "DIR", default_value = "out", value_parser = ["in", "out"])]
    pub dir: String,
}

/// Which policies a command acts on (the daemon's scope words).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scope {
    All,
    Host,
    Tunnel(String),
}

impl Scope {
    fn word(&self) -> String {
        match self {
            Scope::All => "all".into(),
            Scope::Host => "host".into(),
            Scope::Tunnel(t) => format!("tunnel={t}"),
        }
    }
}

/// The one thing a run does.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cmd {
    View,
    List(Scope),
    Add(String),
    Replace(String, Scope),
    Remove(String),
    Check(String),
    Delete(String),
    Flush(Scope),
    Explain(String),
}

/// Something that ends the run with status 1.
#[derive(Debug)]
pub struct Fatal(pub String);

fn command(a: &Args) -> Result<Cmd, Fatal> {
    let usage = |m: &str| Fatal(format!("{m} (see ipsecconf --help)"));
    if a.flush && a.flush_all || a.list && a.list_all {
        return Err(usage("Multiple commands specified"));
    }
    let iface = a.interface.clone();
    if iface.as_deref() == Some("") {
        return Err(usage("Invalid interface name."));
    }
    let flush_scope = if a.flush_all {
        Scope::All
    } else {
        iface.clone().map_or(Scope::Host, Scope::Tunnel)
    };
    let mut cmds = Vec::new();
    match (&a.add, a.flush || a.flush_all) {
        (Some(f), true) => cmds.push(Cmd::Replace(f.clone(), flush_scope.clone())),
        (Some(f), false) => cmds.push(Cmd::Add(f.clone())),
        (None, true) => cmds.push(Cmd::Flush(flush_scope.clone())),
        (None, false) => {}
    }
    if let Some(f) = &a.check {
        cmds.push(Cmd::Check(f.clone()));
    }
    if let Some(d) = &a.delete {
        cmds.push(Cmd::Delete(d.clone()));
    }
    if let Some(f) = &a.remove {
        cmds.push(Cmd::Remove(f.clone()));
    }
    if a.list || a.list_all {
        cmds.push(Cmd::List(if a.list_all {
            Scope::All
        } else {
            iface.clone().map_or(Scope::Host, Scope::Tunnel)
        }));
    }
    if let Some(p) = &a.explain {
        cmds.push(Cmd::Explain(p.clone()));
    }
    if cmds.len() > 1 {
        return Err(usage("Multiple commands specified"));
    }
    let cmd = cmds.pop().unwrap_or(Cmd::View);
    if iface.is_some() {
        let takes = match &cmd {
            Cmd::List(Scope::Tunnel(_))
            | Cmd::Flush(Scope::Tunnel(_))
            | Cmd::Replace(_, Scope::Tunnel(_))
            | Cmd::Delete(_)
            | Cmd::Explain(_) => true,
            Cmd::View => return Err(usage("Cannot view for one interface only.")),
            _ => false,
        };
        if !takes {
            return Err(usage("interface name not required."));
        }
    }
    Ok(cmd)
}

/// Reads a policy file (`-` = standard input) as UTF-8: its name for messages and its text.
fn read_policy(path: &str) -> Result<(String, String), Fatal> {
    let (name, bytes) = if path == "-" {
        let mut b = Vec::new();
        io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| Fatal(format!("reading standard input: {e}")))?;
        ("<stdin>".to_owned(), b)
    } else {
        let b = std::fs::read(path)
            .map_err(|e| Fatal(format!("{path}: Policy config file cannot be opened: {e}")))?;
        (path.to_owned(), b)
    };
    match String::from_utf8(bytes) {
        Ok(t) => Ok((name, t)),
        Err(e) => {
            let good = e
                .as_bytes()
                .get(..e.utf8_error().valid_up_to())
                .unwrap_or(&[]);
            let good = String::from_utf8_lossy(good);
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(Fatal(format!(
                "{name}:{line}:{column}: unexpected `invalid UTF-8`, expected UTF-8 text"
            )))
        }
    }
}

/// A reply: the `ok` line's words after `ok`, and the lines after it.
pub(crate) struct Reply {
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Reply {
    fn get(&self, key: &str) -> Option<&str> {
        self.head
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    }
}

/// A connection to ipsecd's control socket (ipsecadm uses it too).
pub(crate) struct Client {
    socket: PathBuf,
    conn: Option<Conn>,
    buf: Vec<u8>,
}

impl Client {
    pub(crate) fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            conn: None,
            buf: Vec::new(),
        }
    }

    fn conn(&mut self) -> Result<&Conn, Fatal> {
        if self.conn.is_none() {
            let c = Conn::connect(&self.socket).map_err(|e| {
                let hint = match e.kind() {
                    io::ErrorKind::PermissionDenied => "needs root or CAP_NET_ADMIN",
                    _ => "is ipsecd running? see --socket",
                };
                Fatal(format!(
                    "cannot reach ipsecd at {}: {e} ({hint})",
                    self.socket.display()
                ))
            })?;
            self.conn = Some(c);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| Fatal("no connection to ipsecd".into()))
    }

    /// Sends one request and waits for its reply; an `error` reply is `Err(Ok(message))`.
    pub(crate) fn request(&mut self, msg: &str) -> Result<Result<Reply, String>, Fatal> {
        if msg.len() > MAX_REQUEST {
            return Err(Fatal(format!(
                "the policy text is too large ({} bytes; ipsecd reads requests of at most {MAX_REQUEST} bytes)",
                msg.len()
            )));
        }
        let conn = self.conn()?;
        if msg.len() > 64 * 1024 {
            // A SOCK_SEQPACKET message must fit the sender's buffer.
            let _ = conn.set_send_buffer(msg.len() + 64 * 1024);
        }
        match conn.send(msg.as_bytes()) {
            Ok(Sent::Done) => {}
            Ok(Sent::WouldBlock) => return Err(Fatal("ipsecd is not accepting requests".into())),
            Ok(Sent::Closed) => return Err(Fatal("ipsecd closed the connection".into())),
            // EMSGSIZE: larger than the socket's send buffer may grow.
            Err(e) if e.raw_os_error() == Some(90) => {
                return Err(Fatal(format!(
                    "the policy text ({} bytes) is larger than this system lets one message be (net.core.wmem_max): {e}",
                    msg.len()
                )))
            }
            Err(e) => return Err(Fatal(format!("sending to ipsecd: {e}"))),
        }
        if self.buf.len() < MAX_REQUEST {
            self.buf = vec![0u8; MAX_REQUEST];
        }
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let conn = self
                .conn
                .as_ref()
                .ok_or_else(|| Fatal("no connection to ipsecd".into()))?;
            let n = {
                let mut fds = [PollFd::new(conn, PollFlags::IN)];
                ipsec_sys::poll(&mut fds, Some(left))
                    .map_err(|e| Fatal(format!("waiting for ipsecd: {e}")))?
            };
            if n == 0 {
                return Err(Fatal("no reply from ipsecd (timed out)".into()));
            }
            match conn.recv(&mut self.buf) {
                Ok(Recv::Msg(n)) => {
                    let text = String::from_utf8_lossy(self.buf.get(..n).unwrap_or(&[]));
                    let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
                    if let Some(e) = first.strip_prefix("error") {
                        let mut m = e.trim().to_owned();
                        if !body.trim().is_empty() {
                            m.push('\n');
                            m.push_str(body.trim_end());
                        }
                        return Ok(Err(m));
                    }
                    return match first.strip_prefix("ok") {
                        Some(h) => Ok(Ok(Reply {
                            head: h.trim().to_owned(),
                            body: body.to_owned(),
                        })),
                        None => Err(Fatal(format!("unexpected reply from ipsecd: {first:?}"))),
                    };
                }
                Ok(Recv::Truncated(n)) => {
                    return Err(Fatal(format!("a reply of {n} bytes is too large")))
                }
                Ok(Recv::WouldBlock) => {}
                Ok(Recv::Closed) => return Err(Fatal("ipsecd closed the connection".into())),
                Err(e) => return Err(Fatal(format!("reading from ipsecd: {e}"))),
            }
        }
    }
}

fn out(text: &str) -> Result<(), Fatal> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| Fatal(format!("writing standard output: {e}")))
}

/// The control socket: `--socket`, else `$IRONSWAN_CONTROL_SOCKET`, else [`DEFAULT_SOCKET`].
pub(crate) fn socket_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("IRONSWAN_CONTROL_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Runs ipsecconf with these arguments (argv\[0\] first); the process exit status.
pub fn main_with(args: Vec<OsString>) -> ExitCode {
    let args: Args = match crate::parse_args(args, 1) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Fatal(msg)) => {
            eprintln!("ipsecconf: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Prints warnings (one per line) unless quiet.
fn warn_lines(quiet: bool, body: &str) {
    if quiet {
        return;
    }
    for l in body.lines().filter(|l| !l.trim().is_empty()) {
        eprintln!("ipsecconf: {l}");
    }
}

/// Runs one command: `Ok(false)` when it failed (already reported).
fn run(a: &Args) -> Result<bool, Fatal> {
    let cmd = command(a)?;
    if let Cmd::Check(path) = &cmd {
        return check(path, a.quiet);
    }
    let socket = socket_path(a.socket.clone());
    // Read the file before contacting the daemon, so that a missing file is reported as such.
    let text = match &cmd {
        Cmd::Add(f) | Cmd::Replace(f, _) | Cmd::Remove(f) => Some(read_policy(f)?),
        _ => None,
    };
    let mut c = Client::new(socket);
    let failed = |m: String| {
        eprintln!("ipsecconf: {m}");
        Ok(false)
    };
    let with_text = |verb: String| -> String {
        let (name, body) = text.clone().unwrap_or_default();
        format!("{verb} {name}\n{body}")
    };
    match &cmd {
        Cmd::View => list(&mut c, "file", &Scope::All, a.numeric),
        Cmd::List(scope) => list(&mut c, "order", scope, a.numeric),
        Cmd::Add(_) => match c.request(&with_text("policy add".into()))? {
            Ok(r) => {
                warn_lines(a.quiet, &r.body);
                if r.get("entries") == Some("0") && !a.quiet {
                    eprintln!("ipsecconf: Policy file does not contain any valid rules.");
                }
                Ok(true)
            }
            Err(e) => failed(e),
        },
        Cmd::Replace(_, scope) => {
            match c.request(&with_text(format!("policy replace {}", scope.word())))? {
                Ok(r) => {
                    warn_lines(a.quiet, &r.body);
                    Ok(true)
                }
                Err(e) => failed(e),
            }
        }
        Cmd::Remove(_) => match c.request(&with_text("policy remove".into()))? {
            Ok(r) => {
                warn_lines(a.quiet, &r.body);
                Ok(true)
            }
            Err(e) => failed(e),
        },
        Cmd::Delete(d) => {
            let (tunnel, index) = match d.split_once(',') {
                Some((t, n)) => (Some(t.to_owned()), n.to_owned()),
                None => (a.interface.clone(), d.clone()),
            };
            if d.contains(',') && a.interface.is_some() {
                return Err(Fatal("Interface name already selected".into()));
            }
            if index.trim().parse::<u64>().is_err() {
                return Err(Fatal(format!("Invalid index {index:?}")));
            }
            let req = match tunnel {
                Some(t) => format!("policy delete {} tunnel={t}", index.trim()),
                None => format!("policy delete {}", index.trim()),
            };
            match c.request(&req)? {
                Ok(_) => Ok(true),
                Err(e) => failed(e),
            }
        }
        Cmd::Flush(scope) => match c.request(&format!("policy flush {}", scope.word()))? {
            Ok(_) => Ok(true),
            Err(e) => failed(e),
        },
        Cmd::Explain(packet) => {
            let mut req = format!("policy explain {} {}", a.dir, packet.trim());
            if let Some(t) = &a.interface {
                req.push_str(&format!(" tunnel={t}"));
            }
            match c.request(&req)? {
                Ok(r) => {
                    out(&r.body)?;
                    Ok(true)
                }
                Err(e) => failed(e),
            }
        }
        Cmd::Check(_) => Ok(true),
    }
}

/// Prints a listing, page by page; starts over if the policy changes in between.
fn list(c: &mut Client, kind: &str, scope: &Scope, numeric: bool) -> Result<bool, Fatal> {
    let n = if numeric { " numeric" } else { "" };
    'again: for _ in 0..5 {
        let mut text = String::new();
        let mut from = 0usize;
        let mut generation: Option<String> = None;
        loop {
            let req = format!("policy list {kind} {}{n} from={from}", scope.word());
            let r = match c.request(&req)? {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ipsecconf: {e}");
                    return Ok(false);
                }
            };
            let g = r.get("generation").map(str::to_owned);
            if generation.is_some() && generation != g {
                continue 'again;
            }
            generation = g;
            text.push_str(&r.body);
            match r.get("next").and_then(|k| k.parse::<usize>().ok()) {
                Some(k) if k > from => from = k,
                _ => {
                    out(&text)?;
                    return Ok(true);
                }
            }
        }
    }
    Err(Fatal(
        "the policy kept changing while it was being listed".into(),
    ))
}

/// `-c FILE`: parse, expand and compile here; report errors and warnings as `-a` would.
fn check(path: &str, quiet: bool) -> Result<bool, Fatal> {
    let (name, text) = match read_policy(path) {
        Ok(x) => x,
        Err(Fatal(m)) => {
            eprintln!("ipsecconf: {m}");
            return Ok(false);
        }
    };
    let file = match ipsecconf::parse(&text, &name) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ipsecconf: {e}");
            return Ok(false);
        }
    };
    let rules = match file.to_rules() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ipsecconf: {e}");
            return Ok(false);
        }
    };
    let set = PolicySet::from_rules(rules);
    if let Err(e) = spd::Spd::with_policy(set.clone()) {
        let line = set
            .rules
            .get(e.rule)
            .and_then(|r| r.line)
            .map_or_else(String::new, |l| format!("{l}:"));
        eprintln!("ipsecconf: {name}:{line} {}", e.error);
        return Ok(false);
    }
    if !quiet {
        for w in check_warnings(&file, &set) {
            eprintln!("ipsecconf: {w}");
        }
    }
    out("IPsec configuration does not contain any errors.\nIPsec policy was not modified.\n")?;
    Ok(true)
}

/// The parser's warnings and the SPD analysis' for a file checked on its own, each naming
/// the line of the entry it is about.
fn check_warnings(file: &PolicyFile, set: &PolicySet) -> Vec<String> {
    let mut v: Vec<String> = file
        .warnings()
        .iter()
        .map(|w| format!("{}:{}: warning: {}", file.file, w.line, w.message))
        .collect();
    let line = |p: usize| set.rules.get(p).and_then(|r| r.line);
    let name = |p: usize| line(p).map_or_else(|| format!("rule {p}"), |l| format!("line {l}"));
    let names = |ps: &[usize]| {
        let mut n: Vec<String> = ps.iter().map(|&p| name(p)).collect();
        n.dedup();
        n.join(", ")
    };
    for w in spd::analyze(set, AnalysisLimits::default()) {
        let at = w
            .rule()
            .and_then(line)
            .map_or_else(String::new, |l| format!("{}:{l}: ", file.file));
        let s = match &w {
            spd::Warning::Shadowed { rule, by } => format!(
                "{at}warning: the entry on {} can never match: every packet it matches is decided first by the entry on {} (higher priority)",
                name(*rule),
                names(by)
            ),
            spd::Warning::Overlap { rule, with, more } => {
                let extra = if *more > 0 {
                    format!(" (and at least {more} more)")
                } else {
                    String::new()
                };
                format!(
                    "{at}warning: the entry on {} overlaps the higher-priority entry on {} with a different action; they decide the shared traffic{extra}",
                    name(*rule),
                    names(with)
                )
            }
            spd::Warning::Unmatchable { rule, why } => format!(
                "{at}warning: the entry on {} can never match: {why}",
                name(*rule)
            ),
            spd::Warning::IcmpActionsDiffer { rule, first } => format!(
                "{at}warning: the entry on {}: IPsec action differs from the ICMP entry on {}; all ICMP entries applying IPsec must be the same",
                name(*rule),
                name(*first)
            ),
            spd::Warning::Incomplete { .. } => format!("warning: {w}"),
        };
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn cmd(args: &[&str]) -> Result<Cmd, String> {
        let mut v = vec!["ipsecconf"];
        v.extend_from_slice(args);
        let a = Args::try_parse_from(v).map_err(|e| e.to_string())?;
        command(&a).map_err(|Fatal(m)| m)
    }

    #[test]
    fn solaris_flags() {
        assert_eq!(cmd(&[]).unwrap(), Cmd::View);
        assert_eq!(cmd(&["-n"]).unwrap(), Cmd::View);
        assert_eq!(cmd(&["-l"]).unwrap(), Cmd::List(Scope::Host));
        assert_eq!(
            cmd(&["-l", "-i", "t0"]).unwrap(),
            Cmd::List(Scope::Tunnel("t0".into()))
        );
        assert_eq!(cmd(&["-L", "-n"]).unwrap(), Cmd::List(Scope::All));
        assert_eq!(cmd(&["-a", "f", "-q"]).unwrap(), Cmd::Add("f".into()));
        assert_eq!(cmd(&["-a", "-"]).unwrap(), Cmd::Add("-".into()));
        assert_eq!(
            cmd(&["-Fa", "f"]).unwrap(),
            Cmd::Replace("f".into(), Scope::All)
        );
        assert_eq!(
            cmd(&["-fa", "f"]).unwrap(),
            Cmd::Replace("f".into(), Scope::Host)
        );
        assert_eq!(cmd(&["-F"]).unwrap(), Cmd::Flush(Scope::All));
        assert_eq!(cmd(&["-f"]).unwrap(), Cmd::Flush(Scope::Host));
        assert_eq!(
            cmd(&["-f", "-i", "t0"]).unwrap(),
            Cmd::Flush(Scope::Tunnel("t0".into()))
        );
        assert_eq!(cmd(&["-r", "f"]).unwrap(), Cmd::Remove("f".into()));
        assert_eq!(cmd(&["-d", "3"]).unwrap(), Cmd::Delete("3".into()));
        assert_eq!(cmd(&["-c", "f"]).unwrap(), Cmd::Check("f".into()));
        assert!(cmd(&["-l", "-a", "f"])
            .unwrap_err()
            .contains("Multiple commands"));
        assert!(cmd(&["-F", "-i", "t0"])
            .unwrap_err()
            .contains("not required"));
        assert!(cmd(&["-a", "f", "-i", "t0"])
            .unwrap_err()
            .contains("not required"));
        assert!(cmd(&["-i", "t0"]).unwrap_err().contains("Cannot view"));
        assert!(cmd(&["-f", "-F"])
            .unwrap_err()
            .contains("Multiple commands"));
    }
}
