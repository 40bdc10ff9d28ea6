//! Per-socket IPsec policy for applications: the Solaris `IP_SEC_OPT` / `IPV6_SEC_OPT`
//! socket options (ipsec(4P)), which Linux lacks, provided in user space by ipsecd.
//!
//! ```text
//!  Rust program ──set_socket_policy(&sock, &req)──┐
//!  C program ──setsockopt(IP_SEC_OPT)──libipsec_sock.so (LD_PRELOAD)──┤ one SOCK_SEQPACKET
//!                                                  │ connection per policied socket
//!                                                  ▼
//!  ipsecd per-socket policy service ──SO_PEERCRED privilege──> Spd::set_socket_policy
//!      ──addresses as they become known──> routing rule (ipproto, sport) into the TUN device,
//!        nftables cleartext enforcement, the data plane's socket lookup, latch on connect
//!  connection closed (socket closed, process gone) ──> policy, rules and elements removed
//! ```
//!
//! Each policied socket has its own connection to ipsecd ([`Tracked`]); the daemon ties the
//! socket's SPD entry to that connection, so the policy goes away when the connection does,
//! whichever way the program ends. Requests are answered before the call returns, so the
//! kernel routes the socket's first packet (a TCP SYN too) according to its policy: a socket
//! about to `connect()` or send without a local port is first bound to an ephemeral one.
//!
//! Errors are Solaris': `EPERM` for a bypass request (or, with `persock-require-priv`, an
//! algorithm system policy does not use) from an unprivileged process, `EINVAL` for a bad
//! request, a listening TCP socket or a latched connection, `EPROTONOSUPPORT` when ipsecd
//! is not running.

pub mod proto;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

pub use ipsec_core::spd::socket::{IPSEC_PREF_NEVER, IPSEC_PREF_REQUIRED, IPSEC_PREF_UNIQUE};
pub use ipsec_core::spd::IpsecReq;
use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::sockinfo::{self, SockKind};
use proto::{Reply, Request, REQ_LEN};

/// `IP_SEC_OPT` (Solaris `<netinet/in.h>`: 0x22), level `IPPROTO_IP`.
pub const IP_SEC_OPT: i32 = 0x22;
/// `IPV6_SEC_OPT` (Solaris: 0x22), level `IPPROTO_IPV6`.
pub const IPV6_SEC_OPT: i32 = 0x22;
/// `sizeof (ipsec_req_t)`. Linux uses option 0x22 for `IP_MULTICAST_LOOP` (an `int` or a
/// byte) and `IPV6_IPSEC_POLICY` (a larger structure): an option of exactly this length is
/// the IPsec request.
pub const IPSEC_REQ_LEN: usize = REQ_LEN;

/// Where the service listens: `$IRONSWAN_SOCKPOLICY_SOCKET`, else [`proto::DEFAULT_SOCKET`].
pub fn service_path() -> PathBuf {
    std::env::var_os(proto::SOCKET_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(proto::DEFAULT_SOCKET))
}

fn os(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// One socket known to ipsecd: its connection to the service and what was told so far.
#[derive(Debug)]
pub struct Tracked {
    conn: Conn,
    kind: SockKind,
    req: Option<[u8; REQ_LEN]>,
    /// (local, peer, listening) as last synchronised.
    told: (Option<SocketAddr>, Option<SocketAddr>, bool),
}

impl Tracked {
    /// Registers socket `fd` with ipsecd. `EPROTONOSUPPORT` when ipsecd does not answer
    /// (Solaris: IPsec not loaded); `EAFNOSUPPORT` for a socket that is not IPv4 or IPv6.
    pub fn open(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let kind = sockinfo::kind(fd)?;
        let conn = Conn::connect(&service_path()).map_err(|_| os(libc_errno::EPROTONOSUPPORT))?;
        let mut t = Self {
            conn,
            kind,
            req: None,
            told: (None, None, false),
        };
        t.call(fd, &Request::Open)?;
        Ok(t)
    }

    /// The socket's family and protocol.
    pub fn kind(&self) -> SockKind {
        self.kind
    }

    /// The last request ipsecd accepted (`None`: none yet).
    pub fn request(&self) -> Option<[u8; REQ_LEN]> {
        self.req
    }

    /// One request, with the socket attached, and its answer.
    fn call(&mut self, fd: BorrowedFd<'_>, r: &Request) -> io::Result<Reply> {
        match self.conn.send_with_fd(r.encode().as_bytes(), fd)? {
            Sent::Done => {}
            Sent::WouldBlock | Sent::Closed => return Err(os(libc_errno::EPROTONOSUPPORT)),
        }
        let mut buf = [0u8; 512];
        let n = match self.conn.recv(&mut buf)? {
            Recv::Msg(n) => n,
            _ => return Err(os(libc_errno::EPROTONOSUPPORT)),
        };
        let text = std::str::from_utf8(buf.get(..n).unwrap_or_default())
            .map_err(|_| os(libc_errno::EPROTO))?;
        match Reply::parse(text).map_err(|_| os(libc_errno::EPROTO))? {
            Reply::Err { errno, .. } => Err(os(errno)),
            r => Ok(r),
        }
    }

    /// `setsockopt(IP_SEC_OPT)` with the raw `ipsec_req_t` bytes (ipsecd sees whether the
    /// socket listens, and where it is bound, from the socket itself).
    pub fn set(&mut self, fd: BorrowedFd<'_>, req: &[u8; REQ_LEN]) -> io::Result<()> {
        self.call(fd, &Request::Set(*req))?;
        self.req = Some(*req);
        self.told = Self::state(fd)?;
        Ok(())
    }

    /// `getsockopt(IP_SEC_OPT)`: the socket's policy (latched if connected), zeros if none.
    pub fn get(&mut self, fd: BorrowedFd<'_>) -> io::Result<[u8; REQ_LEN]> {
        match self.call(fd, &Request::Get)? {
            Reply::Req(b) => Ok(b),
            _ => Ok([0; REQ_LEN]),
        }
    }

    fn state(fd: BorrowedFd<'_>) -> io::Result<(Option<SocketAddr>, Option<SocketAddr>, bool)> {
        Ok((
            sockinfo::local_addr(fd)?,
            sockinfo::peer_addr(fd)?,
            sockinfo::is_listening(fd),
        ))
    }

    /// Tells ipsecd when the socket's addresses or listening state changed (after bind,
    /// connect, listen, accept, or an implicit bind by a send); a peer latches the policy.
    pub fn sync(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let now = Self::state(fd)?;
        if now != self.told {
            self.call(fd, &Request::Sync)?;
            self.told = now;
        }
        Ok(())
    }

    /// Before the socket's first packet: binds an unbound socket to an ephemeral port and
    /// tells ipsecd, so its routing rule is in place before anything leaves.
    pub fn before_send(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        if self.told.0.is_none() && sockinfo::local_addr(fd)?.is_none() {
            sockinfo::bind_ephemeral(fd, self.kind.v6)?;
        }
        self.sync(fd)
    }
}

/// The errno values used here (Linux numbering), without a libc dependency.
pub mod libc_errno {
    /// `EPERM`.
    pub const EPERM: i32 = 1;
    /// `EINVAL`.
    pub const EINVAL: i32 = 22;
    /// `EPROTO`.
    pub const EPROTO: i32 = 71;
    /// `EPROTONOSUPPORT`.
    pub const EPROTONOSUPPORT: i32 = 93;
}

/// A Rust socket's per-socket policy: keep it as long as the socket; dropping it (or the
/// process ending) removes the policy.
#[derive(Debug)]
pub struct SocketPolicy {
    t: Tracked,
}

/// `setsockopt(s, IPPROTO_IP, IP_SEC_OPT, &req, sizeof req)` for a Rust socket. Call it
/// before `connect()` for the policy to cover the connection, and call
/// [`SocketPolicy::update`] after binding or connecting the socket.
pub fn set_socket_policy(sock: &impl AsFd, req: &IpsecReq) -> io::Result<SocketPolicy> {
    let fd = sock.as_fd();
    let mut t = Tracked::open(fd)?;
    t.set(fd, &req.to_ne_bytes())?;
    Ok(SocketPolicy { t })
}

impl SocketPolicy {
    /// Changes the request (`EINVAL` once the socket is connected: the policy latched).
    pub fn set(&mut self, sock: &impl AsFd, req: &IpsecReq) -> io::Result<()> {
        self.t.set(sock.as_fd(), &req.to_ne_bytes())
    }

    /// `getsockopt(IP_SEC_OPT)`: the request in force (the latched one once connected).
    pub fn get(&mut self, sock: &impl AsFd) -> io::Result<IpsecReq> {
        let b = self.t.get(sock.as_fd())?;
        IpsecReq::from_ne_bytes(&b).map_err(|_| os(libc_errno::EPROTO))
    }

    /// Tells ipsecd the socket's current addresses (after `bind`, `connect`, or before the
    /// first send of an unbound socket, which it binds to an ephemeral port).
    pub fn update(&mut self, sock: &impl AsFd) -> io::Result<()> {
        self.t.before_send(sock.as_fd())
    }
}
