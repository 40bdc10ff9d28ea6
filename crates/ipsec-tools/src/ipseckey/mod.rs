//! `ipseckey(8)`: manual keying over PF_KEY v2, as Solaris' ipseckey does it, talking to
//! `ipsecd` on its local `SOCK_SEQPACKET` PF_KEY socket.
//!
//! ```text
//!  argv / -f file / stdin ──ipsec_config::ipseckey::parse_with──► Command
//!      ──request::request──► PF_KEY Message ──emit──► ipsecd (one message per packet)
//!      ◄── replies, DUMP records, broadcasts ── print (Solaris print_samsg) | JSON | save
//! ```
//!
//! Modes (Solaris' synopsis): `ipseckey [-nvp]` reads commands from standard input (the
//! prompt `ipseckey> ` when it is a terminal) until end of input, `quit` or `exit`;
//! `-f file` runs a command file; `-c file` only checks one (no daemon contact); `-s file`
//! saves every SA as `add` commands (`-` = standard output); otherwise the command line is
//! one command. `add`, `update` and `update-pair` are refused on the command line, where
//! keys would show in ps(1).
//!
//! Decisions where Solaris is unclear or this tool differs:
//! * A command file is parsed whole before anything is sent: a syntax error anywhere (named
//!   `file:line:column` with what was expected) stops it with nothing applied. Solaris
//!   applies the lines it can parse. Errors the daemon reports stop nothing: every command
//!   is tried, and the exit status is 1 if any failed.
//! * Command files may not contain `dump`, `save`, `monitor`, `passive_monitor`/`pmonitor`
//!   or `help` (Solaris: "... not appropriate in config file").
//! * A command file readable by others draws a warning (it holds keys), as in Solaris.
//! * `--json` prints one object per SA or message and leaves key material out unless
//!   `--show-keys` is given (and never with `-p`); text output shows keys unless `-p`, as
//!   Solaris does.
//! * `monitor` ends, with status 0, on SIGINT or SIGTERM.
//! * The socket is `--socket PATH`, else `$IRONSWAN_PFKEY_SOCKET`, else
//!   `/run/ironswan/pfkey.sock`.

pub mod json;
pub mod print;
pub mod save;

use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use zeroize::Zeroizing;

use ipsec_config::ipseckey::request::{request, satype_number};
use ipsec_config::ipseckey::{parse_with, Command, ParseError, ParseOptions, SaSpec, SaType};
use ipsec_pfkey::consts::*;
use ipsec_pfkey::wire::MAX_MSG_LEN;
use ipsec_pfkey::Message;
use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::signal::{SignalPipe, SIGINT, SIGTERM};
use ipsec_sys::{PollFd, PollFlags};

use print::PrintOpts;

/// The socket path when neither `--socket` nor `$IRONSWAN_PFKEY_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/ironswan/pfkey.sock";

/// How long a reply may take before the command fails ("Reply message from PF_KEY timed
/// out", as Solaris says).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "ipseckey",
    about = "Manually manipulate IPsec security associations (PF_KEY v2, via ipsecd)",
    override_usage = "ipseckey [-nvp] [--json [--show-keys]] [--socket PATH]\n       \
        ipseckey [-nvp] -f FILE\n       ipseckey -c FILE\n       ipseckey [-nvp] -s FILE\n       \
        ipseckey [-nvp] delete|delete-pair|get SA_TYPE {EXTENSION VALUE}...\n       \
        ipseckey [-nvp] flush|dump [SA_TYPE]\n       ipseckey [-nvp] save SA_TYPE [FILE]\n       \
        ipseckey [-np] monitor|passive_monitor|pmonitor\n       ipseckey help [COMMAND|attr]"
)]
pub struct Args {
    /// Numeric output: no name lookups for addresses and protocols.
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Verbose: print every PF_KEY message sent, and raw time values.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Paranoid: print keys as X (also when saving).
    #[arg(short = 'p')]
    pub paranoid: bool,
    /// Run the commands of FILE.
    #[arg(short = 'f', value_name = "FILE", conflicts_with_all = ["check", "save_file"])]
    pub file: Option<PathBuf>,
    /// Check the syntax of FILE only (the daemon is not contacted).
    #[arg(short = 'c', value_name = "FILE", conflicts_with_all = ["save_file"])]
    pub check: Option<PathBuf>,
    /// Save every SA as add commands to FILE (`-` = standard output), mode 0600.
    #[arg(short = 's', value_name = "FILE")]
    pub save_file: Option<String>,
    /// The PF_KEY socket of ipsecd (default: $IRONSWAN_PFKEY_SOCKET, else /run/ironswan/pfkey.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// One JSON object per SA or message (dump, get, monitor); keys left out.
    #[arg(long)]
    pub json: bool,
    /// With --json: include key material (ignored with -p).
    #[arg(long, requires = "json")]
    pub show_keys: bool,
    /// A command and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// Something that ends the run (daemon unreachable, connection lost, output failed).
#[derive(Debug)]
pub struct Fatal(pub String);

/// Where a command came from, for error messages.
#[derive(Clone, Debug, Default)]
struct Origin {
    /// File name and the line of the command, when from a file.
    place: Option<(String, Option<usize>)>,
}

impl Origin {
    fn prefix(&self, line: Option<usize>) -> String {
        match &self.place {
            Some((f, l)) => match line.or(*l) {
                Some(l) => format!("{f}:{l}: "),
                None => format!("{f}: "),
            },
            None => String::new(),
        }
    }
}

/// A PF_KEY client session with its options and state.
pub struct Session {
    numeric: bool,
    verbose: bool,
    paranoid: bool,
    json: bool,
    show_keys: bool,
    socket: PathBuf,
    conn: Option<Conn>,
    seq: u32,
    pid: u32,
    buf: Zeroizing<Vec<u8>>,
    failed: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn out(text: &str) -> Result<(), Fatal> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| Fatal(format!("writing standard output: {e}")))
}

impl Session {
    fn new(args: &Args) -> Self {
        let socket = args
            .socket
            .clone()
            .or_else(|| std::env::var_os("IRONSWAN_PFKEY_SOCKET").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        Self {
            numeric: args.numeric,
            verbose: args.verbose,
            paranoid: args.paranoid,
            json: args.json,
            show_keys: args.show_keys && !args.paranoid,
            socket,
            conn: None,
            seq: 0,
            pid: std::process::id(),
            buf: Zeroizing::new(Vec::new()),
            failed: false,
        }
    }

    fn print_opts(&self) -> PrintOpts {
        PrintOpts {
            numeric: self.numeric,
            paranoid: self.paranoid,
            verbose: self.verbose,
        }
    }

    fn parse_opts(&self) -> ParseOptions {
        ParseOptions {
            numeric: self.numeric,
        }
    }

    fn conn(&mut self) -> Result<&Conn, Fatal> {
        if self.conn.is_none() {
            let c = Conn::connect(&self.socket).map_err(|e| {
                Fatal(format!(
                    "cannot reach ipsecd at {}: {e}",
                    self.socket.display()
                ))
            })?;
            self.conn = Some(c);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| Fatal("no connection to ipsecd".into()))
    }

    fn fail(&mut self, origin: &Origin, line: Option<usize>, msg: &str) {
        self.failed = true;
        eprintln!("ipseckey: {}{msg}", origin.prefix(line));
    }

    /// Formats one message (text or JSON) into zeroizing memory.
    fn render(&self, m: &Message, len: usize, timestamp: bool) -> Zeroizing<String> {
        // Sized up front: a growing String would leave copies of key text behind.
        let mut s = Zeroizing::new(String::with_capacity(8 * len + 4096));
        if self.json {
            // Serialized straight into the zeroizing buffer (no temporary String), and the
            // value's key texts wiped afterwards.
            let mut v = json::message(m, len, self.show_keys);
            let mut buf = Zeroizing::new(Vec::with_capacity(8 * len + 4096));
            let ok = serde_json::to_writer(&mut *buf, &v).is_ok();
            json::scrub(&mut v);
            if ok {
                s.push_str(std::str::from_utf8(&buf).unwrap_or_default());
            }
            s.push('\n');
        } else {
            print::samsg(&mut s, m, len, self.print_opts(), now(), timestamp);
        }
        s
    }

    /// Sends `m` with the next sequence number; returns that number.
    fn send(&mut self, m: &mut Message) -> Result<u32, Fatal> {
        self.seq = self.seq.wrapping_add(1).max(1);
        m.seq = self.seq;
        m.pid = self.pid;
        let bytes = Zeroizing::new(
            m.emit()
                .map_err(|e| Fatal(format!("cannot encode the PF_KEY message: {e}")))?,
        );
        if self.verbose {
            let mut s = Zeroizing::new(String::with_capacity(8 * bytes.len() + 4096));
            s.push_str(
                "VERBOSE ON:  Message to kernel looks like:\n==========================================\n",
            );
            print::samsg(&mut s, m, bytes.len(), self.print_opts(), now(), false);
            s.push_str("==========================================\n");
            if self.json {
                eprint!("{}", *s);
            } else {
                out(&s)?;
            }
        }
        match self.conn()?.send(&bytes) {
            Ok(Sent::Done) => Ok(self.seq),
            Ok(Sent::WouldBlock) => Err(Fatal("ipsecd is not accepting messages".into())),
            Ok(Sent::Closed) => Err(Fatal("ipsecd closed the connection".into())),
            Err(e) => Err(Fatal(format!("sending to ipsecd: {e}"))),
        }
    }

    /// Waits up to `timeout` (`None`: forever) for one message, also returning early when
    /// `signals` has a signal (then `Ok(None)`).
    fn recv(
        &mut self,
        timeout: Option<Duration>,
        signals: Option<&SignalPipe>,
    ) -> Result<Option<(Message, usize)>, Fatal> {
        if self.buf.len() < MAX_MSG_LEN {
            self.buf = Zeroizing::new(vec![0u8; MAX_MSG_LEN]);
        }
        loop {
            let conn = self.conn()?;
            let ready = {
                let mut fds = vec![PollFd::new(conn, PollFlags::IN)];
                if let Some(s) = signals {
                    fds.push(PollFd::new(s, PollFlags::IN));
                }
                let n = ipsec_sys::poll(&mut fds, timeout)
                    .map_err(|e| Fatal(format!("waiting for ipsecd: {e}")))?;
                if n == 0 && signals.is_none() {
                    return Ok(None);
                }
                fds.first().is_some_and(|f| !f.revents().is_empty())
            };
            if let Some(s) = signals {
                if !s.take().is_empty() {
                    return Ok(None);
                }
            }
            if !ready {
                continue;
            }
            let Some(conn) = self.conn.as_ref() else {
                return Err(Fatal("no connection to ipsecd".into()));
            };
            match conn.recv(&mut self.buf) {
                Ok(Recv::Msg(n)) => {
                    let bytes = self.buf.get(..n).unwrap_or(&[]);
                    match Message::parse(bytes) {
                        Ok(m) => return Ok(Some((m, n))),
                        Err(e) => eprintln!("ipseckey: ignoring a malformed PF_KEY message: {e}"),
                    }
                }
                Ok(Recv::Truncated(n)) => {
                    eprintln!("ipseckey: ignoring a PF_KEY message of {n} bytes (too large)")
                }
                Ok(Recv::WouldBlock) => {}
                Ok(Recv::Closed) => return Err(Fatal("ipsecd closed the connection".into())),
                Err(e) => return Err(Fatal(format!("reading from ipsecd: {e}"))),
            }
        }
    }

    /// The reply to our message `seq`.
    fn reply(&mut self, seq: u32) -> Result<(Message, usize), Fatal> {
        let deadline = std::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.recv(Some(left), None)? {
                Some((m, n)) if m.pid == self.pid && m.seq == seq => return Ok((m, n)),
                Some(_) => {}
                None => return Err(Fatal("Reply message from PF_KEY timed out.".into())),
            }
        }
    }

    /// Sends a DUMP of `satype` and hands every record to `each`; returns the error reply
    /// if the dump failed.
    fn dump(
        &mut self,
        satype: u8,
        each: &mut dyn FnMut(&Self, Message, usize) -> Result<(), Fatal>,
    ) -> Result<Option<Message>, Fatal> {
        let mut m = Message::new(SADB_DUMP, satype);
        let seq = self.send(&mut m)?;
        let deadline = std::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some((r, n)) = self.recv(Some(left), None)? else {
                return Err(Fatal("Reply message from PF_KEY timed out.".into()));
            };
            if r.pid != self.pid || r.msg_type != SADB_DUMP {
                continue;
            }
            if r.errno != 0 && (r.seq == seq || r.seq == 0) {
                return Ok(Some(r));
            }
            if r.seq == 0 {
                return Ok(None);
            }
            if r.seq == seq {
                each(self, r, n)?;
            }
        }
    }

    /// Reports an error reply to `req` the way Solaris' ipseckey does.
    fn report(&mut self, origin: &Origin, spec: Option<&SaSpec>, req: &Message, rep: &Message) {
        let line = spec.map(|s| s.line);
        let sa_words = || {
            let satype = spec.map_or("?", |s| s.satype.name());
            let spi = req.sa.map_or(0, |s| s.spi);
            let dst = req
                .dst
                .map_or_else(|| "?".to_string(), |d| d.ip().to_string());
            format!("Association (type = {satype}) with spi 0x{spi:x} and addr {dst}")
        };
        let first = match (rep.errno, req.msg_type) {
            (ESRCH, SADB_GET | SADB_DELETE | SADB_X_DELPAIR) => {
                format!("{} does not exist.", sa_words())
            }
            (EEXIST, SADB_ADD | SADB_UPDATE) => format!("{} already exists.", sa_words()),
            (EINVAL, _) => format!(
                "One of the entered values is incorrect: {}.",
                print::errno_text(rep.errno)
            ),
            (e, t) => format!(
                "PF_KEY {} failed: {}.",
                print::msg_type_text(t),
                print::errno_text(e)
            ),
        };
        self.fail(origin, line, &first);
        if rep.diagnostic != 0 || rep.errno == EINVAL {
            eprintln!("  PF_KEY {}", print::diagnostic_text(rep.diagnostic));
        }
    }

    /// Runs one command. Daemon-reported failures are printed and remembered; `Err` ends
    /// the run.
    fn run(&mut self, cmd: &Command, origin: &Origin) -> Result<(), Fatal> {
        match cmd {
            Command::Help(word) => out(&help_text(word.as_deref())),
            Command::Monitor => self.monitor(false),
            Command::PassiveMonitor => self.monitor(true),
            Command::Dump(t) => self.do_dump(*t, origin),
            Command::Save { satype, file } => self.save(*satype, file.as_deref(), origin),
            _ => self.simple(cmd, origin),
        }
    }

    /// Add, update(-pair), delete(-pair), get, flush: one request, one reply.
    fn simple(&mut self, cmd: &Command, origin: &Origin) -> Result<(), Fatal> {
        let spec = match cmd {
            Command::Add(s)
            | Command::Update(s)
            | Command::UpdatePair(s)
            | Command::Delete(s)
            | Command::DeletePair(s)
            | Command::Get(s) => Some(s),
            _ => None,
        };
        let mut req = match request(cmd, 0, self.pid) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.fail(origin, None, &e.to_string());
                return Ok(());
            }
        };
        let seq = self.send(&mut req)?;
        let (rep, len) = self.reply(seq)?;
        if rep.errno != 0 {
            self.report(origin, spec, &req, &rep);
            return Ok(());
        }
        if matches!(cmd, Command::Get(_)) {
            out(&self.render(&rep, len, false))?;
        }
        Ok(())
    }

    fn do_dump(&mut self, t: SaType, origin: &Origin) -> Result<(), Fatal> {
        let n = satype_number(t);
        let err = self.dump(n, &mut |s, m, len| {
            let mut text = s.render(&m, len, false);
            if !s.json {
                text.push('\n');
            }
            out(&text)
        })?;
        match err {
            None => {
                if !self.json {
                    out(&format!("Dump succeeded for SA type {n}.\n"))?;
                }
            }
            Some(r) => {
                self.fail(
                    origin,
                    None,
                    &format!("Dump failed: {}.", print::errno_text(r.errno)),
                );
                eprintln!("  PF_KEY {}", print::diagnostic_text(r.diagnostic));
            }
        }
        Ok(())
    }

    fn save(&mut self, t: SaType, file: Option<&str>, origin: &Origin) -> Result<(), Fatal> {
        let mut records = Vec::new();
        let err = self.dump(satype_number(t), &mut |_, m, _| {
            records.push(m);
            Ok(())
        })?;
        if let Some(r) = err {
            self.fail(
                origin,
                None,
                &format!("Dump failed: {}.", print::errno_text(r.errno)),
            );
            eprintln!("  PF_KEY {}", print::diagnostic_text(r.diagnostic));
            return Ok(());
        }
        let text = save::save_text(&records, self.paranoid);
        match file {
            None | Some("-") => out(&text),
            Some(path) => {
                if let Err(e) =
                    ipsec_sys::file::write_private_atomic(Path::new(path), text.as_bytes())
                {
                    self.fail(origin, None, &format!("cannot write {path}: {e}"));
                }
                Ok(())
            }
        }
    }

    fn monitor(&mut self, passive: bool) -> Result<(), Fatal> {
        let signals = SignalPipe::new(&[SIGINT, SIGTERM])
            .map_err(|e| Fatal(format!("cannot catch signals: {e}")))?;
        self.conn()?;
        if passive {
            if !self.json {
                out("Passively monitoring the PF_KEY socket.\n")?;
            }
        } else {
            let mut m = Message::new(SADB_X_PROMISC, 1);
            self.send(&mut m)?;
            if !self.json {
                out("Actively monitoring the PF_KEY socket.\n")?;
            }
        }
        while let Some((m, n)) = self.recv(None, Some(&signals))? {
            let mut text = Zeroizing::new(String::with_capacity(8 * n + 4096));
            if !self.json {
                text.push_str(&format!("Read {n} bytes.\n"));
            }
            text.push_str(&self.render(&m, n, true));
            if !self.json {
                text.push('\n');
            }
            out(&text)?;
        }
        Ok(())
    }

    /// Interactive mode (or commands piped to standard input).
    fn interactive(&mut self, input: &mut dyn BufRead, prompt: bool) -> Result<(), Fatal> {
        let origin = Origin::default();
        let mut line_no = 0usize;
        loop {
            if prompt {
                out("ipseckey> ")?;
            }
            // One command: physical lines joined while they end in `\`.
            let mut chunk = Zeroizing::new(String::with_capacity(16 * 1024));
            let start = line_no + 1;
            loop {
                let mut line = Zeroizing::new(String::with_capacity(4096));
                let n = input
                    .read_line(&mut line)
                    .map_err(|e| Fatal(format!("reading standard input: {e}")))?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                chunk.push_str(&line);
                let body = line.trim_end_matches(['\n', '\r']);
                if !body.ends_with('\\') {
                    break;
                }
            }
            if chunk.is_empty() {
                if prompt {
                    out("\n")?;
                }
                return Ok(());
            }
            let first = chunk.split_whitespace().next().unwrap_or("");
            if first == "quit" || first == "exit" {
                return Ok(());
            }
            match parse_with(&chunk, "<stdin>", self.parse_opts()) {
                Ok(cmds) => {
                    for c in &cmds {
                        self.run(c, &origin)?;
                    }
                }
                Err(mut e) => {
                    e.line += start - 1;
                    self.fail(&origin, None, &e.to_string());
                }
            }
        }
    }
}

fn help_text(word: Option<&str>) -> String {
    let t = match word {
        Some("attr") => {
            "SA attributes (see ipseckey(8)):\n    spi pair-spi inbound outbound replay replay_value state\n    \
             auth_alg authalg encr_alg encralg authkey encrkey\n    \
             soft_alloc soft_bytes soft_addtime soft_usetime hard_alloc hard_bytes hard_addtime\n    \
             hard_usetime idle_addtime idle_usetime\n    \
             saddr srcaddr src saddr6 srcaddr6 src6 daddr dstaddr dst daddr6 dstaddr6 dst6\n    \
             sport dport proto ulp encap nat_loc nat_rem nat_lport nat_rport\n    \
             isrc innersrc proxyaddr proxy isrc6 innersrc6 idst innerdst idst6 innerdst6\n    \
             isport innersport idport innerdport iproto iulp srcidtype dstidtype\n    \
             esn allow_legacy no_copy_dscp no_padding_check unique (Ironswan)\n"
        }
        Some("add") => "add SA_TYPE {ATTR VALUE}... - add an SA (interactive or -f only)\n",
        Some("update") => "update SA_TYPE {ATTR VALUE}... - update an SA (interactive or -f only)\n",
        Some("update-pair") => {
            "update-pair SA_TYPE {ATTR VALUE}... - update an SA and its pair (interactive or -f only)\n"
        }
        Some("delete") => "delete SA_TYPE spi N dst ADDR - delete an SA\n",
        Some("delete-pair") => "delete-pair SA_TYPE spi N dst ADDR - delete an SA and its pair\n",
        Some("get") => "get SA_TYPE spi N dst ADDR - display an SA\n",
        Some("flush") => "flush [all|ah|esp] - delete all SAs (of one type)\n",
        Some("dump") => "dump [all|ah|esp] - display all SAs (of one type)\n",
        Some("save") => "save all|ah|esp [FILE] - write SAs as add commands (FILE mode 0600; - = stdout)\n",
        Some("monitor") => "monitor - display every PF_KEY message (SADB_X_PROMISC)\n",
        Some("passive_monitor") | Some("pmonitor") => {
            "pmonitor, passive_monitor - display PF_KEY messages sent to all PF_KEY sockets\n"
        }
        Some("quit") | Some("exit") => "quit, exit - leave ipseckey\n",
        Some("help") | Some("?") => {
            "help - list commands\nhelp COMMAND - help for a command\nhelp attr - list SA attributes\n"
        }
        Some(w) => return format!("{w}: Unknown command\n"),
        None => {
            "Commands\n--------\n?, help  - Display this list\nhelp <cmd> - Display help for command\n\
             help attr  - Display possible SA attributes\nquit, exit - Exit the program\n\
             monitor - Monitor all PF_KEY reply messages.\n\
             pmonitor, passive_monitor - Monitor PF_KEY messages that reply to all PF_KEY sockets.\n\n\
             The following commands are of the form:\n    <command> {SA type} {attribute value}*\n\n\
             add (interactive only) - Add a new security association (SA)\n\
             update (interactive only) - Update an existing SA\n\
             update-pair (interactive only) - Update an existing SA pair\n\
             delete - Delete an SA\ndelete-pair - Delete an SA pair\nget - Display an SA\n\
             flush - Delete all SAs\ndump - Display all SAs\nsave - Saves all SAs to a file\n"
        }
    };
    t.to_string()
}

/// Commands a command file may not hold: the line (1-based) and word of the first one.
/// Solaris refuses these in configuration files ("... not appropriate in config file").
pub fn file_forbidden(text: &str) -> Option<(usize, usize, String)> {
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        let was_continued = continued;
        continued = line.trim_end().ends_with('\\');
        if was_continued {
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        if matches!(
            word,
            "dump" | "save" | "monitor" | "passive_monitor" | "pmonitor" | "help" | "?"
        ) {
            let col = line.chars().take_while(|c| c.is_whitespace()).count() + 1;
            return Some((i + 1, col, word.to_string()));
        }
    }
    None
}

/// Reads and parses a command file (keys stay in zeroizing memory).
fn read_file(path: &Path, opts: ParseOptions) -> Result<Vec<Command>, String> {
    let name = path.display().to_string();
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| format!("{name}: {e}"))?);
    if let Ok(md) = std::fs::metadata(path) {
        if md.permissions().mode() & 0o007 != 0 {
            eprintln!(
                "ipseckey: Config file {name} has insecure permissions (readable by others); it holds keys."
            );
        }
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let good = bytes.get(..e.valid_up_to()).unwrap_or(&[]);
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        format!("{name}:{line}: not UTF-8 text")
    })?;
    let cmds = parse_with(text, &name, opts).map_err(|e: ParseError| e.to_string())?;
    if let Some((line, col, word)) = file_forbidden(text) {
        return Err(format!(
            "{name}:{line}:{col}: `{word}` not appropriate in a command file"
        ));
    }
    Ok(cmds)
}

/// Quotes a command-line word for the ipseckey tokenizer when it has blanks or starts a
/// comment.
fn quote_word(w: &str) -> String {
    if w.is_empty() || w.starts_with('#') || w.chars().any(char::is_whitespace) {
        format!("\"{w}\"")
    } else {
        w.to_string()
    }
}

/// The whole program; `args` as from `std::env::args_os`.
pub fn main_with(args: Vec<OsString>) -> ExitCode {
    let args: Args = match crate::parse_args(args, 1) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut s = Session::new(&args);
    match run(&args, &mut s) {
        Ok(()) if !s.failed => ExitCode::SUCCESS,
        Ok(()) => ExitCode::from(1),
        Err(Fatal(msg)) => {
            eprintln!("ipseckey: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args, s: &mut Session) -> Result<(), Fatal> {
    if let Some(path) = &args.check {
        match read_file(path, s.parse_opts()) {
            Ok(_) => return Ok(()),
            Err(e) => {
                s.fail(&Origin::default(), None, &e);
                return Ok(());
            }
        }
    }
    if (args.file.is_some() || args.save_file.is_some()) && !args.command.is_empty() {
        return Err(Fatal(
            "a command cannot be combined with -f or -s (see ipseckey --help)".into(),
        ));
    }
    if let Some(path) = &args.file {
        let cmds = match read_file(path, s.parse_opts()) {
            Ok(c) => c,
            Err(e) => {
                s.fail(&Origin::default(), None, &e);
                return Ok(());
            }
        };
        let origin = Origin {
            place: Some((path.display().to_string(), None)),
        };
        for c in &cmds {
            s.run(c, &origin)?;
        }
        return Ok(());
    }
    if let Some(file) = &args.save_file {
        return s.save(SaType::All, Some(file.as_str()), &Origin::default());
    }
    if args.command.is_empty() {
        let stdin = io::stdin();
        let prompt = stdin.is_terminal();
        return s.interactive(&mut stdin.lock(), prompt);
    }
    let first = args.command.first().map_or("", String::as_str);
    match first {
        "add" | "update" | "update-pair" => {
            return Err(Fatal(format!(
                "can't do {first} from the command line: keys would show in ps(1). \
                 Use -f FILE or interactive mode (commands on standard input)."
            )))
        }
        "quit" | "exit" => return Ok(()),
        _ => {}
    }
    let line = Zeroizing::new(
        args.command
            .iter()
            .map(|w| quote_word(w))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let cmds = match parse_with(&line, "<command line>", s.parse_opts()) {
        Ok(c) => c,
        Err(e) => {
            s.fail(&Origin::default(), None, &e.to_string());
            return Ok(());
        }
    };
    let origin = Origin::default();
    for c in &cmds {
        s.run(c, &origin)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_commands_in_files_are_found_with_their_line() {
        assert_eq!(file_forbidden("flush\n# dump\nadd esp \\\n dump\n"), None);
        assert_eq!(
            file_forbidden("flush\n   dump esp\n"),
            Some((2, 4, "dump".into()))
        );
        assert_eq!(file_forbidden("monitor"), Some((1, 1, "monitor".into())));
    }

    #[test]
    fn command_line_words_are_quoted_when_needed() {
        assert_eq!(quote_word("spi"), "spi");
        assert_eq!(quote_word("a b"), "\"a b\"");
        assert_eq!(quote_word("#x"), "\"#x\"");
    }

    #[test]
    fn options_parse_like_getopt() {
        let a = Args::try_parse_from([
            "ipseckey", "-nvp", "delete", "esp", "spi", "0x100", "dst", "-",
        ])
        .unwrap();
        assert!(a.numeric && a.verbose && a.paranoid);
        assert_eq!(a.command, ["delete", "esp", "spi", "0x100", "dst", "-"]);
        let a = Args::try_parse_from(["ipseckey", "-p", "-s", "-"]).unwrap();
        assert_eq!(a.save_file.as_deref(), Some("-"));
        assert!(Args::try_parse_from(["ipseckey", "-f", "a", "-s", "b"]).is_err());
    }
}
