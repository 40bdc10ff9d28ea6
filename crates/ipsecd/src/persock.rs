//! The per-socket policy service (`IP_SEC_OPT` / `IPV6_SEC_OPT`, issue 8): applications
//! (through libipsec_sock.so or the ipsec-sockopt crate) register each policied socket over
//! their own `SOCK_SEQPACKET` connection; the protocol is in [`ipsec_sockopt::proto`].
//!
//! ```text
//!  connection accepted ── SO_PEERCRED: root or CAP_NET_ADMIN = privileged
//!  open / set / get / sync, each with the socket attached (SCM_RIGHTS): family, protocol,
//!  listening state and addresses are read from the socket itself, never taken from the client
//!                             ──> Spd::socket_open / socket_listen / set_socket_policy /
//!                                 socket_connected (latch), under the core lock
//!                             ──> Registry: (proto, local port[, peer]) -> SocketId, which the
//!                                 data plane puts into each packet's PacketKey
//!                             ──> a socket whose policy protects, once its port is known:
//!                                 ip rule add fwmark 0/MARK ipproto P sport N table TABLE+1
//!                                 (priority just before the daemon's own rule), and table
//!                                 TABLE+1 routes everything into the TUN device (with a
//!                                 fail-closed prohibit twin), so its packets reach ipsecd
//!                                 even where global policy bypasses the peer
//!                             ──> nftables sets persock_protect (cleartext to or from the
//!                                 port is dropped) and persock_clear (a bypass socket's
//!                                 cleartext is let in where global policy protects)
//!  connection closed ──> Spd::socket_close, rule, set elements and registry entry removed
//! ```
//!
//! A socket is keyed by its protocol and local port: an accepted TCP socket shares the
//! listener's port (and inherits its policy); the data plane prefers a connected socket
//! whose peer matches the packet.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use ipsec_core::spd::model::ulp;
use ipsec_core::spd::{Action, Family, IpsecReq, PacketKey, SockOptError, SocketId, SocketInfo};
use ipsec_sockopt::proto::{Reply, Request};
use ipsec_sys::netlink::{self, Netlink, Route, RouteKind, Rule};
use ipsec_sys::seqpacket::{Conn, Listener, Recv};
use ipsec_sys::sockinfo;
use ipsec_sys::{PollFd, PollFlags};

use crate::core::{lock, Core};
use crate::{log, nft};

/// Serialises nftables loads between the data plane (whole table) and this service (set
/// elements), so that a table reload never loses elements added meanwhile.
static NFT_LOCK: Mutex<()> = Mutex::new(());

/// Takes the nftables lock (before the core lock, never after).
pub fn nft_guard() -> MutexGuard<'static, ()> {
    NFT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a socket's policy does to its packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Protect,
    Bypass,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: SocketId,
    local: IpAddr,
    remote: Option<SocketAddr>,
    verdict: Verdict,
}

/// The sockets with a policy and a known port, for the data plane and nftables.
#[derive(Debug, Default)]
pub struct Registry {
    by_port: HashMap<(u8, u16), Vec<Entry>>,
}

fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl Registry {
    /// The socket that sent (outbound) or receives (inbound) the packet `key` describes:
    /// a connected socket whose peer matches, else one bound to the local address or the
    /// wildcard. Nothing is looked up while no socket has a policy.
    pub fn lookup(&self, key: &PacketKey) -> Option<SocketId> {
        if self.by_port.is_empty() {
            return None;
        }
        let v = self.by_port.get(&(key.proto, key.lport()?))?;
        let (local, remote) = (key.local(), key.remote());
        v.iter()
            .find(|e| {
                e.remote
                    .is_some_and(|r| r.ip() == remote && Some(r.port()) == key.rport())
            })
            .or_else(|| {
                v.iter()
                    .find(|e| e.remote.is_none() && (e.local.is_unspecified() || e.local == local))
            })
            .map(|e| e.id)
    }

    fn remove(&mut self, id: SocketId) {
        self.by_port.retain(|_, v| {
            v.retain(|e| e.id != id);
            !v.is_empty()
        });
    }

    fn put(&mut self, proto: u8, local: SocketAddr, e: Entry) {
        self.remove(e.id);
        self.by_port
            .entry((proto, local.port()))
            .or_default()
            .push(e);
    }

    /// `nft` commands that make the sets hold exactly the registered ports.
    pub fn nft_elements(&self) -> String {
        let mut sets: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((proto, port), v) in &self.by_port {
            for e in v {
                let set = match e.verdict {
                    Verdict::Protect => "persock_protect",
                    Verdict::Bypass => "persock_clear",
                };
                let el = format!("{proto} . {port}");
                let l = sets.entry(set).or_default();
                if !l.contains(&el) {
                    l.push(el);
                }
            }
        }
        let mut out = String::new();
        for set in ["persock_protect", "persock_clear"] {
            out.push_str(&format!("flush set {} {set}\n", nft::TABLE));
            if let Some(els) = sets.get(set) {
                out.push_str(&format!(
                    "add element {} {set} {{ {} }}\n",
                    nft::TABLE,
                    els.join(", ")
                ));
            }
        }
        out
    }
}

/// Service settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The service socket.
    pub path: PathBuf,
    /// The TUN device.
    pub tun: String,
    /// The daemon's firewall mark.
    pub mark: u32,
    /// The per-socket routing table (the daemon's table + 1).
    pub table: u32,
    /// Priority of the per-socket rules (just before the daemon's rule).
    pub priority: u32,
}

/// The running service.
pub struct Handle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// Stops the service and removes its rules and routes.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One policied socket (one connection).
struct Client {
    conn: Conn,
    privileged: bool,
    uid: u32,
    /// The socket's number, what it is, and its inode (every request must attach it).
    id: Option<(SocketId, SocketInfo, u64)>,
    listening: bool,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    rules: Vec<Rule>,
}

struct Service {
    core: Core,
    cfg: Config,
    nl: Netlink,
    next_id: u64,
    /// Installed rules and how many sockets use each (accepted sockets share the
    /// listener's port).
    rule_users: HashMap<(u8, u8, u16), usize>,
    /// The set elements last loaded.
    loaded: String,
}

/// How many sockets one unprivileged user may have registered (each is an SPD entry, maybe
/// a routing rule and set elements).
const MAX_SOCKETS_PER_USER: usize = 4096;

/// A closed TCP socket whose connection the kernel still has.
struct Lingering {
    id: SocketId,
    ports: (u16, u16),
    rules: Vec<Rule>,
    since: std::time::Instant,
}

/// The longest a closed TCP socket keeps its policy (FIN_WAIT and TIME_WAIT included).
const MAX_LINGER: Duration = Duration::from_secs(180);

/// (local port, remote port) of every TCP socket the kernel has in this namespace, but those
/// in TIME_WAIT (`/proc/net/tcp` and `tcp6`: `sl local_address rem_address st ...`, ports
/// and state in hex).
fn tcp_ports() -> std::collections::HashSet<(u16, u16)> {
    let port = |f: &str| {
        f.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut out = std::collections::HashSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // TIME_WAIT (06) only answers a retransmitted FIN: the socket is over.
            if f.get(3) == Some(&"06") {
                continue;
            }
            if let (Some(l), Some(r)) = (
                f.get(1).and_then(|x| port(x)),
                f.get(2).and_then(|x| port(x)),
            ) {
                out.insert((l, r));
            }
        }
    }
    out
}

/// Binds the service socket (mode 0666: any user may ask for protection; privilege is
/// checked per request), sets up the per-socket table and starts the service thread.
pub fn start(core: Core, cfg: Config) -> io::Result<Handle> {
    if let Some(dir) = cfg.path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = Listener::bind(&cfg.path, 0o666)?;
    let mut nl = Netlink::open()?;
    let tun = nl.link_index(&cfg.tun)?;
    let mut s = Service {
        core,
        cfg,
        nl,
        next_id: 1,
        rule_users: HashMap::new(),
        loaded: String::new(),
    };
    s.clean();
    for any in [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    ] {
        let via_tun = Route {
            table: s.cfg.table,
            oif: Some(tun),
            ..Route::new(any, 0)
        };
        let closed = Route {
            table: s.cfg.table,
            kind: RouteKind::Prohibit,
            metric: Some(4096),
            ..Route::new(any, 0)
        };
        for r in [closed, via_tun] {
            s.nl.route_add(&r)?;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("persock".into())
        .spawn(move || s.run(&listener, &st))?;
    Ok(Handle {
        stop,
        thread: Some(thread),
    })
}

fn family(v6: bool) -> netlink::Family {
    if v6 {
        netlink::Family::V6
    } else {
        netlink::Family::V4
    }
}

impl Service {
    /// Removes the per-socket rules and routes (also a killed predecessor's).
    fn clean(&mut self) {
        for v6 in [false, true] {
            let r = Rule {
                priority: self.cfg.priority,
                ..Rule::new(family(v6), self.cfg.table)
            };
            for _ in 0..4096 {
                if self.nl.rule_del(&r).is_err() {
                    break;
                }
            }
        }
        if let Ok(routes) = self.nl.routes_in_table(self.cfg.table) {
            for r in routes {
                let _ = self.nl.route_del(&r);
            }
        }
        self.rule_users.clear();
    }

    fn run(mut self, listener: &Listener, stop: &AtomicBool) {
        let mut clients: Vec<Client> = Vec::new();
        let mut lingering: Vec<Lingering> = Vec::new();
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(clients.len() + 1);
            fds.push(PollFd::new(listener, PollFlags::IN));
            for c in &clients {
                fds.push(PollFd::new(&c.conn, PollFlags::IN));
            }
            if ipsec_sys::poll(&mut fds, Some(Duration::from_millis(200))).is_err() {
                continue;
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            let mut gone = Vec::new();
            for (i, c) in clients.iter_mut().enumerate() {
                if !ready.get(i + 1).copied().unwrap_or(false) {
                    continue;
                }
                // The attached socket copy is closed when `fd` drops, right after the request.
                let reply = match c.conn.recv_with_fd(&mut buf) {
                    Ok((Recv::Msg(n), fd)) => {
                        let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                        match Request::parse(&text) {
                            Ok(r) => self.handle(c, r, fd),
                            Err(e) => Reply::Err { errno: 22, why: e },
                        }
                    }
                    Ok((Recv::WouldBlock, _)) => continue,
                    Ok((Recv::Truncated(_), _)) => Reply::Err {
                        errno: 22,
                        why: "message too long".into(),
                    },
                    Ok((Recv::Closed, _)) | Err(_) => {
                        gone.push(i);
                        continue;
                    }
                };
                if c.conn.send(reply.encode().as_bytes()).is_err() {
                    gone.push(i);
                }
            }
            for i in gone.into_iter().rev() {
                let c = clients.swap_remove(i);
                self.forget(c, &mut lingering);
            }
            self.reap(&mut lingering);
            if ready.first().copied().unwrap_or(false) {
                while let Ok(Some((conn, cred))) = listener.accept() {
                    let privileged = cred.is_privileged();
                    if !privileged
                        && clients.iter().filter(|c| c.uid == cred.uid).count()
                            >= MAX_SOCKETS_PER_USER
                    {
                        // Refused: the client sees its connection closed (EPROTONOSUPPORT).
                        continue;
                    }
                    // Blocking replies: a client waits for each answer.
                    let _ = conn.set_nonblocking(true);
                    clients.push(Client {
                        conn,
                        privileged,
                        uid: cred.uid,
                        id: None,
                        listening: false,
                        local: None,
                        remote: None,
                        rules: Vec::new(),
                    });
                }
            }
        }
        for c in std::mem::take(&mut clients) {
            if let Some((id, _, _)) = c.id {
                self.remove(id, c.rules);
            }
        }
        for l in lingering {
            self.remove(l.id, l.rules);
        }
        self.clean();
    }

    fn handle(&mut self, c: &mut Client, r: Request, fd: Option<OwnedFd>) -> Reply {
        let err = |e: SockOptError| Reply::Err {
            errno: e.errno(),
            why: e.to_string(),
        };
        // What the socket itself says (never the client's words).
        let Some(fd) = fd else {
            return err(SockOptError::Invalid("the socket is not attached"));
        };
        let Ok(ident) = sockinfo::ident(fd.as_fd()) else {
            return err(SockOptError::Invalid("not a socket"));
        };
        let _nft = nft_guard();
        let mut g = lock(&self.core);
        let id = match (r, c.id) {
            (Request::Open, None) => {
                let kind = match sockinfo::kind(fd.as_fd()) {
                    Ok(k) => k,
                    Err(_) => return err(SockOptError::Invalid("not an IPv4 or IPv6 socket")),
                };
                let id = SocketId(self.next_id);
                self.next_id += 1;
                let info = SocketInfo {
                    family: if kind.v6 { Family::V6 } else { Family::V4 },
                    proto: kind.proto,
                    privileged: c.privileged,
                };
                if let Err(e) = g.spd.socket_open(id, info) {
                    return err(e);
                }
                c.id = Some((id, info, ident));
                id
            }
            (Request::Open, Some(_)) => return err(SockOptError::Invalid("already open")),
            (_, None) => return err(SockOptError::NoSocket),
            (_, Some((_, _, known))) if known != ident => {
                return err(SockOptError::Invalid("another socket than the one opened"))
            }
            (_, Some((id, _, _))) => id,
        };
        // Listening and local address first (a listening TCP socket refuses a request);
        // a peer latches the policy, after a request that comes with it (an accepted
        // socket inherits its listener's).
        let fd = fd.as_fd();
        if !c.listening && sockinfo::is_listening(fd) {
            c.listening = true;
            if let Err(e) = g.spd.socket_listen(id) {
                return err(e);
            }
        }
        c.local = sockinfo::local_addr(fd).ok().flatten().map(canon);
        let res = match r {
            Request::Open | Request::Sync => Ok(()),
            Request::Set(b) => {
                IpsecReq::from_ne_bytes(&b).and_then(|req| g.spd.set_socket_policy(id, &req))
            }
            Request::Get => {
                return match g.spd.socket_policy(id) {
                    Some(req) => Reply::Req(req.to_ne_bytes()),
                    None => Reply::NoPolicy,
                }
            }
        };
        if let Err(e) = res {
            return err(e);
        }
        let peer = match r {
            Request::Open => None,
            _ => sockinfo::peer_addr(fd).ok().flatten(),
        };
        if let (Some(local), Some(peer)) = (c.local, peer) {
            if !g.spd.socket_latched(id) {
                c.remote = Some(canon(peer));
                if let Err(e) = g.spd.socket_connected(id, local, canon(peer)) {
                    return err(e);
                }
            }
        }
        // Bring the registry, the routing rule and the nftables sets in line.
        let Some((id, info, _)) = c.id else {
            return Reply::Ok;
        };
        let verdict = g
            .spd
            .socket_policy(id)
            .and_then(|req| req.to_action().ok().flatten())
            .map(|a| match a {
                Action::Bypass => Verdict::Bypass,
                _ => Verdict::Protect,
            });
        match (verdict, c.local) {
            (Some(verdict), Some(local)) => g.persock.put(
                info.proto,
                local,
                Entry {
                    id,
                    local: local.ip(),
                    remote: c.remote,
                    verdict,
                },
            ),
            _ => g.persock.remove(id),
        }
        let elements = g.persock.nft_elements();
        drop(g);
        let want: Vec<Rule> = match (verdict, c.local) {
            (Some(Verdict::Protect), Some(local)) => {
                let fams: &[bool] = if info.family == Family::V6 {
                    &[false, true]
                } else {
                    &[false]
                };
                fams.iter()
                    .map(|&v6| Rule {
                        priority: self.cfg.priority,
                        fwmark: Some((0, self.cfg.mark)),
                        ip_proto: Some(info.proto),
                        sport: Some((local.port(), local.port())),
                        ..Rule::new(family(v6), self.cfg.table)
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        if want != c.rules {
            let old = std::mem::take(&mut c.rules);
            for r in &want {
                self.rule_ref(r, true);
            }
            for r in &old {
                self.rule_ref(r, false);
            }
            c.rules = want;
        }
        self.load_sets(elements);
        Reply::Ok
    }

    /// Loads the set elements when they changed (one `nft` run; the caller holds the nft
    /// lock). The data plane's table reloads carry the registry's elements themselves.
    fn load_sets(&mut self, elements: String) {
        if elements == self.loaded {
            return;
        }
        match nft::install(&elements) {
            Ok(()) => self.loaded = elements,
            Err(e) => log::debug(format_args!("per-socket nftables sets: {e}")),
        }
    }

    /// Takes (`add`) or releases a reference to a rule, adding or deleting it in the kernel
    /// as its first user comes or its last goes.
    fn rule_ref(&mut self, r: &Rule, add: bool) {
        let key = (
            u8::from(r.family == netlink::Family::V6),
            r.ip_proto.unwrap_or(0),
            r.sport.map_or(0, |p| p.0),
        );
        let n = self.rule_users.entry(key).or_insert(0);
        if add {
            *n += 1;
            if *n == 1 {
                if let Err(e) = self.nl.rule_add(r) {
                    log::error(format_args!("per-socket routing rule: {e}"));
                }
            }
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.rule_users.remove(&key);
                let _ = self.nl.rule_del(r);
            }
        }
    }

    /// The socket is closed (its connection ended): its policy, rules and elements go, at
    /// once, or for a connected TCP socket once the kernel's connection is gone (its FIN and
    /// last ACKs are still the socket's traffic). Dropping `c` closes the connection.
    fn forget(&mut self, c: Client, lingering: &mut Vec<Lingering>) {
        let Some((id, info, _)) = c.id else {
            return;
        };
        if let (ulp::TCP, Some(l), Some(r)) = (info.proto, c.local, c.remote) {
            lingering.push(Lingering {
                id,
                ports: (l.port(), r.port()),
                rules: c.rules,
                since: std::time::Instant::now(),
            });
            return;
        }
        self.remove(id, c.rules);
    }

    /// Ends lingering TCP sockets whose connection the kernel no longer has (or after
    /// [`MAX_LINGER`]).
    fn reap(&mut self, lingering: &mut Vec<Lingering>) {
        if lingering.is_empty() {
            return;
        }
        let live = tcp_ports();
        let (gone, keep): (Vec<Lingering>, Vec<Lingering>) = std::mem::take(lingering)
            .into_iter()
            .partition(|l| !live.contains(&l.ports) || l.since.elapsed() > MAX_LINGER);
        *lingering = keep;
        for l in gone {
            self.remove(l.id, l.rules);
        }
    }

    fn remove(&mut self, id: SocketId, rules: Vec<Rule>) {
        let _nft = nft_guard();
        let mut g = lock(&self.core);
        g.spd.socket_close(id);
        g.persock.remove(id);
        let elements = g.persock.nft_elements();
        drop(g);
        for r in rules {
            self.rule_ref(&r, false);
        }
        self.load_sets(elements);
    }
}
