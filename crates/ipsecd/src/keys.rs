//! State that survives a restart: the keys file loaded at start (in the ipseckey language,
//! after a flush, as Solaris' manual-key service does) and the atomic save of the current
//! SAs.

use std::path::Path;

use ipsec_config::ipseckey::request::request;
use ipsec_config::ipseckey::{self, Command};
use ipsec_core::SaState;
use ipsec_pfkey::consts::{SADB_FLUSH, SADB_SATYPE_UNSPEC};
use ipsec_pfkey::diag::Diagnostic;
use ipsec_pfkey::engine::{ClientId, KeyEngine, Output};
use ipsec_pfkey::wire::Message;

/// The engine client id the daemon itself uses.
const SELF: ClientId = ClientId(0);

/// Flushes the SADB and applies the commands of the ipseckey file at `path`. The file is
/// parsed (and every `add` checked) before anything changes; an operation the engine
/// refuses stops the load with the file, line and the engine's diagnostic. Returns how
/// many SAs were added.
pub fn load(
    engine: &mut KeyEngine,
    path: &Path,
    now: u64,
    sink: &mut dyn FnMut(Output),
) -> Result<usize, String> {
    let cmds = ipseckey::parse_file(path).map_err(|e| redacted(&e))?;
    let file = path.display();
    let pid = std::process::id();
    engine.open(SELF);
    let result = (|| {
        let mut flush = Message::new(SADB_FLUSH, SADB_SATYPE_UNSPEC);
        flush.pid = pid;
        run(engine, now, &flush, sink).map_err(|e| format!("{file}: flush: {e}"))?;
        let mut added = 0;
        for (i, cmd) in cmds.iter().enumerate() {
            let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let line = match cmd {
                Command::Add(spec)
                | Command::Update(spec)
                | Command::UpdatePair(spec)
                | Command::Delete(spec)
                | Command::DeletePair(spec) => spec.line,
                Command::Flush(_) => 0,
                other => {
                    return Err(format!(
                        "{file}: `{}` is not allowed in a keys file (add, update, update-pair, \
                         delete, delete-pair and flush are)",
                        command_name(other)
                    ))
                }
            };
            let Some(msg) = request(cmd, seq, pid).map_err(|e| redacted(&e))? else {
                continue;
            };
            run(engine, now, &msg, sink).map_err(|e| format!("{file}:{line}: {e}"))?;
            if matches!(cmd, Command::Add(_)) {
                added += 1;
            }
        }
        Ok(added)
    })();
    engine.close(SELF);
    result
}

/// A keys-file error as the daemon reports it (to its log and the control socket): the
/// place and what was expected, never the offending text, which may be key material (as
/// Solaris keeps ipseckey syntax errors out of the world-readable log).
fn redacted(e: &ipseckey::ParseError) -> String {
    if e.line == 0 {
        format!("{}: {}", e.file, e.expected)
    } else {
        format!(
            "{}:{}:{}: syntax error (text not shown: it may be key material), expected {}",
            e.file, e.line, e.column, e.expected
        )
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Add(_) => "add",
        Command::Update(_) => "update",
        Command::UpdatePair(_) => "update-pair",
        Command::Delete(_) => "delete",
        Command::DeletePair(_) => "delete-pair",
        Command::Get(_) => "get",
        Command::Flush(_) => "flush",
        Command::Dump(_) => "dump",
        Command::Save { .. } => "save",
        Command::Monitor => "monitor",
        Command::PassiveMonitor => "passive_monitor",
        Command::Help(_) => "help",
    }
}

/// Hands one request to the engine as the daemon's own client and returns the error of
/// its reply, if any. Every output (replies and broadcasts, which other clients see as
/// they would see anyone's) goes to `sink`.
fn run(
    engine: &mut KeyEngine,
    now: u64,
    msg: &Message,
    sink: &mut dyn FnMut(Output),
) -> Result<(), String> {
    let bytes = msg.emit().map_err(|e| e.what.to_string())?;
    engine.handle(now, SELF, &bytes);
    let mut err = None;
    while let Some(out) = engine.poll_output() {
        if out.to.contains(&SELF) && err.is_none() {
            if let Ok(r) = Message::parse(&out.bytes) {
                if r.errno != 0 && r.seq == msg.seq {
                    let diag = Diagnostic::from_u16(r.diagnostic)
                        .map_or_else(|| format!("diagnostic {}", r.diagnostic), |d| d.to_string());
                    err = Some(format!("refused: errno {} ({diag})", r.errno));
                }
            }
        }
        sink(out);
    }
    err.map_or(Ok(()), Err)
}

/// The SAs worth keeping (mature and dying; larval ones belong to a key manager's
/// exchange in progress) as ipseckey `add` commands.
pub fn render(engine: &KeyEngine) -> String {
    let mut o = String::from(
        "# Security associations saved by ipsecd; loaded again at start (ipsecd --keys-file).\n",
    );
    for (_, sa) in engine.sadb().iter() {
        if matches!(sa.state(), SaState::Larval | SaState::Dead) {
            continue;
        }
        let mut cfg = sa.config().clone();
        cfg.state = sa.state();
        // The sequence counter where it is now, so that a restart neither resends used
        // sequence numbers nor accepts replays of old packets.
        cfg.replay_value = cfg.replay_value.max(sa.seq_out()).max(sa.replay().top());
        o.push_str(&ipseckey::print_add(&cfg, false));
        o.push('\n');
    }
    o
}

/// Saves the SAs to `path` atomically (temporary file, fsync, rename), mode 0600.
pub fn save(engine: &KeyEngine, path: &Path) -> std::io::Result<usize> {
    let text = render(engine);
    ipsec_sys::file::write_private_atomic(path, text.as_bytes())?;
    Ok(engine
        .sadb()
        .iter()
        .filter(|(_, sa)| !matches!(sa.state(), SaState::Larval | SaState::Dead))
        .count())
}
