//! ikev2cert: manages in.ikev2d's certificate store (after Solaris's ikev2cert(8),
//! which runs pktool(1) on the IKEv2 keystore; the subcommands take pktool's
//! `keyword=value` form).
//!
//! ```text
//! ikev2cert [-d STORE | -f CONFIG] import infile=FILE [keyfile=FILE] [label=LABEL]
//!                                         [objtype=cert|anchor]
//! ikev2cert [-d STORE | -f CONFIG] list [objtype=cert|anchor|key|all]
//! ikev2cert [-d STORE | -f CONFIG] delete label=LABEL | fingerprint=HEX
//! ```
//!
//! The store is `-d`, else the `cert_store` of the configuration (`-f`, default
//! /etc/inet/ike/ikev2.config, when it exists), else /etc/inet/ike/ikev2cert.
//! `import` takes PEM or DER; `objtype=anchor` makes the certificates trust anchors.
//! A private key (in `keyfile`, or in `infile`) must come from a regular file of mode
//! 0600 owned by root and must belong to a certificate of the same import. Keys are
//! never printed: `list` shows their type and the SHA-256 of the public key. Labels
//! are kept in STORE/labels.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ike::cert::store::{self, CertStore, Entry, Kind};
use ike::cert::{Certificate, PrivateKey};
use ikev2d::config::{load_config, DEFAULT_CERT_STORE};
use zeroize::Zeroizing;

const USAGE: &str = "usage: ikev2cert [-d STORE | -f CONFIG] SUBCOMMAND [keyword=value...]
  import infile=FILE [keyfile=FILE] [label=LABEL] [objtype=cert|anchor]
  list [objtype=cert|anchor|key|all]
  delete label=LABEL | fingerprint=HEX";

const DEFAULT_CONFIG: &str = "/etc/inet/ike/ikev2.config";

/// A failure: the message, and whether it is a usage error (exit 2) or not (exit 1).
struct Fail(String, bool);

fn fail<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(msg.into(), false))
}

fn usage<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(format!("{}\n{USAGE}", msg.into()), true))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(Fail(msg, is_usage)) => {
            eprintln!("ikev2cert: {msg}");
            ExitCode::from(if is_usage { 2 } else { 1 })
        }
    }
}

fn run(args: &[String]) -> Result<String, Fail> {
    let mut store_dir: Option<PathBuf> = None;
    let mut config: Option<PathBuf> = None;
    let mut rest = args;
    loop {
        match rest {
            [flag, v, more @ ..] if flag == "-d" => {
                store_dir = Some(PathBuf::from(v));
                rest = more;
            }
            [flag, v, more @ ..] if flag == "-f" => {
                config = Some(PathBuf::from(v));
                rest = more;
            }
            [flag] if flag == "-d" || flag == "-f" => {
                return usage(format!("{flag} needs a value"))
            }
            [flag, ..] if flag == "-h" || flag == "--help" => return Ok(format!("{USAGE}\n")),
            _ => break,
        }
    }
    let Some((cmd, kv)) = rest.split_first() else {
        return usage("no subcommand");
    };
    let kv = keywords(kv)?;
    let dir = match store_dir {
        Some(d) => d,
        None => store_from_config(config)?,
    };
    match cmd.as_str() {
        "import" => {
            only(&kv, &["infile", "keyfile", "label", "objtype"])?;
            import(&dir, &kv)
        }
        "list" => {
            only(&kv, &["objtype"])?;
            list(&dir, kv.get("objtype").map_or("all", String::as_str))
        }
        "delete" | "remove" => {
            only(&kv, &["label", "fingerprint"])?;
            delete(&dir, &kv)
        }
        other => usage(format!(
            "unknown subcommand {other:?}: expected import, list or delete"
        )),
    }
}

fn keywords(args: &[String]) -> Result<BTreeMap<String, String>, Fail> {
    let mut out = BTreeMap::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return usage(format!("{a:?}: expected keyword=value"));
        };
        if v.is_empty() {
            return usage(format!("{k}= has no value"));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return usage(format!("{k}= given twice"));
        }
    }
    Ok(out)
}

fn only(kv: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), Fail> {
    match kv.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => usage(format!(
            "unknown keyword {k:?}: expected {}",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn store_from_config(config: Option<PathBuf>) -> Result<PathBuf, Fail> {
    let (path, given) = match config {
        Some(p) => (p, true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    if !given && !path.exists() {
        return Ok(PathBuf::from(DEFAULT_CERT_STORE));
    }
    load_config(&path)
        .map(|c| c.cert_store())
        .or_else(|e| fail(e.to_string()))
}

fn open(dir: &Path) -> Result<CertStore, Fail> {
    CertStore::open(dir).or_else(|e| fail(e.to_string()))
}

/// Reads the input file `path` from one descriptor opened without following a
/// symbolic link, with that descriptor's metadata (`fstat`, taken before the read), so
/// a later key check is about the bytes read. A symbolic link is followed only for
/// input that turns out to hold no private key (`None` metadata then).
fn read_input(path: &Path) -> Result<(Zeroizing<Vec<u8>>, Option<std::fs::Metadata>), Fail> {
    let show = |e: std::io::Error| Fail(format!("{}: {e}", path.display()), false);
    let (f, md, linked) = match store::open_nofollow(path) {
        Ok((f, md)) => (f, md, false),
        // A link (ELOOP): followed, but then the input may hold no key.
        Err(e) if store::is_link_refused(&e) => {
            let (f, md) = store::open_following(path).map_err(show)?;
            (f, md, true)
        }
        Err(e) => return Err(show(e)),
    };
    if !md.file_type().is_file() {
        return fail(format!("{}: not a regular file", path.display()));
    }
    let data = store::read_all(f).map_err(show)?;
    Ok((data, (!linked).then_some(md)))
}

/// Refuses a private key file others could have read or written (`md` from the
/// descriptor the key is read from; `None`: reached through a symbolic link).
fn check_key_file(path: &Path, md: Option<&std::fs::Metadata>) -> Result<(), Fail> {
    let Some(md) = md else {
        return fail(format!(
            "{}: a symbolic link: a private key file must be named itself",
            path.display()
        ));
    };
    store::FileRule::Private
        .check(md, "a private key")
        .or_else(|w| fail(format!("{}: {w}", path.display())))
}

/// Whether the input holds a private key (PEM with a key block, or a DER key).
fn may_hold_key(data: &[u8]) -> bool {
    match core::str::from_utf8(data) {
        Ok(t) if t.contains("-----BEGIN ") => t.contains("PRIVATE KEY-----"),
        _ => Certificate::from_der(data).is_err() && PrivateKey::from_der(data).is_ok(),
    }
}

// ---------------------------------------------------------------------------------------
// Labels: STORE/labels, one "FINGERPRINT LABEL" per line.

fn labels_path(dir: &Path) -> PathBuf {
    dir.join("labels")
}

fn read_labels(dir: &Path) -> Result<BTreeMap<String, String>, Fail> {
    let p = labels_path(dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return fail(format!("{}: {e}", p.display())),
    };
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let Some((fp, label)) = line.split_once(' ') else {
            return fail(format!(
                "{}:{}: expected FINGERPRINT LABEL",
                p.display(),
                n + 1
            ));
        };
        out.insert(fp.to_string(), label.to_string());
    }
    Ok(out)
}

fn write_labels(dir: &Path, labels: &BTreeMap<String, String>) -> Result<(), Fail> {
    let p = labels_path(dir);
    let tmp = dir.join(".labels.tmp");
    let text: String = labels.iter().map(|(fp, l)| format!("{fp} {l}\n")).collect();
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &p))
        .or_else(|e| fail(format!("{}: {e}", p.display())))
}

// ---------------------------------------------------------------------------------------
// Subcommands.

fn import(dir: &Path, kv: &BTreeMap<String, String>) -> Result<String, Fail> {
    let Some(infile) = kv.get("infile").map(PathBuf::from) else {
        return usage("import needs infile=FILE");
    };
    let trusted = match kv.get("objtype").map(String::as_str) {
        None | Some("cert") => false,
        Some("anchor" | "ta" | "trust-anchor") => true,
        Some(o) => return usage(format!("objtype={o}: expected cert or anchor")),
    };
    if let Some(l) = kv.get("label") {
        if l.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return usage(format!("label={l:?}: a label may not contain spaces"));
        }
    }
    let keyfile = kv.get("keyfile").map(PathBuf::from);
    if trusted && keyfile.is_some() {
        return usage("a trust anchor takes no keyfile");
    }
    let (data, in_md) = read_input(&infile)?;
    let has_key_in = may_hold_key(&data);
    if has_key_in {
        if trusted {
            return fail(format!(
                "{}: holds a private key: a trust anchor is imported without one",
                infile.display()
            ));
        }
        check_key_file(&infile, in_md.as_ref())?;
    }
    let key = match &keyfile {
        Some(k) => {
            // Checked on the descriptor before anything is read.
            let data = store::read_checked(k, store::FileRule::Private)
                .or_else(|e| fail(e.to_string()))?;
            Some((k.clone(), data))
        }
        None => None,
    };
    let store = open(dir)?;
    let before: Vec<String> = store
        .list()
        .or_else(|e| fail(e.to_string()))?
        .into_iter()
        .map(|e| e.fingerprint)
        .collect();
    let undo = |entries: &[Entry]| {
        for e in entries.iter().filter(|e| !before.contains(&e.fingerprint)) {
            let _ = store.remove(&e.fingerprint);
        }
    };
    // Keys first, so that the certificates' entries know their key is there.
    let mut entries: Vec<Entry> = Vec::new();
    if let Some((path, bytes)) = &key {
        entries.extend(
            store
                .import(path, bytes, false)
                .or_else(|e| fail(e.to_string()))?,
        );
    }
    let imported = match store.import(&infile, &data, trusted) {
        Ok(e) => e,
        Err(e) => {
            undo(&entries);
            return fail(e.to_string());
        }
    };
    entries.extend(imported);
    let keys: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.kind == Kind::PrivateKey)
        .collect();
    if !keys.is_empty() {
        // Every key must belong to a certificate of this import.
        let listed = store.list().or_else(|e| fail(e.to_string()))?;
        let certs_with_key = entries
            .iter()
            .filter(|e| {
                listed.iter().any(|l| {
                    l.fingerprint == e.fingerprint
                        && matches!(l.kind, Kind::Certificate { has_key: true, .. })
                })
            })
            .count();
        if certs_with_key == 0 {
            undo(&entries);
            return fail(format!(
                "{}: the private key belongs to none of the certificates imported with it",
                keyfile.as_deref().unwrap_or(&infile).display()
            ));
        }
    }
    if let Some(l) = kv.get("label") {
        let mut labels = read_labels(dir)?;
        for e in &entries {
            labels.insert(e.fingerprint.clone(), l.clone());
        }
        write_labels(dir, &labels)?;
    }
    let labels = read_labels(dir)?;
    let mut out = String::new();
    for e in store.list().or_else(|e| fail(e.to_string()))? {
        if entries.iter().any(|x| x.fingerprint == e.fingerprint) {
            let _ = write!(out, "imported ");
            show(&mut out, &e, &labels);
        }
    }
    Ok(out)
}

fn list(dir: &Path, objtype: &str) -> Result<String, Fail> {
    let keep: fn(&Kind) -> bool = match objtype {
        "all" => |_| true,
        "cert" => |k| matches!(k, Kind::Certificate { .. }),
        "anchor" | "ta" => |k| matches!(k, Kind::Certificate { trusted: true, .. }),
        "key" => |k| *k == Kind::PrivateKey,
        o => return usage(format!("objtype={o}: expected cert, anchor, key or all")),
    };
    if !dir.is_dir() {
        return fail(format!(
            "{}: no certificate store (nothing imported yet)",
            dir.display()
        ));
    }
    let store = open(dir)?;
    let labels = read_labels(dir)?;
    let entries = store.list().or_else(|e| fail(e.to_string()))?;
    let mut out = String::new();
    for e in entries.iter().filter(|e| keep(&e.kind)) {
        show(&mut out, e, &labels);
    }
    if out.is_empty() {
        out.push_str("no objects\n");
    }
    Ok(out)
}

fn delete(dir: &Path, kv: &BTreeMap<String, String>) -> Result<String, Fail> {
    if !dir.is_dir() {
        return fail(format!("{}: no certificate store", dir.display()));
    }
    let store = open(dir)?;
    let mut labels = read_labels(dir)?;
    let fps: Vec<String> = match (kv.get("label"), kv.get("fingerprint")) {
        (Some(l), None) => {
            let f: Vec<String> = labels
                .iter()
                .filter(|(_, x)| *x == l)
                .map(|(fp, _)| fp.clone())
                .collect();
            if f.is_empty() {
                return fail(format!("no object with label {l:?}"));
            }
            f
        }
        (None, Some(fp)) => vec![fp.clone()],
        _ => return usage("delete needs label=LABEL or fingerprint=HEX (one of them)"),
    };
    let mut out = String::new();
    for fp in fps {
        let e = store.remove(&fp).or_else(|e| fail(e.to_string()))?;
        let _ = write!(out, "deleted ");
        show(&mut out, &e, &labels);
        labels.remove(&e.fingerprint);
    }
    write_labels(dir, &labels)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Output.

fn colons(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// `YYYY-MM-DD HH:MM:SS UTC` of seconds since 1970 (times before 1970 show as 1970).
fn utc(t: i64) -> String {
    let t = u64::try_from(t).unwrap_or(0);
    let (y, m, d) = ipsec_core::civil::civil_from_days(t / 86_400);
    let secs = t % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn show(out: &mut String, e: &Entry, labels: &BTreeMap<String, String>) {
    let label = labels
        .get(&e.fingerprint)
        .map_or_else(String::new, |l| format!(" (label {l})"));
    match &e.kind {
        Kind::Certificate {
            subject,
            issuer,
            not_before,
            not_after,
            trusted,
            has_key,
        } => {
            let what = if *trusted {
                "trust anchor"
            } else if *has_key {
                "certificate with private key"
            } else {
                "certificate"
            };
            let _ = writeln!(out, "{what}{label}");
            let _ = writeln!(out, "  subject:     {subject}");
            let _ = writeln!(out, "  issuer:      {issuer}");
            let _ = writeln!(
                out,
                "  validity:    {} to {}",
                utc(*not_before),
                utc(*not_after)
            );
            let _ = writeln!(out, "  key type:    {}", e.key_type);
            let _ = writeln!(out, "  SHA-256:     {}", colons(&e.fingerprint));
        }
        Kind::PrivateKey => {
            let _ = writeln!(out, "private key{label}");
            let _ = writeln!(out, "  key type:    {}", e.key_type);
            let _ = writeln!(out, "  public key SHA-256: {}", colons(&e.fingerprint));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
