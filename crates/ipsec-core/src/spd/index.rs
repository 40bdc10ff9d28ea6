//! The compiled SPD: per head (host, each tunnel), per address family and direction, an index
//! that finds the highest-priority matching rule without scanning every rule.
//!
//! Each rule is filed under exactly one of its selectors, the one shared with the fewest other
//! rules: the remote prefix, the local prefix, the remote or local port (single ports), the
//! protocol, or the wildcard list. Prefixes go into a nesting forest over the address space
//! whose leaves are elementary intervals found by binary search; a lookup walks from the
//! deepest prefix containing the address up through its ancestors. Every list is sorted by
//! priority, highest first, and carries its maximum, so a lookup scans a list only while its
//! entries could still beat the best match found so far and stops at the first match in each.
//! The result is the same as checking every rule and keeping the highest priority (the naive
//! reference in [`naive`](super::naive), checked by the property test and the fuzz target).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::key::{Dir, PacketKey, SocketId, TunnelId};
use super::model::{Action, Family, Mode, ModelError, PolicyDir, PolicySet, Selector};
use super::priority::Priority;

const NONE: u32 = u32::MAX;
/// Probe value of an absent port or ICMP field: outside every selector range.
const ABSENT: u32 = u32::MAX;
/// Matcher protocol value meaning "any protocol".
const ANY_PROTO: u32 = 0x100;

/// A rule's pattern in the form the lookup compares: masked addresses and inclusive ranges
/// (wildcards are the full range, which also admits an absent field).
#[derive(Clone, Copy, Debug)]
struct Matcher {
    laddr: u128,
    lmask: u128,
    raddr: u128,
    rmask: u128,
    lport: (u32, u32),
    rport: (u32, u32),
    itype: (u32, u32),
    icode: (u32, u32),
    proto: u32,
}

/// A packet in the form the lookup compares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    local: u128,
    remote: u128,
    lport: u32,
    rport: u32,
    itype: u32,
    icode: u32,
    proto: u32,
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The mask of a `len`-bit prefix in a `width`-bit address held in the low bits of a u128.
fn mask(width: u8, len: u8) -> u128 {
    let len = len.min(width);
    if len == 0 {
        return 0;
    }
    let full = if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let host = u32::from(width - len);
    let host_mask = if host == 0 { 0 } else { (1u128 << host) - 1 };
    full & !host_mask
}

fn full_range(r: Option<(u32, u32)>) -> (u32, u32) {
    r.unwrap_or((0, u32::MAX))
}

impl Matcher {
    fn new(s: &Selector, fam: Family) -> Self {
        let w = fam.bits();
        let pfx = |p: Option<super::model::Prefix>| match p {
            Some(p) => {
                let m = mask(w, p.len);
                (addr_bits(p.addr) & m, m)
            }
            None => (0, 0),
        };
        let (laddr, lmask) = pfx(s.laddr);
        let (raddr, rmask) = pfx(s.raddr);
        Self {
            laddr,
            lmask,
            raddr,
            rmask,
            lport: full_range(s.lport.map(|r| (u32::from(r.lo), u32::from(r.hi)))),
            rport: full_range(s.rport.map(|r| (u32::from(r.lo), u32::from(r.hi)))),
            itype: full_range(s.icmp_type.map(|r| (u32::from(r.lo), u32::from(r.hi)))),
            icode: full_range(s.icmp_code.map(|r| (u32::from(r.lo), u32::from(r.hi)))),
            proto: s.ulp.map_or(ANY_PROTO, u32::from),
        }
    }

    #[inline(always)]
    fn matches(&self, p: &Probe) -> bool {
        (p.remote & self.rmask) == self.raddr
            && (p.local & self.lmask) == self.laddr
            && (self.proto == ANY_PROTO || self.proto == p.proto)
            && self.lport.0 <= p.lport
            && p.lport <= self.lport.1
            && self.rport.0 <= p.rport
            && p.rport <= self.rport.1
            && self.itype.0 <= p.itype
            && p.itype <= self.itype.1
            && self.icode.0 <= p.icode
            && p.icode <= self.icode.1
    }
}

impl Probe {
    pub(crate) fn of(key: &PacketKey) -> Self {
        let opt = |v: Option<u16>| v.map_or(ABSENT, u32::from);
        let opt8 = |v: Option<u8>| v.map_or(ABSENT, u32::from);
        Self {
            local: addr_bits(key.local()),
            remote: addr_bits(key.remote()),
            lport: opt(key.lport()),
            rport: opt(key.rport()),
            itype: opt8(key.icmp_type),
            icode: opt8(key.icmp_code),
            proto: u32::from(key.proto),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    prio: u32,
    rule: u32,
    m: Matcher,
}

/// A run of `entries`, highest priority first; `max` is the priority of the first entry.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    end: u32,
    max: u32,
}

#[derive(Clone, Copy, Debug)]
struct PNode {
    parent: u32,
    span: Span,
    /// Maximum priority on the path from this node to its root.
    chain_max: u32,
}

/// Prefixes of one dimension (local or remote address) as a nesting forest with a flat
/// elementary-interval map from address to the deepest prefix containing it.
#[derive(Clone, Debug, Default)]
struct PrefixIndex {
    starts: Vec<u128>,
    seg: Vec<u32>,
    nodes: Vec<PNode>,
}

impl PrefixIndex {
    /// `groups`: (network, mask, span), one per distinct prefix, any order.
    fn build(width: u8, mut groups: Vec<(u128, u128, Span)>) -> Self {
        if groups.is_empty() {
            return Self::default();
        }
        let top = if width >= 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        // Containers before contents: by start, then by size (largest first).
        groups.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let nodes_lo_hi: Vec<(u128, u128)> = groups
            .iter()
            .map(|(net, m, _)| (*net, *net | (!*m & top)))
            .collect();
        let mut nodes: Vec<PNode> = Vec::with_capacity(groups.len());
        let mut starts: Vec<u128> = Vec::with_capacity(groups.len() * 2 + 1);
        let mut seg: Vec<u32> = Vec::with_capacity(groups.len() * 2 + 1);
        let emit = |starts: &mut Vec<u128>, seg: &mut Vec<u32>, at: u128, node: u32| {
            if starts.last() == Some(&at) {
                if let Some(s) = seg.last_mut() {
                    *s = node;
                }
            } else {
                starts.push(at);
                seg.push(node);
            }
        };
        emit(&mut starts, &mut seg, 0, NONE);
        let mut stack: Vec<u32> = Vec::new();
        for (i, ((lo, hi), g)) in nodes_lo_hi.iter().zip(groups.iter()).enumerate() {
            while let Some(&t) = stack.last() {
                let (_, thi) = nodes_lo_hi[t as usize];
                if thi < *lo {
                    stack.pop();
                    let parent = stack.last().copied().unwrap_or(NONE);
                    emit(&mut starts, &mut seg, thi + 1, parent);
                } else {
                    break;
                }
            }
            let parent = stack.last().copied().unwrap_or(NONE);
            let parent_max = if parent == NONE {
                0
            } else {
                nodes[parent as usize].chain_max
            };
            nodes.push(PNode {
                parent,
                span: g.2,
                chain_max: g.2.max.max(parent_max),
            });
            let id = i as u32;
            emit(&mut starts, &mut seg, *lo, id);
            let _ = hi;
            stack.push(id);
        }
        while let Some(t) = stack.pop() {
            let (_, thi) = nodes_lo_hi[t as usize];
            if thi < top {
                let parent = stack.last().copied().unwrap_or(NONE);
                emit(&mut starts, &mut seg, thi + 1, parent);
            }
        }
        Self { starts, seg, nodes }
    }

    #[inline]
    fn deepest(&self, a: u128) -> u32 {
        let i = self.starts.partition_point(|s| *s <= a);
        match i.checked_sub(1).and_then(|i| self.seg.get(i)) {
            Some(n) => *n,
            None => NONE,
        }
    }
}

/// Single ports of one dimension, sorted, with their lists.
#[derive(Clone, Debug, Default)]
struct PortIndex {
    ports: Vec<u16>,
    spans: Vec<Span>,
}

impl PortIndex {
    #[inline]
    fn get(&self, p: u32) -> Option<Span> {
        let p = u16::try_from(p).ok()?;
        let i = self.ports.binary_search(&p).ok()?;
        self.spans.get(i).copied()
    }
}

/// The index of one head for one family and direction.
#[derive(Clone, Debug, Default)]
struct Table {
    entries: Vec<Entry>,
    wild: Span,
    proto: Vec<Span>,
    lport: PortIndex,
    rport: PortIndex,
    laddr: PrefixIndex,
    raddr: PrefixIndex,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Slot {
    Raddr(u128, u128),
    Laddr(u128, u128),
    Rport(u16),
    Lport(u16),
    Proto(u8),
    Wild,
}

impl Table {
    /// `rules`: (rule index, priority value, selector) of the rules of this family and
    /// direction.
    fn build(fam: Family, rules: &[(u32, u32, &Selector)]) -> Self {
        let w = fam.bits();
        let matchers: Vec<Matcher> = rules.iter().map(|(_, _, s)| Matcher::new(s, fam)).collect();
        // Candidate slots of each rule, and how many rules share each.
        let mut count: HashMap<Slot, u32> = HashMap::new();
        let cands: Vec<Vec<Slot>> = rules
            .iter()
            .zip(&matchers)
            .map(|((_, _, s), m)| {
                let mut v = Vec::with_capacity(5);
                if s.raddr.is_some_and(|p| p.len > 0) {
                    v.push(Slot::Raddr(m.raddr, m.rmask));
                }
                if s.laddr.is_some_and(|p| p.len > 0) {
                    v.push(Slot::Laddr(m.laddr, m.lmask));
                }
                if let Some(r) = s.rport.filter(|r| r.is_single()) {
                    v.push(Slot::Rport(r.lo));
                }
                if let Some(r) = s.lport.filter(|r| r.is_single()) {
                    v.push(Slot::Lport(r.lo));
                }
                if let Some(u) = s.ulp {
                    v.push(Slot::Proto(u));
                }
                for c in &v {
                    *count.entry(*c).or_insert(0) += 1;
                }
                v
            })
            .collect();
        // File each rule under its least shared slot (ties: the order above).
        let mut filed: Vec<(Slot, u32, u32, Matcher)> = rules
            .iter()
            .zip(&matchers)
            .zip(&cands)
            .map(|(((rule, prio, _), m), c)| {
                let slot = c
                    .iter()
                    .copied()
                    .min_by_key(|s| count.get(s).copied().unwrap_or(u32::MAX))
                    .unwrap_or(Slot::Wild);
                (slot, *prio, *rule, *m)
            })
            .collect();
        filed.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut t = Table {
            entries: Vec::with_capacity(filed.len()),
            proto: vec![Span::default(); 256],
            ..Table::default()
        };
        let (mut raddr, mut laddr) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < filed.len() {
            let slot = filed[i].0;
            let start = t.entries.len() as u32;
            let max = filed[i].1;
            while i < filed.len() && filed[i].0 == slot {
                let (_, prio, rule, m) = filed[i];
                t.entries.push(Entry { prio, rule, m });
                i += 1;
            }
            let span = Span {
                start,
                end: t.entries.len() as u32,
                max,
            };
            match slot {
                Slot::Raddr(net, m) => raddr.push((net, m, span)),
                Slot::Laddr(net, m) => laddr.push((net, m, span)),
                Slot::Rport(p) => {
                    t.rport.ports.push(p);
                    t.rport.spans.push(span);
                }
                Slot::Lport(p) => {
                    t.lport.ports.push(p);
                    t.lport.spans.push(span);
                }
                Slot::Proto(p) => {
                    if let Some(s) = t.proto.get_mut(usize::from(p)) {
                        *s = span;
                    }
                }
                Slot::Wild => t.wild = span,
            }
        }
        t.raddr = PrefixIndex::build(w, raddr);
        t.laddr = PrefixIndex::build(w, laddr);
        t
    }

    #[inline]
    fn scan(&self, span: Span, p: &Probe, best: &mut u32, rule: &mut u32) {
        if span.max <= *best {
            return;
        }
        let Some(list) = self.entries.get(span.start as usize..span.end as usize) else {
            return;
        };
        for e in list {
            if e.prio <= *best {
                return;
            }
            if e.m.matches(p) {
                *best = e.prio;
                *rule = e.rule;
                return;
            }
        }
    }

    #[inline]
    fn walk(&self, idx: &PrefixIndex, a: u128, p: &Probe, best: &mut u32, rule: &mut u32) {
        if idx.nodes.is_empty() {
            return;
        }
        let mut n = idx.deepest(a);
        while let Some(node) = idx.nodes.get(n as usize) {
            if node.chain_max <= *best {
                return;
            }
            self.scan(node.span, p, best, rule);
            n = node.parent;
        }
    }

    /// The highest-priority matching rule: (priority value, rule index).
    fn lookup(&self, p: &Probe) -> Option<(u32, u32)> {
        let (mut best, mut rule) = (0u32, NONE);
        self.scan(self.wild, p, &mut best, &mut rule);
        if let Some(s) = self.proto.get(p.proto as usize) {
            self.scan(*s, p, &mut best, &mut rule);
        }
        if let Some(s) = self.rport.get(p.rport) {
            self.scan(s, p, &mut best, &mut rule);
        }
        if let Some(s) = self.lport.get(p.lport) {
            self.scan(s, p, &mut best, &mut rule);
        }
        self.walk(&self.raddr, p.remote, p, &mut best, &mut rule);
        self.walk(&self.laddr, p.local, p, &mut best, &mut rule);
        (rule != NONE).then_some((best, rule))
    }
}

/// One SPD (the host's or a tunnel's): four tables.
#[derive(Clone, Debug, Default)]
struct Head {
    /// v4 out, v4 in, v6 out, v6 in.
    tables: [Table; 4],
    rules: usize,
}

fn table_index(fam: Family, d: Dir) -> usize {
    match (fam, d) {
        (Family::V4, Dir::Out) => 0,
        (Family::V4, Dir::In) => 1,
        (Family::V6, Dir::Out) => 2,
        (Family::V6, Dir::In) => 3,
    }
}

impl Head {
    fn build(set: &PolicySet, members: &[usize], prios: &[u32]) -> Self {
        let mut per: [Vec<(u32, u32, &Selector)>; 4] = Default::default();
        for &i in members {
            let Some(r) = set.rules.get(i) else { continue };
            let prio = prios.get(i).copied().unwrap_or(0);
            let fams: &[Family] = match r.selector.family() {
                Some(Family::V4) => &[Family::V4],
                Some(Family::V6) => &[Family::V6],
                None => &[Family::V4, Family::V6],
            };
            for &fam in fams {
                for d in [Dir::Out, Dir::In] {
                    if r.dir.covers(d) {
                        if let Some(v) = per.get_mut(table_index(fam, d)) {
                            v.push((i as u32, prio, &r.selector));
                        }
                    }
                }
            }
        }
        let fam_of = |i: usize| if i < 2 { Family::V4 } else { Family::V6 };
        let [a, b, c, d] = &per;
        Head {
            tables: [
                Table::build(fam_of(0), a),
                Table::build(fam_of(1), b),
                Table::build(fam_of(2), c),
                Table::build(fam_of(3), d),
            ],
            rules: members.len(),
        }
    }

    fn lookup(&self, key: &PacketKey) -> Option<(u32, u32)> {
        if !key.families_agree() {
            return None;
        }
        let fam = Family::of(key.src);
        self.tables
            .get(table_index(fam, key.dir))
            .and_then(|t| t.lookup(&Probe::of(key)))
    }
}

/// Tunnel names and the numbers packets refer to them by. Numbers are never reused.
#[derive(Clone, Debug, Default)]
pub struct TunnelNames {
    by_name: HashMap<String, TunnelId>,
    names: Vec<String>,
}

impl TunnelNames {
    /// The number of `name`, allocated on first use (tunnels may be named before they exist).
    pub fn id(&mut self, name: &str) -> TunnelId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = TunnelId(self.names.len() as u32);
        self.names.push(name.to_owned());
        self.by_name.insert(name.to_owned(), id);
        id
    }
    /// The number of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<TunnelId> {
        self.by_name.get(name).copied()
    }
    /// The name of `id`.
    pub fn name(&self, id: TunnelId) -> Option<&str> {
        self.names.get(id.0 as usize).map(String::as_str)
    }
}

/// Where a deciding policy entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicySource {
    /// Rule `index` (file order) of the host SPD.
    Host(usize),
    /// Rule `index` (file order) of a tunnel's SPD.
    Tunnel(TunnelId, usize),
    /// The per-socket policy of a socket.
    Socket(SocketId),
}

impl PolicySource {
    /// The rule index, for file rules.
    pub const fn rule_index(&self) -> Option<usize> {
        match self {
            PolicySource::Host(i) | PolicySource::Tunnel(_, i) => Some(*i),
            PolicySource::Socket(_) => None,
        }
    }
    /// The tunnel, for tunnel rules.
    pub const fn tunnel(&self) -> Option<TunnelId> {
        match self {
            PolicySource::Tunnel(t, _) => Some(*t),
            _ => None,
        }
    }
}

/// A policy entry as the engine uses it: a file rule or a socket's policy, with its priority,
/// action and the SA mode protection under it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntry {
    /// Which rule or socket.
    pub source: PolicySource,
    /// Priority.
    pub priority: Priority,
    /// The action.
    pub action: Action,
    /// SA mode.
    pub mode: Mode,
}

/// An error compiling a policy: the rule index and what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// The rule (file order).
    pub rule: usize,
    /// The problem.
    pub error: ModelError,
}

impl core::fmt::Display for CompileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "rule {}: {}", self.rule, self.error)
    }
}

impl std::error::Error for CompileError {}

/// An immutable, compiled policy: the host SPD and every tunnel SPD. Cheap to share
/// (`Arc`) between data-plane threads; replaced as a whole.
#[derive(Debug)]
pub struct CompiledSpd {
    set: Arc<PolicySet>,
    host: Head,
    tunnels: Vec<Option<Head>>,
    actions: Vec<Arc<PolicyEntry>>,
}

impl CompiledSpd {
    /// The compiled form of an empty policy.
    pub fn empty() -> Self {
        Self {
            set: Arc::new(PolicySet::new()),
            host: Head::default(),
            tunnels: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Validates and compiles `set`; tunnel names are numbered through `names`.
    pub fn compile(set: Arc<PolicySet>, names: &mut TunnelNames) -> Result<Self, CompileError> {
        set.validate()
            .map_err(|(rule, error)| CompileError { rule, error })?;
        let mut host_members = Vec::new();
        let mut tunnel_members: Vec<Vec<usize>> = Vec::new();
        let mut actions = Vec::with_capacity(set.rules.len());
        let mut prios = Vec::with_capacity(set.rules.len());
        for (i, r) in set.rules.iter().enumerate() {
            let priority = Priority::for_rule(i, &r.action);
            prios.push(priority.value());
            let tunnel = r.tunnel.as_deref().map(|n| names.id(n));
            match tunnel {
                None => host_members.push(i),
                Some(t) => {
                    let ti = t.0 as usize;
                    if tunnel_members.len() <= ti {
                        tunnel_members.resize_with(ti + 1, Vec::new);
                    }
                    if let Some(v) = tunnel_members.get_mut(ti) {
                        v.push(i);
                    }
                }
            }
            actions.push(Arc::new(PolicyEntry {
                source: match tunnel {
                    None => PolicySource::Host(i),
                    Some(t) => PolicySource::Tunnel(t, i),
                },
                priority,
                action: r.action.clone(),
                mode: r.mode(),
            }));
        }
        let host = Head::build(&set, &host_members, &prios);
        let tunnels = tunnel_members
            .iter()
            .map(|m| (!m.is_empty()).then(|| Head::build(&set, m, &prios)))
            .collect();
        Ok(Self {
            set,
            host,
            tunnels,
            actions,
        })
    }

    /// The policy this was compiled from.
    pub fn policy(&self) -> &Arc<PolicySet> {
        &self.set
    }

    /// Number of rules in the SPD of `tunnel` (`None`: the host SPD).
    pub fn head_rules(&self, tunnel: Option<TunnelId>) -> usize {
        match tunnel {
            None => self.host.rules,
            Some(t) => self
                .tunnels
                .get(t.0 as usize)
                .and_then(Option::as_ref)
                .map_or(0, |h| h.rules),
        }
    }

    /// The highest-priority rule of the packet's SPD (host, or `key.tunnel`'s) matching `key`,
    /// or `None`. Sockets and the key-management bypass are not consulted here.
    pub fn lookup(&self, key: &PacketKey) -> Option<&Arc<PolicyEntry>> {
        let head = match key.tunnel {
            None => &self.host,
            Some(t) => self.tunnels.get(t.0 as usize).and_then(Option::as_ref)?,
        };
        let (_, rule) = head.lookup(key)?;
        self.actions.get(rule as usize)
    }

    /// The compiled action of rule `index`.
    pub fn rule_action(&self, index: usize) -> Option<&Arc<PolicyEntry>> {
        self.actions.get(index)
    }

    /// Rules of one SPD applying in `dir`, in match order (highest priority first), as
    /// `ipsecconf -l` lists them.
    pub fn match_order(&self, tunnel: Option<TunnelId>, dir: PolicyDir) -> Vec<&Arc<PolicyEntry>> {
        let mut v: Vec<&Arc<PolicyEntry>> = self
            .actions
            .iter()
            .filter(|a| a.source.tunnel() == tunnel)
            .filter(|a| {
                a.source
                    .rule_index()
                    .and_then(|i| self.set.rules.get(i))
                    .is_some_and(|r| {
                        matches!((dir, r.dir), (PolicyDir::Both, _) | (_, PolicyDir::Both))
                            || dir == r.dir
                    })
            })
            .collect();
        v.sort_by_key(|a| core::cmp::Reverse(a.priority.value()));
        v
    }
}
