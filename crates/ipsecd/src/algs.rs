//! The ipsecalgs(8) table inside the daemon (Solaris's kernel algorithm table).
//!
//! | request | reply |
//! |---|---|
//! | `algs show` | `ok` + newline + the table in the file format: the last synced one, or the built-in table |
//! | `algs sync NAME` + newline + file text | `ok synced ...`, or `error NAME:LINE:COLUMN: ...` naming the first entry ipsecd cannot implement |
//!
//! `ipsecd --algs-file PATH` syncs a table file at start (and refuses to start if it holds
//! an entry it cannot implement).
//!
//! A sync is all or nothing: the text is parsed and every entry checked against ipsec-crypto
//! ([`ipsec_config::ipsecalgs::Table::validate`]); on any error the previous table stays.
//! What an accepted sync changes: the PF_KEY engine's [`AlgFilter`](ipsec_pfkey::engine::AlgFilter)
//! (ADD and UPDATE of an SA whose algorithm number is absent from the table, or whose key size
//! the entry does not list, are refused with `BAD_AALG`/`BAD_EALG`/`BAD_AKEYBITS`/
//! `BAD_EKEYBITS`), the SUPPORTED lists of REGISTER replies (only the table's algorithms,
//! with key-size ranges narrowed to its sizes) and the table `algs show` serves. It does not rename or renumber
//! algorithms (names are resolved by the tools from the built-in table, numbers are fixed by
//! ipsec-crypto), and SAs already installed are kept; the reply counts those whose algorithm
//! the new table no longer allows.

use ipsec_config::ipsecalgs::{parse, Table};

use crate::server::Server;

/// The text after `algs` if this is an algs request.
pub fn request(request: &str) -> Option<&str> {
    let rest = request.strip_prefix("algs")?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// Handles one algs request (the text after `algs`).
pub fn handle(srv: &Server, rest: &str) -> String {
    let (head, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let words: Vec<&str> = head.split_whitespace().collect();
    match words.as_slice() {
        ["show"] => {
            let g = srv.lock();
            let text = g
                .algs
                .clone()
                .unwrap_or_else(|| Table::builtin().to_file_text());
            format!("ok\n{text}")
        }
        ["sync", name] => sync(srv, name, body),
        _ => "error expected `algs show` or `algs sync NAME` followed by the table text".into(),
    }
}

/// Syncs the table in `path` at start (`--algs-file`, what Solaris's ipsecalgs service does
/// at boot); a file ipsecd cannot implement is an error naming its file, line and column.
pub fn load(srv: &Server, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reply = sync(srv, &path.display().to_string(), &text);
    match reply.strip_prefix("error ") {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}

/// A table read and checked against what ipsecd implements, ready for [`apply`].
pub struct Checked {
    table: Table,
    filter: ipsec_pfkey::engine::AlgFilter,
}

/// Parses `text` (named `name` in errors) and checks every entry; changes nothing.
pub fn check(name: &str, text: &str) -> Result<Checked, String> {
    let table = parse(text, name).map_err(|e| e.to_string())?;
    let filter = table
        .validate(name)
        .map_err(|e| format!("{e} (table unchanged)"))?;
    Ok(Checked { table, filter })
}

fn sync(srv: &Server, name: &str, text: &str) -> String {
    match check(name, text) {
        Ok(c) => apply(srv, name, c),
        Err(e) => format!("error {e}"),
    }
}

/// Installs a checked table; returns the `ok ...` reply.
pub fn apply(srv: &Server, name: &str, checked: Checked) -> String {
    let Checked { table, filter } = checked;
    let (auth, encr) = (filter.auth.len(), filter.encr.len());
    let mut g = srv.lock();
    let stale = g
        .keys
        .sadb()
        .iter()
        .filter(|(_, sa)| filter.check(sa.config()).is_err())
        .count();
    g.keys.set_alg_filter(Some(filter));
    g.algs = Some(table.to_file_text());
    drop(g);
    crate::log::info(format_args!(
        "ipsecalgs table synced from {name}: {} protocol(s), {auth} authentication and {encr} encryption algorithm(s)",
        table.protos.len()
    ));
    format!(
        "ok synced {} protocol(s), {auth} authentication and {encr} encryption algorithm(s); {stale} installed SA(s) use algorithms or key sizes the table no longer lists (kept)",
        table.protos.len()
    )
}
