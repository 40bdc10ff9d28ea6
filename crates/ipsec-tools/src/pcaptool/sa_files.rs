//! SA sources: ipseckey(8) files (`add` commands only) and Wireshark `esp_sa` tables, both
//! parsed by `ipsec-config`. Errors are ready to print: they name the file, line and (from the
//! parser) column.

use std::path::Path;

use ipsec_config::esp_sa;
use ipsec_config::ipseckey::{self, Command};
use ipsec_core::Mode;

use super::SaSource;

/// The 1-based line on which each command of an ipseckey text starts: one command per logical
/// line, `#` comments and blank lines skipped, `\` at the end of a line continuing it.
fn command_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut continued = false;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        let starts = !continued && !t.is_empty() && !t.starts_with('#');
        if starts {
            out.push(i + 1);
        }
        continued = (continued || starts) && t.ends_with('\\');
    }
    out
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

/// Loads the `add` commands of an ipseckey file. Any other command is an error naming its line.
pub fn load_ipseckey(path: &Path) -> Result<Vec<SaSource>, String> {
    let cmds = ipseckey::parse_file(path).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines = command_lines(&text);
    let name = path.display();
    let mut out = Vec::with_capacity(cmds.len());
    for (i, c) in cmds.iter().enumerate() {
        let line = match c {
            Command::Add(s)
            | Command::Update(s)
            | Command::UpdatePair(s)
            | Command::Delete(s)
            | Command::DeletePair(s)
            | Command::Get(s) => Some(s.line),
            _ => lines.get(i).copied().filter(|_| lines.len() == cmds.len()),
        };
        let at = match line {
            Some(l) => format!("{name}:{l}"),
            None => format!("{name}: command {}", i + 1),
        };
        let Command::Add(spec) = c else {
            return Err(format!(
                "{at}: `{}` command: an SA file for ipsecpcap holds only `add` commands",
                command_name(c)
            ));
        };
        let cfg = spec.to_config().map_err(|e| e.to_string())?;
        out.push(SaSource { cfg, origin: at });
    }
    if out.is_empty() {
        return Err(format!("{name}: no `add` commands"));
    }
    Ok(out)
}

/// Loads a Wireshark `esp_sa` table. Wireshark's table has no mode: the SAs are transport
/// mode unless `tunnel` is set (tunnel mode with no inner selectors).
pub fn load_esp_sa(path: &Path, tunnel: bool) -> Result<Vec<SaSource>, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let sas = esp_sa::parse(&text, &name).map_err(|e| e.to_string())?;
    if sas.is_empty() {
        return Err(format!("{name}: no SAs"));
    }
    Ok(sas
        .into_iter()
        .enumerate()
        .map(|(i, mut cfg)| {
            if tunnel {
                cfg.mode = Mode::Tunnel;
            }
            SaSource {
                cfg,
                origin: format!("{name}: entry {}", i + 1),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_skip_comments_and_follow_continuations() {
        let t = "# c\n\nadd esp spi 1 \\\n  dst 1.2.3.4\nflush\n  # x\nflush esp\n";
        assert_eq!(command_lines(t), vec![3, 5, 7]);
    }
}
