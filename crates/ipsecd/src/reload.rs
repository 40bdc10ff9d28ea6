//! Reloading the configuration (SIGHUP, or the control socket's `reload` request, which
//! `ipsecadm reload` and systemd's `ExecReload` use): the properties file, the policy file,
//! the keys file and the algorithm table (`--algs-file`) are read again, as Solaris'
//! `svcadm refresh` of the policy, manual-key and ipsecalgs services re-runs
//! `ipsecconf -Fa`, `ipseckey -f` and `ipsecalgs -s`.
//!
//! All or nothing: every file is read and checked first (the properties parsed, the policy
//! parsed and compiled, the keys loaded into a scratch key engine); only when all are good
//! does the daemon swap them in: the policy with one atomic SPD replace (`policy replace
//! all`, as `ipsecconf -Fa`), then the properties, then the keys (flush + load, as at
//! start) if its content changed since it was last loaded: a reload for a policy or
//! property change leaves the SAs alone (their sequence numbers and replay windows, and the
//! SAs key managers added). A failed reload changes nothing, logs why (`FILE:LINE:COLUMN: ...`; for the keys
//! file without the offending text, see [`crate::keys`]) and is counted: `stats` shows
//! `reloads_ok`, `reloads_failed` and `last_reload_failed`; the `reload` request's reply
//! says what was loaded or why nothing was. Traffic keeps flowing throughout: the
//! data plane sees either the old or the new SPD, never none.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use ipsec_core::Sadb;
use ipsec_pfkey::engine::{EngineConfig, KeyEngine};

use crate::log;
use crate::server::{now, Server};

/// The files a reload reads (the properties file is [`crate::props::Props::file`]) and the
/// outcome of the reloads so far.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// `--policy-file`.
    pub policy_file: Option<PathBuf>,
    /// `--keys-file`.
    pub keys_file: Option<PathBuf>,
    /// `--algs-file` (the ipsecalgs table synced at start).
    pub algs_file: Option<PathBuf>,
    /// Reloads that worked.
    pub ok: u64,
    /// Reloads refused (nothing changed).
    pub failed: u64,
    /// Whether the last reload failed.
    pub last_failed: bool,
    /// A keyed hash of the keys file as last loaded (the text itself, keys and all, is
    /// not kept).
    keys_seen: Option<u64>,
    hasher: RandomState,
}

impl State {
    /// Reads the keys file and returns its keyed hash.
    fn keys_hash(&self, path: &Path) -> Result<u64, String> {
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        Ok(self.hasher.hash_one(bytes.as_slice()))
    }

    /// Notes that the keys file was loaded (at start).
    pub fn keys_loaded(&mut self) {
        self.keys_seen = self
            .keys_file
            .as_deref()
            .and_then(|p| self.keys_hash(p).ok());
    }
}

/// Reloads; returns the reply (`ok ...` or `error ...`), which is also logged and kept.
pub fn run(srv: &mut Server) -> String {
    let r = reload(srv);
    let mut g = srv.lock();
    g.reload.last_failed = r.is_err();
    match r {
        Ok(s) => {
            g.reload.ok += 1;
            log::info(format_args!("reloaded: {s}"));
            format!("ok {s}")
        }
        Err(e) => {
            g.reload.failed += 1;
            log::error(format_args!("reload refused, configuration unchanged: {e}"));
            format!("error reload refused, configuration unchanged: {e}")
        }
    }
}

fn reload(srv: &mut Server) -> Result<String, String> {
    let (state, props) = {
        let g = srv.lock();
        (g.reload.clone(), g.props.clone())
    };
    // 1. Read and check everything.
    let props = props.reread()?;
    let policy = match &state.policy_file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            crate::policy::validate(&p.display().to_string(), &text)?;
            Some((p, text))
        }
        None => None,
    };
    let algs = match &state.algs_file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let name = p.display().to_string();
            let checked = crate::algs::check(&name, &text)?;
            Some((name, checked))
        }
        None => None,
    };
    let keys = match &state.keys_file {
        Some(k) => {
            let h = state.keys_hash(k)?;
            if state.keys_seen == Some(h) {
                None
            } else {
                Some((k, h))
            }
        }
        None => None,
    };
    if let Some((k, _)) = keys {
        let mut scratch = KeyEngine::new(
            Sadb::new(),
            EngineConfig::default(),
            ipsec_pfkey::rng::SeededRng::new(0),
        );
        crate::keys::load(&mut scratch, k, now().0, &mut |_| {})?;
    }
    // 2. Swap in.
    let mut done = Vec::new();
    if let Some((name, checked)) = algs {
        let reply = crate::algs::apply(srv, &name, checked);
        done.push(format!(
            "algorithm table from {name} ({})",
            reply.trim_start_matches("ok ")
        ));
    }
    if let Some((p, text)) = policy {
        let reply = crate::policy::handle(srv, &format!(" replace all {}\n{text}", p.display()));
        if let Some(e) = reply.strip_prefix("error ") {
            return Err(e.trim_end().to_string());
        }
        done.push(format!(
            "policy from {} ({})",
            p.display(),
            reply
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("ok ")
        ));
    }
    {
        let mut g = srv.lock();
        g.props = props;
        crate::props::apply(&mut g);
    }
    if let Some(f) = srv.lock().props.file() {
        done.push(format!("properties from {}", f.display()));
    }
    if let (Some(k), None) = (&state.keys_file, keys) {
        done.push(format!("{} unchanged, SAs kept", k.display()));
    }
    if let Some((k, h)) = keys {
        let mut outs = Vec::new();
        let r = crate::keys::load(&mut srv.lock().keys, k, now().0, &mut |o| outs.push(o));
        for o in outs {
            srv.deliver_output(o);
        }
        srv.deliver();
        let n = r?;
        srv.lock().reload.keys_seen = Some(h);
        done.push(format!("{n} SA(s) from {}", k.display()));
    }
    if done.is_empty() {
        done.push("nothing to reload (no --policy-file, --props-file or --keys-file)".into());
    }
    Ok(done.join("; "))
}
