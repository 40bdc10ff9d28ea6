//! The PF_KEY server: the local SOCK_SEQPACKET socket in front of the sans-IO
//! [`KeyEngine`](ipsec_pfkey::engine::KeyEngine).
//!
//! One thread runs a poll loop over the listener, the signal pipe and every client. Each
//! client has a bounded output queue; when it is full, further messages for that client are
//! dropped and counted (PF_KEY allows the kernel to drop messages to a socket that does not
//! keep up), so a slow or dead client never blocks the daemon or the other clients. A client
//! whose queue is above its high-water mark is not read from until it drains, which paces a
//! client that sends requests faster than it reads replies.
//!
//! DUMP replies are flow-controlled instead of dropped: the engine keeps each client's
//! DUMPs ([`KeyEngine::poll_dump`](ipsec_pfkey::engine::KeyEngine::poll_dump)), and the
//! server pulls a client's next records only while that client's queue is below its
//! high-water mark, at most [`DUMP_BATCH`] per client at a time; it resumes when the socket
//! drains. So a DUMP of any size arrives complete and ends with its seq-0 message, a slow
//! reader delays only its own dump, and the loop keeps serving other clients between
//! batches. A client that disconnects abandons its dump.
//!
//! Privilege is decided once per connection from `SO_PEERCRED`: root or `CAP_NET_ADMIN`.
//! Every message from an unprivileged client gets an error reply with `EPERM` and changes
//! nothing; such a client is not a PF_KEY client of the engine, so it receives no
//! broadcasts either.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipsec_pfkey::diag::Diagnostic;
use ipsec_pfkey::engine::{ClientId, EngineEvent, Output};

use crate::core::{lock, Core, Shared};
use ipsec_pfkey::wire::{Message, PfkeyError};
use ipsec_sys::seqpacket::{Conn, Listener, PeerCred, Recv, Sent};
use ipsec_sys::{PollFd, PollFlags};

use crate::log;

/// Largest PF_KEY message: `sadb_msg_len` is 16 bits of 64-bit words.
pub const MAX_MSG: usize = 0xffff * 8;

/// Linux `EPERM`.
const EPERM: u8 = 1;

/// DUMP records pulled for one client before the loop moves on (to other clients, and to
/// the next turn, which does not sleep while a dump can make progress).
pub const DUMP_BATCH: usize = 1024;

/// Limits of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Messages queued for one client before further ones are dropped.
    pub queue_messages: usize,
    /// Bytes queued for one client before further messages are dropped.
    pub queue_bytes: usize,
    /// Messages read from one client per loop turn (fairness between clients).
    pub read_batch: usize,
    /// Most clients connected at once; further connections are closed at once.
    pub max_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue_messages: 65_536,
            queue_bytes: 64 << 20,
            read_batch: 64,
            max_clients: 1024,
        }
    }
}

/// Counters of the server (reported at shutdown and on request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused because `max_clients` were connected.
    pub refused_full: u64,
    /// Messages received from privileged clients and handed to the engine.
    pub messages_in: u64,
    /// Messages refused with EPERM (unprivileged client).
    pub refused_unprivileged: u64,
    /// Messages too large for the receive buffer (answered with EMSGSIZE).
    pub oversized: u64,
    /// Messages delivered to client sockets.
    pub messages_out: u64,
    /// Messages dropped because a client's queue was full.
    pub dropped_queue_full: u64,
}

/// A control-socket connection.
struct CtlClient {
    conn: Conn,
    privileged: bool,
    /// Once it sent `natt-relay`: the messages waiting for it (IKE datagrams and replies,
    /// in order; see [`crate::relay`]).
    relay: Option<RelayQueue>,
}

#[derive(Default)]
struct RelayQueue {
    queue: VecDeque<Rc<[u8]>>,
    dropped: u64,
}

struct Client {
    conn: Conn,
    cred: PeerCred,
    privileged: bool,
    queue: VecDeque<Rc<[u8]>>,
    queued_bytes: usize,
    dropped: u64,
}

/// What the loop should do after a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// Shut down cleanly.
    Stop,
}

/// The PF_KEY server.
pub struct Server {
    listener: Listener,
    control: Option<Listener>,
    ctl_clients: Vec<CtlClient>,
    ike: Option<crate::relay::Port>,
    save_file: Option<PathBuf>,
    counters: Option<std::sync::Arc<crate::dataplane::Counters>>,
    wake_rx: std::os::unix::net::UnixStream,
    wake_tx: std::os::unix::net::UnixStream,
    core: Core,
    clients: BTreeMap<ClientId, Client>,
    next_id: u64,
    limits: Limits,
    stats: Stats,
    buf: Vec<u8>,
}

/// The current UNIX time in seconds (the engine's clock) and the fraction until the next
/// second.
pub fn now() -> (u64, Duration) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        d.as_secs(),
        Duration::from_secs(1).saturating_sub(Duration::from_nanos(u64::from(d.subsec_nanos()))),
    )
}

impl Server {
    /// Serves the key engine of `core` on a new socket at `path` (mode 0666; privilege is
    /// per message).
    pub fn bind(path: &Path, core: Core, limits: Limits) -> io::Result<Self> {
        let listener = Listener::bind(path, 0o666)?;
        let (wake_rx, wake_tx) = std::os::unix::net::UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        Ok(Self {
            wake_rx,
            wake_tx,
            listener,
            control: None,
            ctl_clients: Vec::new(),
            ike: None,
            save_file: None,
            counters: None,
            core,
            clients: BTreeMap::new(),
            next_id: 1,
            limits,
            stats: Stats::default(),
            buf: vec![0u8; MAX_MSG],
        })
    }

    /// Also serves the control socket (see [`crate::control`]) at `path` (mode 0600).
    pub fn bind_control(&mut self, path: &Path) -> io::Result<()> {
        self.control = Some(Listener::bind(path, 0o600)?);
        Ok(())
    }

    /// Where `save` writes the SAs.
    pub fn set_save_file(&mut self, path: Option<PathBuf>) {
        self.save_file = path;
    }

    /// Saves the SAs to the save file; returns a one-line report (`ok ...`/`error ...`).
    pub fn save_now(&self) -> String {
        let Some(p) = &self.save_file else {
            return "error no save file configured (ipsecd --save-file)".into();
        };
        match crate::keys::save(&lock(&self.core).keys, p) {
            Ok(n) => {
                log::info(format_args!("saved {n} SA(s) to {}", p.display()));
                format!("ok saved {n} SA(s) to {}", p.display())
            }
            Err(e) => {
                log::error(format_args!("saving to {}: {e}", p.display()));
                format!("error saving to {}: {e}", p.display())
            }
        }
    }

    /// The data plane's counters, reported by the control socket.
    pub fn set_counters(&mut self, c: std::sync::Arc<crate::dataplane::Counters>) {
        self.counters = Some(c);
    }

    /// Serves the NAT-T IKE relay over `port` (the data plane's, when NAT-T is on).
    pub fn set_ike_relay(&mut self, port: crate::relay::Port) {
        self.ike = Some(port);
    }

    fn count(&self, name: &'static str, n: u64) {
        if let Some(c) = &self.counters {
            c.add(name, n);
        }
    }

    /// The data plane's counters, if it runs.
    pub fn counters(&self) -> Option<&crate::dataplane::Counters> {
        self.counters.as_deref()
    }

    /// How many PF_KEY clients are connected.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The shared state, locked. Callers that make the key engine produce output must
    /// call [`deliver`](Self::deliver) afterwards (after dropping the guard).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        lock(&self.core)
    }

    /// The shared state.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// A handle other threads write a byte to after making the key engine produce PF_KEY
    /// messages (the data plane's ACQUIREs), so that this thread delivers them.
    pub fn waker(&self) -> io::Result<std::os::unix::net::UnixStream> {
        self.wake_tx.try_clone()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        self.listener.path()
    }

    /// Runs one loop turn: waits for readiness (at most until the engine's next timer or
    /// `max_wait`), accepts, reads, runs timers, delivers. `extra` is polled too (the signal
    /// pipe); returns whether it became readable.
    pub fn turn(
        &mut self,
        extra: Option<&dyn std::os::fd::AsFd>,
        max_wait: Duration,
    ) -> io::Result<bool> {
        let (now_s, to_next_second) = now();
        let mut wait = max_wait;
        let (next, dumps) = {
            let g = lock(&self.core);
            let dumps: Vec<ClientId> = g.keys.dump_clients().collect();
            (g.keys.poll_timeout(), dumps)
        };
        if dumps.iter().any(|id| {
            self.clients
                .get(id)
                .is_some_and(|c| !self.over_high_water(c))
        }) {
            // A dump can go on: do not sleep.
            wait = Duration::ZERO;
        }
        if let Some(t) = next {
            wait = if t <= now_s {
                Duration::ZERO
            } else {
                wait.min(Duration::from_secs(t - now_s - 1) + to_next_second)
            };
        }
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        let extra_ready;
        let mut readable = Vec::new();
        let mut writable = Vec::new();
        let mut accept_ready = false;
        let mut ctl_accept = false;
        let mut ctl_ready = Vec::new();
        {
            let mut fds = Vec::with_capacity(ids.len() + 2);
            fds.push(PollFd::new(&self.listener, PollFlags::IN));
            let extra_fd = extra.map(|e| e.as_fd());
            if let Some(e) = &extra_fd {
                fds.push(PollFd::new(e, PollFlags::IN));
            }
            fds.push(PollFd::new(&self.wake_rx, PollFlags::IN));
            if let Some(c) = &self.control {
                fds.push(PollFd::new(c, PollFlags::IN));
            }
            for c in &self.ctl_clients {
                let mut ev = PollFlags::IN;
                if c.relay.as_ref().is_some_and(|r| !r.queue.is_empty()) {
                    ev |= PollFlags::OUT;
                }
                fds.push(PollFd::new(&c.conn, ev));
            }
            let base = fds.len();
            for c in self.clients.values() {
                let mut ev = PollFlags::empty();
                if !self.over_high_water(c) {
                    ev |= PollFlags::IN;
                }
                if !c.queue.is_empty() {
                    ev |= PollFlags::OUT;
                }
                fds.push(PollFd::new(&c.conn, ev));
            }
            ipsec_sys::poll(&mut fds, Some(wait))?;
            let mut it = fds.iter();
            if it.next().is_some_and(|f| !f.revents().is_empty()) {
                accept_ready = true;
            }
            extra_ready = extra_fd.is_some() && it.next().is_some_and(|f| !f.revents().is_empty());
            if it.next().is_some_and(|f| !f.revents().is_empty()) {
                let mut sink = [0u8; 256];
                while matches!(std::io::Read::read(&mut &self.wake_rx, &mut sink), Ok(n) if n > 0) {
                }
            }
            if self.control.is_some() && it.next().is_some_and(|f| !f.revents().is_empty()) {
                ctl_accept = true;
            }
            for (i, f) in it.take(self.ctl_clients.len()).enumerate() {
                if f.revents()
                    .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
                {
                    ctl_ready.push(i);
                }
            }
            for (i, f) in fds.iter().enumerate().skip(base) {
                let r = f.revents();
                if let Some(id) = ids.get(i - base) {
                    if r.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                        readable.push(*id);
                    }
                    if r.contains(PollFlags::OUT) {
                        writable.push(*id);
                    }
                }
            }
        }
        if accept_ready {
            self.accept_all()?;
        }
        self.serve_control(&ctl_ready)?;
        if ctl_accept {
            if let Some(l) = &self.control {
                while let Some((conn, cred)) = l.accept()? {
                    self.ctl_clients.push(CtlClient {
                        conn,
                        privileged: cred.is_privileged(),
                        relay: None,
                    });
                }
            }
        }
        self.pump_relay();
        for id in writable {
            self.flush(id);
        }
        for id in readable {
            self.read_client(id)?;
        }
        let (now_s, _) = now();
        {
            let mut g = lock(&self.core);
            if g.keys.poll_timeout().is_some_and(|t| t <= now_s) {
                g.keys.handle_timeout(now_s);
            }
        }
        self.deliver();
        Ok(extra_ready)
    }

    fn serve_control(&mut self, ready: &[usize]) -> io::Result<()> {
        let mut closed = Vec::new();
        for &i in ready {
            let mut buf = vec![0u8; 1 << 20];
            let (r, privileged) = match self.ctl_clients.get(i) {
                Some(c) => (c.conn.recv(&mut buf).unwrap_or(Recv::Closed), c.privileged),
                None => continue,
            };
            let reply = match r {
                Recv::WouldBlock => continue,
                Recv::Closed => {
                    closed.push(i);
                    continue;
                }
                Recv::Truncated(_) => Some("error request too long".to_string()),
                Recv::Msg(n) if !privileged => {
                    let _ = n;
                    Some("error permission denied: needs root or CAP_NET_ADMIN".to_string())
                }
                Recv::Msg(n) => {
                    let msg = buf.get(..n).unwrap_or_default();
                    if crate::relay::is_send(msg) {
                        self.relay_send(i, msg).err()
                    } else {
                        let req = String::from_utf8_lossy(msg).into_owned();
                        if req.trim() == "natt-relay" {
                            Some(self.start_relay(i))
                        } else {
                            Some(crate::control::handle(self, &req, &mut |s: &Server| {
                                s.save_now()
                            }))
                        }
                    }
                }
            };
            if let Some(reply) = reply {
                if !self.ctl_reply(i, Rc::from(reply.into_bytes())) {
                    closed.push(i);
                }
            }
        }
        closed.sort_unstable();
        closed.dedup();
        for i in closed.into_iter().rev() {
            let c = self.ctl_clients.remove(i);
            if let Some(r) = c.relay {
                log::info(format_args!(
                    "NAT-T IKE relay disconnected; {} message(s) dropped for it",
                    r.dropped
                ));
            }
        }
        self.update_relay_count();
        Ok(())
    }

    /// Sends (or, on a relay, queues behind its IKE) one reply to control connection `i`;
    /// false when the connection is gone.
    fn ctl_reply(&mut self, i: usize, msg: Rc<[u8]>) -> bool {
        let Some(c) = self.ctl_clients.get_mut(i) else {
            return false;
        };
        match &mut c.relay {
            // A relay that sends requests but does not read loses replies, not memory.
            Some(r) if r.queue.len() >= crate::relay::RELAY_QUEUE => {
                r.dropped += 1;
                if let Some(c) = &self.counters {
                    c.add("natt_ike_relay_dropped", 1);
                }
                true
            }
            Some(r) => {
                r.queue.push_back(msg);
                self.flush_relay(i)
            }
            None => matches!(c.conn.send(&msg), Ok(Sent::Done)),
        }
    }

    /// The `natt-relay` request: control connection `i` becomes a relay.
    fn start_relay(&mut self, i: usize) -> String {
        let Some(port) = self.ike.as_ref().map(|p| p.port) else {
            return "error no NAT-T socket to relay IKE from (ipsecd needs --tun and a non-zero --natt-port)".into();
        };
        let Some(c) = self.ctl_clients.get_mut(i) else {
            return "error connection gone".into();
        };
        if c.relay.is_none() {
            c.relay = Some(RelayQueue::default());
            log::info(format_args!("NAT-T IKE relay connected (port {port})"));
        }
        self.update_relay_count();
        format!("ok relaying IKE on NAT-T port {port}")
    }

    /// A relay's `send DST_IP DST_PORT [SRC_IP]\n<IKE>` request.
    fn relay_send(&mut self, i: usize, msg: &[u8]) -> Result<(), String> {
        if self.ctl_clients.get(i).is_none_or(|c| c.relay.is_none()) {
            return Err("error send needs natt-relay first".into());
        }
        let Some(port) = &self.ike else {
            return Err("error no NAT-T socket".into());
        };
        let req = crate::relay::parse_send(msg).map_err(|e| format!("error {e}"))?;
        match port.send(req.dst, req.src, req.ike) {
            Ok(()) => {
                self.count("natt_ike_sent", 1);
                Ok(())
            }
            Err(e) => {
                self.count("natt_ike_send_error", 1);
                Err(format!("error {e}"))
            }
        }
    }

    fn update_relay_count(&self) {
        if let Some(p) = &self.ike {
            p.set_relays(
                self.ctl_clients
                    .iter()
                    .filter(|c| c.relay.is_some())
                    .count(),
            );
        }
    }

    /// Hands the IKE datagrams the data plane queued to every relay (at most the
    /// channel's capacity per turn), then sends what the relays' sockets take.
    fn pump_relay(&mut self) {
        let mut relayed = 0;
        let mut nobody = 0;
        let mut dropped = 0;
        for _ in 0..crate::relay::CHANNEL_DATAGRAMS {
            let Some(d) = self.ike.as_ref().and_then(|p| p.poll_datagram()) else {
                break;
            };
            let m: Rc<[u8]> = Rc::from(crate::relay::frame(&d));
            let mut any = false;
            for c in &mut self.ctl_clients {
                let Some(r) = &mut c.relay else { continue };
                if r.queue.len() >= crate::relay::RELAY_QUEUE {
                    r.dropped += 1;
                    dropped += 1;
                } else {
                    r.queue.push_back(Rc::clone(&m));
                    any = true;
                }
            }
            if any {
                relayed += 1;
            } else if !self.ctl_clients.iter().any(|c| c.relay.is_some()) {
                // The last relay left after the data plane queued this.
                nobody += 1;
            }
        }
        for (name, n) in [
            ("natt_ike_relayed", relayed),
            ("natt_ike_no_key_manager", nobody),
            ("natt_ike_relay_dropped", dropped),
        ] {
            if n > 0 {
                self.count(name, n);
            }
        }
        let mut closed = Vec::new();
        for i in 0..self.ctl_clients.len() {
            if self.ctl_clients.get(i).is_some_and(|c| c.relay.is_some()) && !self.flush_relay(i) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            self.ctl_clients.remove(i);
            log::info(format_args!("NAT-T IKE relay disconnected"));
        }
        self.update_relay_count();
    }

    /// Sends what relay connection `i`'s socket takes now; false when it is gone.
    fn flush_relay(&mut self, i: usize) -> bool {
        let Some(c) = self.ctl_clients.get_mut(i) else {
            return false;
        };
        let Some(r) = &mut c.relay else { return true };
        while let Some(m) = r.queue.front() {
            match c.conn.send(m) {
                Ok(Sent::Done) => {
                    r.queue.pop_front();
                }
                Ok(Sent::WouldBlock) => break,
                Ok(Sent::Closed) | Err(_) => return false,
            }
        }
        true
    }

    fn over_high_water(&self, c: &Client) -> bool {
        c.queue.len() >= self.limits.queue_messages / 2
            || c.queued_bytes >= self.limits.queue_bytes / 2
    }

    fn accept_all(&mut self) -> io::Result<()> {
        while let Some((conn, cred)) = self.listener.accept()? {
            if self.clients.len() >= self.limits.max_clients {
                self.stats.refused_full += 1;
                continue;
            }
            let _ = conn.set_send_buffer(4 << 20);
            let id = ClientId(self.next_id);
            self.next_id += 1;
            let privileged = cred.is_privileged();
            if privileged {
                lock(&self.core).keys.open(id);
            }
            log::debug(format_args!(
                "pfkey: client {} connected (pid {}, uid {}, {})",
                id.0,
                cred.pid,
                cred.uid,
                if privileged {
                    "privileged"
                } else {
                    "unprivileged"
                }
            ));
            self.stats.accepted += 1;
            self.clients.insert(
                id,
                Client {
                    conn,
                    cred,
                    privileged,
                    queue: VecDeque::new(),
                    queued_bytes: 0,
                    dropped: 0,
                },
            );
        }
        Ok(())
    }

    fn read_client(&mut self, id: ClientId) -> io::Result<()> {
        for _ in 0..self.limits.read_batch {
            let Some(c) = self.clients.get(&id) else {
                return Ok(());
            };
            if self.over_high_water(c) {
                return Ok(());
            }
            let privileged = c.privileged;
            let r = match c.conn.recv(&mut self.buf) {
                Ok(r) => r,
                Err(_) => Recv::Closed,
            };
            match r {
                Recv::WouldBlock => return Ok(()),
                Recv::Closed => {
                    self.close(id);
                    return Ok(());
                }
                Recv::Truncated(_) => {
                    self.stats.oversized += 1;
                    let hdr = self.buf.get(..16).unwrap_or_default().to_vec();
                    let e = PfkeyError::new(90, Diagnostic::None, "message too large");
                    self.reply_error(id, &hdr, &e);
                }
                Recv::Msg(n) => {
                    let msg = self.buf.get(..n).unwrap_or_default();
                    if privileged {
                        self.stats.messages_in += 1;
                        let (now_s, _) = now();
                        let mut g = lock(&self.core);
                        crate::inverse::install_for(&mut g, msg);
                        g.keys.handle(now_s, id, msg);
                        drop(g);
                        self.deliver();
                    } else {
                        self.stats.refused_unprivileged += 1;
                        let hdr = msg.to_vec();
                        let e =
                            PfkeyError::new(EPERM, Diagnostic::None, "needs root or CAP_NET_ADMIN");
                        self.reply_error(id, &hdr, &e);
                    }
                }
            }
        }
        Ok(())
    }

    fn reply_error(&mut self, id: ClientId, hdr: &[u8], e: &PfkeyError) {
        let mut padded = hdr.to_vec();
        padded.resize(padded.len().max(16), 0);
        if let Ok(bytes) = Message::error_reply(&padded, e).emit() {
            self.enqueue(id, Rc::from(bytes));
            self.flush(id);
        }
    }

    /// Delivers everything the engine has queued, pulls DUMP records for the clients that
    /// can take them (see [`pump_dumps`](Self::pump_dumps)), and logs the engine's events.
    pub fn deliver(&mut self) {
        loop {
            let out = lock(&self.core).keys.poll_output();
            let Some(out) = out else { break };
            self.deliver_output(out);
        }
        self.pump_dumps();
        loop {
            let ev = lock(&self.core).keys.poll_event();
            let Some(ev) = ev else { break };
            log_event(&ev);
        }
    }

    /// Pulls DUMP records for every client with a DUMP in progress, while its queue is
    /// below the high-water mark, at most [`DUMP_BATCH`] per client. The rest waits in the
    /// engine until the client's socket drains (`turn` pumps again after every flush).
    pub fn pump_dumps(&mut self) {
        let ids: Vec<ClientId> = lock(&self.core).keys.dump_clients().collect();
        for id in ids {
            for _ in 0..DUMP_BATCH {
                match self.clients.get(&id) {
                    Some(c) if !self.over_high_water(c) => {}
                    _ => break,
                }
                let out = lock(&self.core).keys.poll_dump(id);
                let Some(out) = out else { break };
                self.deliver_output(out);
            }
        }
    }

    /// Queues one engine output for its recipients and sends what the sockets take now.
    pub fn deliver_output(&mut self, out: Output) {
        let bytes: Rc<[u8]> = Rc::from(out.bytes);
        for id in &out.to {
            self.enqueue(*id, Rc::clone(&bytes));
        }
        for id in &out.to {
            self.flush(*id);
        }
    }

    fn enqueue(&mut self, id: ClientId, bytes: Rc<[u8]>) {
        let limits = self.limits;
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if c.queue.len() >= limits.queue_messages
            || c.queued_bytes + bytes.len() > limits.queue_bytes
        {
            c.dropped += 1;
            self.stats.dropped_queue_full += 1;
            return;
        }
        c.queued_bytes += bytes.len();
        c.queue.push_back(bytes);
    }

    fn flush(&mut self, id: ClientId) {
        let mut closed = false;
        if let Some(c) = self.clients.get_mut(&id) {
            while let Some(m) = c.queue.front() {
                match c.conn.send(m) {
                    Ok(Sent::Done) => {
                        c.queued_bytes -= m.len();
                        c.queue.pop_front();
                        self.stats.messages_out += 1;
                    }
                    Ok(Sent::WouldBlock) => break,
                    Ok(Sent::Closed) | Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        if closed {
            self.close(id);
        }
    }

    fn close(&mut self, id: ClientId) {
        if let Some(c) = self.clients.remove(&id) {
            if c.privileged {
                lock(&self.core).keys.close(id);
            }
            log::debug(format_args!(
                "pfkey: client {} (pid {}) disconnected; {} message(s) dropped for it",
                id.0, c.cred.pid, c.dropped
            ));
        }
    }

    /// Runs until `on_extra` (called when the extra descriptor is readable) says stop.
    pub fn run(
        &mut self,
        extra: &dyn std::os::fd::AsFd,
        mut on_extra: impl FnMut(&mut Self) -> Control,
    ) -> io::Result<()> {
        loop {
            if self.turn(Some(extra), Duration::from_secs(3600))? && on_extra(self) == Control::Stop
            {
                return Ok(());
            }
        }
    }
}

fn log_event(ev: &EngineEvent) {
    match ev {
        EngineEvent::LarvalExpired { key } => log::info(format_args!(
            "larval SA {:?} spi 0x{:08x} dst {} timed out",
            key.proto, key.spi, key.dst
        )),
        EngineEvent::Expired { key, kind, deleted } => log::info(format_args!(
            "SA {:?} spi 0x{:08x} dst {} reached its {:?} lifetime{}",
            key.proto,
            key.spi,
            key.dst,
            kind,
            if *deleted { "; deleted" } else { "" }
        )),
        other => log::info(format_args!("{other:?}")),
    }
}
