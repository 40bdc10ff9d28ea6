//! The body of the `ipsecd_text` fuzz target (`fuzz/fuzz_targets/ipsecd_text.rs`, which
//! compiles this file with the modules it uses, since ipsecd is a binary), replayed over
//! the committed fuzz inputs by the test below: ipsecd's small text parsers.

use std::path::Path;

use crate::iptun::TunnelEnds;
use crate::logger::props::Stored;

/// The bytes as text, each line as a `--tunnel NAME=LOCAL,REMOTE` argument and the whole
/// as the policy logger's properties file; also each `NAME=VALUE` line set as a property
/// (what `logger setprop` does).
///
/// A tunnel that parses has endpoints of one family and prints back into an argument
/// that parses to the same tunnel. A properties file that parses renders into text that
/// parses to the same properties; an error is `FILE:LINE:COLUMN: message` with the line
/// and column inside the input. A property that `set` accepts survives the file too.
pub fn ipsecd_text(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Ok(t) = line.parse::<TunnelEnds>() {
            if t.local.is_ipv4() != t.remote.is_ipv4() {
                return Err(format!("{line:?}: endpoints of two families"));
            }
            let printed = format!("{}={},{}", t.name, t.local, t.remote);
            if printed.parse::<TunnelEnds>().as_ref() != Ok(&t) {
                return Err(format!(
                    "{line:?} printed as {printed:?} parses differently"
                ));
            }
        }
    }
    let path = Path::new("logger.conf");
    match Stored::parse(path, &text) {
        Ok(s) => {
            let rendered = s.render();
            let back = Stored::parse(path, &rendered)
                .map_err(|e| format!("rendered properties do not parse: {e}"))?;
            if back != s {
                return Err(format!(
                    "rendered properties parse differently:\n{rendered}"
                ));
            }
        }
        Err(e) => check_position(&e, &text)?,
    }
    let mut s = Stored::default();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once('=') {
            if s.props.set(name, value).is_ok() {
                let rendered = s.render();
                let back = Stored::parse(path, &rendered)
                    .map_err(|e| format!("{line:?}: rendered properties do not parse: {e}"))?;
                if back != s {
                    return Err(format!("{line:?} set, rendered and read back differs"));
                }
            }
        }
    }
    Ok(())
}

/// `logger.conf:LINE:COLUMN: ...` with LINE and COLUMN (bytes) inside `text`.
fn check_position(e: &str, text: &str) -> Result<(), String> {
    let mut it = e.splitn(4, ':');
    let (Some("logger.conf"), Some(l), Some(c)) = (it.next(), it.next(), it.next()) else {
        return Err(format!("error is not FILE:LINE:COLUMN: {e}"));
    };
    let (Ok(l), Ok(c)) = (l.parse::<usize>(), c.parse::<usize>()) else {
        return Err(format!("error is not FILE:LINE:COLUMN: {e}"));
    };
    let width = text
        .lines()
        .nth(l.wrapping_sub(1))
        .map(str::len)
        .ok_or_else(|| format!("error line outside the input: {e}"))?;
    if c == 0 || c > width + 1 {
        return Err(format!(
            "error column outside its line ({width} bytes): {e}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::path::{Path, PathBuf};

    fn inputs(kind: &str) -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz")
            .join(kind)
            .join("ipsecd_text");
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    }

    /// Every committed seed and regression input of `ipsecd_text` passes its body.
    #[test]
    fn ipsecd_text_fuzz_inputs_replay() {
        let seeds = inputs("seeds");
        assert!(seeds.len() >= 2, "no ipsecd_text seeds");
        for p in seeds.iter().chain(&inputs("regressions")) {
            if let Err(what) = super::ipsecd_text(&std::fs::read(p).unwrap()) {
                panic!("{}: {what}", p.display());
            }
        }
    }
}
