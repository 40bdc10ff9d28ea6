//! What per-socket policy needs to know about an application's socket: its family and
//! protocol, whether it listens, its local and peer addresses, and an explicit bind to an
//! ephemeral port (so that its port is known before the first packet leaves). All through
//! rustix's safe socket calls on a borrowed descriptor.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::BorrowedFd;

use rustix::net::{self, sockopt, AddressFamily, SocketAddrAny, SocketType};

/// Family, type and protocol of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockKind {
    /// `AF_INET6` (else `AF_INET`).
    pub v6: bool,
    /// IP protocol number (TCP 6, UDP 17, SCTP 132, or the raw protocol).
    pub proto: u8,
}

fn errno(e: rustix::io::Errno) -> io::Error {
    e.into()
}

/// The family and protocol of an IPv4 or IPv6 socket; `EAFNOSUPPORT` for other families
/// (`ENOTSOCK` for a descriptor that is no socket).
pub fn kind(fd: BorrowedFd<'_>) -> io::Result<SockKind> {
    let dom = sockopt::socket_domain(fd).map_err(errno)?;
    let v6 = if dom == AddressFamily::INET6 {
        true
    } else if dom == AddressFamily::INET {
        false
    } else {
        return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
    };
    let proto = match sockopt::socket_protocol(fd).map_err(errno)? {
        Some(p) => u8::try_from(p.as_raw().get()).unwrap_or(0),
        None => {
            // Protocol 0 means the type's default protocol.
            let ty = sockopt::socket_type(fd).map_err(errno)?;
            if ty == SocketType::STREAM {
                6
            } else if ty == SocketType::DGRAM {
                17
            } else {
                0
            }
        }
    };
    Ok(SockKind { v6, proto })
}

fn inet(a: SocketAddrAny) -> Option<SocketAddr> {
    SocketAddr::try_from(a).ok()
}

/// The socket's local address (`None` for an unbound socket: port 0).
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<Option<SocketAddr>> {
    let a = inet(net::getsockname(fd).map_err(errno)?);
    Ok(a.filter(|a| a.port() != 0))
}

/// The socket's peer (`None` when not connected).
pub fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<Option<SocketAddr>> {
    match net::getpeername(fd) {
        Ok(a) => Ok(a.and_then(inet)),
        Err(rustix::io::Errno::NOTCONN) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

/// Whether the socket listens (`SO_ACCEPTCONN`).
pub fn is_listening(fd: BorrowedFd<'_>) -> bool {
    sockopt::socket_acceptconn(fd).unwrap_or(false)
}

/// Binds the socket to the wildcard address and an ephemeral port of its family.
pub fn bind_ephemeral(fd: BorrowedFd<'_>, v6: bool) -> io::Result<()> {
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    net::bind(fd, &SocketAddr::new(ip, 0)).map_err(errno)
}

/// The socket's identity (its inode number in sockfs): the same for every descriptor of one
/// socket, whichever process holds it.
pub fn ident(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd).map_err(errno)?.st_ino)
}
