//! The policy requests of the control socket: what `ipsecconf(8)` asks of the daemon.
//!
//! ```text
//!  ipsecconf ──"policy add NAME\n<text>"──► control.rs ──► policy::handle
//!     ipsec_config::ipsecconf::parse(text, NAME) ──► entries ──to_rules──► SPD rules
//!     Spd::add | delete | flush | replace (atomic, whole; generation + 1) ──► data plane
//!     Store: the file policy entries with their #INDEX, file and rules, in SPD order
//! ```
//!
//! Requests (the first line; a policy text follows on the next lines where shown):
//!
//! | request | ipsecconf | what it does |
//! |---|---|---|
//! | `policy add NAME` + text | `-a file` | appends the file's entries after the active ones |
//! | `policy replace SCOPE NAME` + text | `-Fa file` (`all`), `-fa file` (`host`, `tunnel=T`) | flushes SCOPE and adds the file, in one step |
//! | `policy remove NAME` + text | `-r file` | removes the active entries equal to the file's entries |
//! | `policy check NAME` + text | | parses and compiles against the active policy; changes nothing |
//! | `policy delete [T,]INDEX` | `-d [-i T] INDEX` | removes one entry |
//! | `policy flush SCOPE` | `-F` (`all`), `-f` (`host`), `-f -i T` (`tunnel=T`) | removes every entry of SCOPE |
//! | `policy list order\|file SCOPE [numeric] [from=K]` | `-l`, `-l -i T`, `-L`; no flags (`file all`) | the entries, each after its `#INDEX` line |
//! | `policy explain in\|out SRC DST PROTO [SPORT DPORT] [tunnel=T]` | `--explain` | which entry decides such a packet, and why |
//!
//! Replies are `ok key=value ...` followed by lines (warnings, one per line, or the listing),
//! or `error MESSAGE`. Parse errors come back as the parser writes them,
//! `NAME:line:column: unexpected ..., expected ...`, and change nothing: every change is
//! built off to the side and swapped in whole, or not at all.
//!
//! Indexes: each file policy entry gets the next index when it is added (1, 2, ... for as
//! long as the daemon runs; never reused), as Solaris numbers its rules. An entry that
//! expands into several SPD rules (a host name with several addresses) keeps one index, and
//! `delete` removes all of them. `list order` lists the entries in match order (highest
//! priority first: bypass, then ESP, then AH, then file order), `list file` in the order
//! they were added (Solaris' `ipsecconf` without arguments). A listing is paged (`from=K`;
//! the reply says `next=K` while more follow) so that a reply always fits a message.
//!
//! The store lives next to the SPD in the state the daemon's threads share
//! ([`crate::core::Shared::policy`]). It follows the SPD: it records the SPD generation it
//! describes, and should the SPD change by other means it rebuilds itself from the SPD's
//! rules, one entry per rule, which it then prints in the SPD's own new-style form instead of
//! the file's.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipsec_config::ipsecconf::{self, Address, Endpoints, Entry, PolicyFile};
use ipsec_core::spd::{
    self, Dir, PacketKey, PolicySet, Priority, ReplaceOptions, ReplaceReport, Rule, Spd,
};

use crate::server::Server;

/// Bytes of listing per reply (well below the smallest default socket send buffer).
const PAGE_BYTES: usize = 96 * 1024;

/// Warnings per reply; the rest are counted.
const MAX_WARNINGS: usize = 200;

/// One file policy entry of the active policy.
#[derive(Debug, Clone)]
struct Item {
    /// The `#INDEX` number.
    index: u64,
    /// The entry as parsed, or `None` when the store was rebuilt from the SPD's rules.
    entry: Option<Entry>,
    /// The file (policy text name) it came from; empty when unknown.
    file: String,
    /// The SPD rules it expanded into, in SPD order (at least one).
    rules: Vec<Rule>,
}

impl Item {
    fn tunnel(&self) -> Option<&str> {
        self.rules.first().and_then(|r| r.tunnel.as_deref())
    }

    /// `#INDEX 3`, or `#INDEX ip.tun0,3` for a tunnel's entry (Solaris' format).
    fn label(&self) -> String {
        match self.tunnel() {
            Some(t) => format!("#INDEX {t},{}", self.index),
            None => format!("#INDEX {}", self.index),
        }
    }

    /// `file:line` of the entry, as far as known.
    fn place(&self) -> String {
        let line = self
            .entry
            .as_ref()
            .map(|e| e.line)
            .or_else(|| self.rules.first().and_then(|r| r.line).map(|l| l as usize));
        match (self.file.is_empty(), line) {
            (false, Some(l)) => format!("{}:{l}", self.file),
            (false, None) => self.file.clone(),
            (true, Some(l)) => format!("line {l}"),
            (true, None) => String::new(),
        }
    }

    /// The entry in the ipsecconf language, one line per printed entry: the parsed entry
    /// through the ipsec-config printer (`numeric`: one line per address pair, names
    /// replaced by their addresses), else the SPD rules.
    fn text(&self, numeric: bool) -> Vec<String> {
        match &self.entry {
            Some(e) if numeric => numeric_entries(e)
                .iter()
                .map(ipsecconf::print_entry)
                .collect(),
            Some(e) => vec![ipsecconf::print_entry(e)],
            None => self.rules.iter().map(Rule::to_string).collect(),
        }
    }
}

/// Which SPDs a request covers.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scope {
    /// The host SPD and every tunnel's.
    All,
    /// The host SPD.
    Host,
    /// One tunnel's SPD.
    Tunnel(String),
}

impl Scope {
    fn parse(w: &str) -> Result<Self, String> {
        match w {
            "all" => Ok(Scope::All),
            "host" => Ok(Scope::Host),
            _ => match w.strip_prefix("tunnel=") {
                Some(t) if !t.is_empty() => Ok(Scope::Tunnel(t.to_owned())),
                _ => Err(format!("scope {w:?}: expected all, host or tunnel=NAME")),
            },
        }
    }

    fn covers(&self, tunnel: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Host => tunnel.is_none(),
            Scope::Tunnel(t) => tunnel == Some(t.as_str()),
        }
    }
}

/// How a change reaches the SPD.
enum Op {
    /// `Spd::add` of these rules (they follow the kept ones).
    Add(Vec<Rule>),
    /// `Spd::flush`.
    Flush(Scope),
    /// `Spd::delete` of one rule position.
    Delete(usize),
    /// `Spd::replace` with the new items' rules.
    Replace,
}

/// The active file policy entries, in SPD order. It lives in the daemon's shared state
/// (`core::Shared::policy`), next to the SPD it describes.
#[derive(Debug)]
pub struct Store {
    items: Vec<Item>,
    next_index: u64,
    /// The SPD generation `items` describes (`None`: not known to match).
    generation: Option<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            next_index: 1,
            generation: None,
        }
    }
}

/// The request's text after the verb `policy`, if it is a policy request.
pub fn request(request: &str) -> Option<&str> {
    let rest = request.strip_prefix("policy")?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// Handles one policy request (the text after `policy`); returns the reply.
pub fn handle(srv: &Server, rest: &str) -> String {
    let (head, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let head = head.trim();
    let (verb, args) = head.split_once(char::is_whitespace).unwrap_or((head, ""));
    let args = args.trim();
    let mut guard = srv.lock();
    let g = &mut *guard;
    let st = &mut g.policy;
    st.sync(&g.spd);
    let r = match verb {
        "add" => st.add(&mut g.spd, args, body),
        "check" => st.check(&mut g.spd, args, body),
        "replace" => match args.split_once(char::is_whitespace) {
            Some((scope, name)) => Scope::parse(scope)
                .and_then(|scope| st.replace(&mut g.spd, &scope, name.trim(), body)),
            None => Scope::parse(args).and_then(|scope| st.replace(&mut g.spd, &scope, "", body)),
        },
        "remove" => st.remove(&mut g.spd, args, body),
        "delete" => st.delete(&mut g.spd, args),
        "flush" => Scope::parse(if args.is_empty() { "all" } else { args })
            .and_then(|scope| st.flush(&mut g.spd, scope)),
        "list" => st.list(args),
        "explain" => st.explain(&g.spd, args),
        _ => Err(format!(
            "unknown policy request {verb:?} (expected add, replace, remove, check, delete, flush, list or explain)"
        )),
    };
    match r {
        Ok(s) => s,
        Err(e) => format!("error {e}"),
    }
}

/// Parses and compiles a policy text as `replace` would, changing nothing (a reload's
/// check before it swaps anything in); the error names the file, line and column.
pub fn validate(name: &str, text: &str) -> Result<(), String> {
    parse(name, text).map(|_| ())
}

/// Parses a policy text into its entries and each entry's SPD rules.
fn parse(name: &str, text: &str) -> Result<(PolicyFile, Vec<Vec<Rule>>), String> {
    let name = if name.is_empty() { "<policy>" } else { name };
    let file = ipsecconf::parse(text, name).map_err(|e| e.to_string())?;
    let mut per = Vec::with_capacity(file.entries.len());
    for e in &file.entries {
        let one = PolicyFile {
            file: file.file.clone(),
            entries: vec![e.clone()],
        };
        per.push(one.to_rules().map_err(|e| e.to_string())?);
    }
    Ok((file, per))
}

fn without_lines(rules: &[Rule]) -> Vec<Rule> {
    rules
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.line = None;
            r
        })
        .collect()
}

/// The entry once per (local, remote) address pair of the same family, every address a
/// literal (what `-n` prints; one entry per SPD rule it produced).
fn numeric_entries(e: &Entry) -> Vec<Entry> {
    let (a, b) = match &e.pattern.endpoints {
        Endpoints::Any => return vec![e.clone()],
        Endpoints::SrcDst { src, dst, .. } => (src, dst),
        Endpoints::LocalRemote { local, remote, .. } => (local, remote),
    };
    let side = |x: &Option<Address>| -> Vec<Option<Address>> {
        match x {
            None => vec![None],
            Some(a) => a
                .prefixes()
                .into_iter()
                .map(|p| Some(Address::Prefix(p)))
                .collect(),
        }
    };
    let family = |x: &Option<Address>| match x {
        Some(Address::Prefix(p)) => Some(p.addr.is_ipv4()),
        _ => None,
    };
    let mut out = Vec::new();
    for x in side(a) {
        for y in side(b) {
            if matches!((family(&x), family(&y)), (Some(p), Some(q)) if p != q) {
                continue;
            }
            let mut c = e.clone();
            match &mut c.pattern.endpoints {
                Endpoints::SrcDst { src, dst, .. } => {
                    *src = x.clone();
                    *dst = y;
                }
                Endpoints::LocalRemote { local, remote, .. } => {
                    *local = x.clone();
                    *remote = y;
                }
                Endpoints::Any => {}
            }
            out.push(c);
        }
    }
    out
}

/// For each SPD rule position, the item it belongs to.
fn owners(items: &[Item]) -> Vec<&Item> {
    items
        .iter()
        .flat_map(|i| i.rules.iter().map(move |_| i))
        .collect()
}

/// An SPD analysis warning in terms of entries (`#INDEX n`) instead of rule positions.
fn render(w: &spd::Warning, owners: &[&Item]) -> String {
    let name = |p: usize| {
        owners
            .get(p)
            .map_or_else(|| format!("rule {p}"), |i| i.label())
    };
    let names = |v: &[usize]| {
        let mut seen = HashSet::new();
        v.iter()
            .map(|&p| name(p))
            .filter(|n| seen.insert(n.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let place = w
        .rule()
        .and_then(|p| owners.get(p))
        .map(|i| i.place())
        .filter(|p| !p.is_empty())
        .map_or_else(String::new, |p| format!("{p}: "));
    match w {
        spd::Warning::Shadowed { rule, by } => format!(
            "{place}warning: entry {} can never match: every packet it matches is decided first by {} (higher priority)",
            name(*rule),
            names(by)
        ),
        spd::Warning::Overlap { rule, with, more } => {
            let mut s = format!(
                "{place}warning: entry {} overlaps higher-priority {} with a different action; they decide the shared traffic",
                name(*rule),
                names(with)
            );
            if *more > 0 {
                let _ = write!(s, " (and at least {more} more)");
            }
            s
        }
        spd::Warning::Unmatchable { rule, why } => {
            format!("{place}warning: entry {} can never match: {why}", name(*rule))
        }
        spd::Warning::IcmpActionsDiffer { rule, first } => format!(
            "{place}warning: entry {}: IPsec action differs from ICMP entry {}; all ICMP entries applying IPsec must be the same",
            name(*rule),
            name(*first)
        ),
        spd::Warning::Incomplete { .. } => format!("warning: {w}"),
    }
}

/// The parser's warnings about a file, as `file:line: warning: ...`.
fn file_warnings(file: &PolicyFile) -> Vec<String> {
    file.warnings()
        .iter()
        .map(|w| format!("{}:{}: warning: {}", file.file, w.line, w.message))
        .collect()
}

/// `ok HEAD` and the warnings, one per line (duplicates dropped, at most [`MAX_WARNINGS`]).
fn reply(head: &str, warnings: &[String]) -> String {
    let mut o = format!("ok {head}\n");
    let mut seen = HashSet::new();
    let mut n = 0usize;
    let mut dropped = 0usize;
    for w in warnings {
        if !seen.insert(w.as_str()) {
            continue;
        }
        if n == MAX_WARNINGS {
            dropped += 1;
            continue;
        }
        n += 1;
        o.push_str(w.trim_end());
        o.push('\n');
    }
    if dropped > 0 {
        let _ = writeln!(o, "warning: {dropped} more warning(s) not shown");
    }
    o
}

/// Position, in the SPD, of an item's first rule.
fn first_position(items: &[Item], at: usize) -> usize {
    items.iter().take(at).map(|i| i.rules.len()).sum()
}

fn parse_index(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("Invalid index {:?}", s.trim()))
}

fn parse_addr(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not an IP address"))
}

impl Store {
    /// Makes the items describe the SPD: rebuilt from its rules if it changed by other means.
    fn sync(&mut self, spd: &Spd) {
        if self.generation == Some(spd.generation()) {
            return;
        }
        let mut items = Vec::with_capacity(spd.policy().rules.len());
        for r in &spd.policy().rules {
            items.push(Item {
                index: self.next_index,
                entry: None,
                file: String::new(),
                rules: vec![r.clone()],
            });
            self.next_index += 1;
        }
        self.items = items;
        self.generation = Some(spd.generation());
    }

    /// Items for a parsed file, numbered from `next_index` (committed by [`Store::commit`]).
    fn new_items(&self, file: &PolicyFile, per: Vec<Vec<Rule>>) -> Vec<Item> {
        file.entries
            .iter()
            .zip(per)
            .zip(self.next_index..)
            .map(|((e, rules), index)| Item {
                index,
                entry: Some(e.clone()),
                file: file.file.clone(),
                rules,
            })
            .collect()
    }

    /// Applies `op` to the SPD and, if it succeeds, makes `items` the active entries.
    fn commit(&mut self, spd: &mut Spd, items: Vec<Item>, op: Op) -> Result<ReplaceReport, String> {
        let rules_of = |items: &[Item]| -> Vec<Rule> {
            items.iter().flat_map(|i| i.rules.iter().cloned()).collect()
        };
        let total: usize = items.iter().map(|i| i.rules.len()).sum();
        if total > spd::MAX_RULES {
            return Err(format!(
                "the policy would have {total} SPD rules; at most {} fit",
                spd::MAX_RULES
            ));
        }
        let r = match op {
            Op::Add(rules) => spd.add(rules, false),
            Op::Flush(Scope::All) => spd.flush(None, true),
            Op::Flush(Scope::Host) => spd.flush(None, false),
            Op::Flush(Scope::Tunnel(t)) => spd.flush(Some(&t), false),
            Op::Delete(pos) => match spd.delete(pos) {
                Some(r) => r,
                None => return Err(format!("Non-existent rule position {pos}")),
            },
            Op::Replace => spd.replace(
                PolicySet::from_rules(rules_of(&items)),
                ReplaceOptions::all(false),
            ),
        };
        let report = r.map_err(|e| {
            let who = owners(&items)
                .get(e.rule)
                .map(|i| format!("{} ({})", i.label(), i.place()))
                .unwrap_or_else(|| format!("rule {}", e.rule));
            format!("the SPD refused entry {who}: {}", e.error)
        })?;
        let max = items.iter().map(|i| i.index).max().unwrap_or(0);
        self.next_index = self.next_index.max(max + 1);
        // Should the SPD not hold exactly these rules, rebuild from it on the next request.
        let same = without_lines(&spd.policy().rules) == without_lines(&rules_of(&items));
        self.items = items;
        self.generation = same.then(|| spd.generation());
        Ok(report)
    }

    fn add(&mut self, spd: &mut Spd, name: &str, text: &str) -> Result<String, String> {
        let (file, per) = parse(name, text)?;
        let new = self.new_items(&file, per);
        let rules: Vec<Rule> = new.iter().flat_map(|i| i.rules.iter().cloned()).collect();
        let old_rules = first_position(&self.items, self.items.len());
        let (first, last) = (
            new.first().map_or(0, |i| i.index),
            new.last().map_or(0, |i| i.index),
        );
        let n = new.len();
        let nrules = rules.len();
        let mut items = self.items.clone();
        items.extend(new);
        let report = self.commit(spd, items, Op::Add(rules))?;
        let own = owners(&self.items);
        let mut warnings = file_warnings(&file);
        warnings.extend(
            report
                .warnings
                .iter()
                .filter(|w| w.rule().is_none_or(|p| p >= old_rules))
                .map(|w| render(w, &own)),
        );
        crate::log::info(format_args!(
            "policy: added {n} entr{} ({nrules} rule(s)) from {}; generation {}",
            if n == 1 { "y" } else { "ies" },
            file.file,
            report.generation
        ));
        Ok(reply(
            &format!(
                "entries={n} rules={nrules} first_index={first} last_index={last} generation={}",
                report.generation
            ),
            &warnings,
        ))
    }

    fn check(&mut self, spd: &mut Spd, name: &str, text: &str) -> Result<String, String> {
        let (file, per) = parse(name, text)?;
        let new = self.new_items(&file, per);
        let rules: Vec<Rule> = new.iter().flat_map(|i| i.rules.iter().cloned()).collect();
        let old_rules = first_position(&self.items, self.items.len());
        let nrules = rules.len();
        let report = spd
            .add(rules, true)
            .map_err(|e| format!("the SPD would refuse the policy: {e}"))?;
        let mut all = self.items.clone();
        all.extend(new);
        let own = owners(&all);
        let mut warnings = file_warnings(&file);
        warnings.extend(
            report
                .warnings
                .iter()
                .filter(|w| w.rule().is_none_or(|p| p >= old_rules))
                .map(|w| render(w, &own)),
        );
        Ok(reply(
            &format!("entries={} rules={nrules}", file.entries.len()),
            &warnings,
        ))
    }

    fn replace(
        &mut self,
        spd: &mut Spd,
        scope: &Scope,
        name: &str,
        text: &str,
    ) -> Result<String, String> {
        let (file, per) = parse(name, text)?;
        let new = self.new_items(&file, per);
        let n = new.len();
        let mut items: Vec<Item> = self
            .items
            .iter()
            .filter(|i| !scope.covers(i.tunnel()))
            .cloned()
            .collect();
        let kept = items.len();
        items.extend(new);
        let report = self.commit(spd, items, Op::Replace)?;
        let own = owners(&self.items);
        let mut warnings = file_warnings(&file);
        warnings.extend(report.warnings.iter().map(|w| render(w, &own)));
        crate::log::info(format_args!(
            "policy: replaced with {n} entr{} from {} ({kept} kept); generation {}",
            if n == 1 { "y" } else { "ies" },
            file.file,
            report.generation
        ));
        Ok(reply(
            &format!(
                "entries={n} kept={kept} rules_added={} rules_removed={} generation={}",
                report.diff.added.len(),
                report.diff.removed.len(),
                report.generation
            ),
            &warnings,
        ))
    }

    fn remove(&mut self, spd: &mut Spd, name: &str, text: &str) -> Result<String, String> {
        let (file, per) = parse(name, text)?;
        let mut items = self.items.clone();
        let mut warnings = Vec::new();
        let mut removed = Vec::new();
        for (e, rules) in file.entries.iter().zip(&per) {
            let want = without_lines(rules);
            match items.iter().position(|i| without_lines(&i.rules) == want) {
                Some(p) => removed.push(items.remove(p).index),
                None => warnings.push(format!(
                    "{}:{}: warning: not in the active policy (nothing removed): {}",
                    file.file,
                    e.line,
                    ipsecconf::print_entry(e)
                )),
            }
        }
        if removed.is_empty() {
            return Ok(reply("removed=0", &warnings));
        }
        let report = self.commit(spd, items, Op::Replace)?;
        let list: Vec<String> = removed.iter().map(u64::to_string).collect();
        crate::log::info(format_args!(
            "policy: removed {} entr{} listed in {}; generation {}",
            removed.len(),
            if removed.len() == 1 { "y" } else { "ies" },
            file.file,
            report.generation
        ));
        Ok(reply(
            &format!(
                "removed={} indexes={} generation={}",
                removed.len(),
                list.join(","),
                report.generation
            ),
            &warnings,
        ))
    }

    /// `delete [T,]INDEX` or `delete INDEX tunnel=T`.
    fn delete(&mut self, spd: &mut Spd, args: &str) -> Result<String, String> {
        let mut words = args.split_whitespace();
        let first = words.next().ok_or("delete needs an index")?;
        let (mut tunnel, index) = match first.split_once(',') {
            Some((t, n)) => (Some(t.to_owned()), parse_index(n)?),
            None => (None, parse_index(first)?),
        };
        for w in words {
            match w.strip_prefix("tunnel=") {
                Some(t) if tunnel.is_none() && !t.is_empty() => tunnel = Some(t.to_owned()),
                Some(_) => return Err("Interface name already selected".into()),
                None => return Err(format!("unexpected {w:?} after the index")),
            }
        }
        let Some(at) = self.items.iter().position(|i| i.index == index) else {
            return Err(format!("Non-existent index {index}"));
        };
        let item = self.items.get(at).ok_or("Non-existent index")?;
        if item.tunnel() != tunnel.as_deref() {
            return Err(match item.tunnel() {
                Some(t) => format!(
                    "Non-existent index {index} in the host policy (it is in the policy of tunnel {t}: use -i {t} or {t},{index})"
                ),
                None => format!(
                    "Non-existent index {index} for tunnel {} (it is in the host policy)",
                    tunnel.as_deref().unwrap_or("?")
                ),
            });
        }
        let pos = first_position(&self.items, at);
        let op = if item.rules.len() == 1 {
            Op::Delete(pos)
        } else {
            Op::Replace
        };
        let mut items = self.items.clone();
        items.remove(at);
        let report = self.commit(spd, items, op)?;
        crate::log::info(format_args!(
            "policy: deleted entry {index}; generation {}",
            report.generation
        ));
        Ok(reply(
            &format!("deleted={index} generation={}", report.generation),
            &[],
        ))
    }

    fn flush(&mut self, spd: &mut Spd, scope: Scope) -> Result<String, String> {
        let items: Vec<Item> = self
            .items
            .iter()
            .filter(|i| !scope.covers(i.tunnel()))
            .cloned()
            .collect();
        let flushed = self.items.len() - items.len();
        let report = self.commit(spd, items, Op::Flush(scope))?;
        crate::log::info(format_args!(
            "policy: flushed {flushed} entr{}; generation {}",
            if flushed == 1 { "y" } else { "ies" },
            report.generation
        ));
        Ok(reply(
            &format!("flushed={flushed} generation={}", report.generation),
            &[],
        ))
    }

    /// `list order|file SCOPE [numeric] [from=K]`.
    fn list(&self, args: &str) -> Result<String, String> {
        let mut order = true;
        let mut scope = Scope::All;
        let mut numeric = false;
        let mut from = 0usize;
        for w in args.split_whitespace() {
            match w {
                "order" => order = true,
                "file" => order = false,
                "numeric" => numeric = true,
                _ => match w.strip_prefix("from=") {
                    Some(k) => from = k.parse().map_err(|_| format!("bad {w:?}"))?,
                    None => scope = Scope::parse(w)?,
                },
            }
        }
        let mut picked: Vec<(usize, &Item)> = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| scope.covers(i.tunnel()))
            .collect();
        if order {
            // Match order, per SPD: the host's first, then each tunnel's by name; within one
            // SPD the highest priority first (the rules of one entry are consecutive and
            // share an action, so they sort together).
            let prio = |at: usize, i: &Item| {
                let pos = first_position(&self.items, at);
                i.rules
                    .first()
                    .map_or(0, |r| Priority::for_rule(pos, &r.action).value())
            };
            picked.sort_by(|(a, x), (b, y)| {
                (x.tunnel().is_some(), x.tunnel())
                    .cmp(&(y.tunnel().is_some(), y.tunnel()))
                    .then(prio(*b, y).cmp(&prio(*a, x)))
            });
        }
        let total = picked.len();
        let mut body = String::new();
        let mut next = None;
        for (k, (_, item)) in picked.iter().enumerate().skip(from) {
            let mut block = item.label();
            block.push('\n');
            for line in item.text(numeric) {
                block.push_str(&line);
                block.push('\n');
            }
            if !body.is_empty() && body.len() + block.len() > PAGE_BYTES {
                next = Some(k);
                break;
            }
            body.push_str(&block);
        }
        let mut head = format!(
            "ok entries={total} generation={}",
            self.generation.unwrap_or(0)
        );
        if let Some(k) = next {
            let _ = write!(head, " next={k}");
        }
        Ok(format!("{head}\n{body}"))
    }

    /// `explain in|out SRC DST PROTO [SPORT DPORT] [tunnel=T]`: the SPD's explanation, with
    /// the rules it names tied to their entries.
    fn explain(&self, spd: &Spd, args: &str) -> Result<String, String> {
        let mut words: Vec<&str> = args.split_whitespace().collect();
        let mut tunnel = None;
        if let Some(t) = words.last().and_then(|w| w.strip_prefix("tunnel=")) {
            tunnel = Some(t.to_owned());
            words.pop();
        }
        let usage = "explain in|out SRC DST PROTO [SPORT DPORT] [tunnel=NAME]";
        let (dir, src, dst, proto, ports) = match words.as_slice() {
            [d, s, t, p] => (*d, *s, *t, *p, None),
            [d, s, t, p, a, b] => (*d, *s, *t, *p, Some((*a, *b))),
            _ => return Err(format!("expected {usage}")),
        };
        let dir = match dir {
            "in" => Dir::In,
            "out" => Dir::Out,
            _ => return Err(format!("direction {dir:?}: expected in or out")),
        };
        let (src, dst) = (parse_addr(src)?, parse_addr(dst)?);
        if src.is_ipv4() != dst.is_ipv4() {
            return Err("source and destination of different address families".into());
        }
        let proto = ipsecconf::protocol_by_name(proto)
            .or_else(|| proto.parse::<u8>().ok())
            .ok_or_else(|| format!("protocol {proto:?}: expected a name or 0..255"))?;
        let mut key = PacketKey::new(dir, src, dst, proto);
        if let Some((a, b)) = ports {
            let num = |s: &str| {
                s.parse::<u16>()
                    .map_err(|_| format!("{s:?} is not a port (or ICMP type/code) number"))
            };
            let (a, b) = (num(a)?, num(b)?);
            key = if proto == 1 || proto == 58 {
                let small =
                    |v: u16| u8::try_from(v).map_err(|_| format!("{v} is not an ICMP type/code"));
                key.with_icmp(small(a)?, small(b)?)
            } else {
                key.with_ports(a, b)
            };
        }
        if let Some(t) = &tunnel {
            match spd.tunnel_names().get(t) {
                Some(id) => key = key.with_tunnel(id),
                None => return Err(format!("no policy names tunnel {t}")),
            }
        }
        let ex = spd.explain(&key);
        let mut o = String::from("ok\n");
        o.push_str(&ex.text);
        let own = owners(&self.items);
        let mut named: Vec<usize> = ex
            .deciding
            .iter()
            .chain(ex.others.iter())
            .filter_map(|r| r.source.rule_index())
            .collect();
        named.sort_unstable();
        named.dedup();
        for p in named {
            if let Some(i) = own.get(p) {
                let place = i.place();
                let _ = write!(o, "rule {p} is entry {}", i.label());
                if !place.is_empty() {
                    let _ = write!(o, " ({place})");
                }
                o.push('\n');
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn fresh() -> (Store, Spd) {
        (
            Store {
                items: Vec::new(),
                next_index: 1,
                generation: Some(0),
            },
            Spd::new(),
        )
    }

    const A: &str = "{laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-gcm}\n";
    const B: &str = "{raddr 10.0.0.3 dir both} bypass {}\n";

    #[test]
    fn add_list_delete() {
        let (mut st, mut spd) = fresh();
        let r = st.add(&mut spd, "a.conf", &format!("{A}{B}")).unwrap();
        assert!(
            r.starts_with("ok entries=2 rules=2 first_index=1 last_index=2"),
            "{r}"
        );
        assert_eq!(spd.policy().rules.len(), 2);
        let g = spd.generation();
        // Match order: the bypass entry first.
        let l = st.list("order all").unwrap();
        let idx: Vec<&str> = l.lines().filter(|l| l.starts_with("#INDEX")).collect();
        assert_eq!(idx, ["#INDEX 2", "#INDEX 1"], "{l}");
        let l = st.list("file all").unwrap();
        let idx: Vec<&str> = l.lines().filter(|l| l.starts_with("#INDEX")).collect();
        assert_eq!(idx, ["#INDEX 1", "#INDEX 2"], "{l}");
        st.delete(&mut spd, "1").unwrap();
        assert!(spd.generation() > g);
        assert_eq!(spd.policy().rules.len(), 1);
        assert!(st
            .delete(&mut spd, "1")
            .unwrap_err()
            .contains("Non-existent index"));
    }

    #[test]
    fn bad_text_changes_nothing() {
        let (mut st, mut spd) = fresh();
        st.add(&mut spd, "a.conf", A).unwrap();
        let g = spd.generation();
        let e = st
            .add(
                &mut spd,
                "b.conf",
                "{laddr 10.0.0.9}\nipsec {encr_algs nosuch}\n",
            )
            .unwrap_err();
        assert!(e.starts_with("b.conf:2:"), "{e}");
        assert_eq!(spd.generation(), g);
        assert_eq!(st.items.len(), 1);
    }

    #[test]
    fn rebuilds_from_the_spd() {
        let (mut st, mut spd) = fresh();
        let (file, _) = parse("x", A).unwrap();
        spd.replace(
            PolicySet::from_rules(file.to_rules().unwrap()),
            ReplaceOptions::all(false),
        )
        .unwrap();
        st.sync(&spd);
        assert_eq!(st.items.len(), 1);
        let l = st.list("order all").unwrap();
        assert!(
            l.contains("#INDEX 1\n{laddr 10.0.0.1/32 raddr 10.0.0.2/32"),
            "{l}"
        );
    }

    #[test]
    fn remove_and_replace() {
        let (mut st, mut spd) = fresh();
        st.add(&mut spd, "a.conf", &format!("{A}{B}")).unwrap();
        let r = st.remove(&mut spd, "r.conf", B).unwrap();
        assert!(r.starts_with("ok removed=1 indexes=2"), "{r}");
        assert_eq!(spd.policy().rules.len(), 1);
        let r = st.replace(&mut spd, &Scope::All, "n.conf", B).unwrap();
        assert!(r.starts_with("ok entries=1 kept=0"), "{r}");
        assert_eq!(st.items.len(), 1);
        assert_eq!(st.items.first().map(|i| i.index), Some(3));
    }

    #[test]
    fn numeric_expands_names() {
        let e = Entry {
            line: 1,
            column: 1,
            pattern: ipsecconf::Pattern {
                endpoints: Endpoints::LocalRemote {
                    local: None,
                    remote: Some(Address::Name {
                        name: "two".into(),
                        prefix: None,
                        addrs: vec!["10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
                    }),
                    lport: None,
                    rport: None,
                },
                ..Default::default()
            },
            alternatives: vec![(ipsecconf::Action::Drop, Default::default())],
        };
        let v: Vec<String> = numeric_entries(&e)
            .iter()
            .map(ipsecconf::print_entry)
            .collect();
        assert_eq!(v.len(), 2);
        assert!(v.iter().any(|s| s.contains("raddr 10.0.0.1")), "{v:?}");
        assert!(v.iter().any(|s| s.contains("raddr 2001:db8::1")), "{v:?}");
    }
}
