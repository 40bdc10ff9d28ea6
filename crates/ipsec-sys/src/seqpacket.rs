//! Unix `SOCK_SEQPACKET` sockets: the local transport of PF_KEY (one message per packet,
//! message boundaries kept, connection-oriented so the daemon knows each client and its
//! credentials).

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::net::{
    self, AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// Linux `CAP_NET_ADMIN`.
pub const CAP_NET_ADMIN: u32 = 12;

/// Who is at the other end of a connection (`SO_PEERCRED`, taken when it connected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

impl PeerCred {
    /// Whether the peer may change IPsec state: root, or a process whose effective
    /// capabilities include `CAP_NET_ADMIN` (the Linux form of Solaris'
    /// `PRIV_SYS_IP_CONFIG`). The capability set is read from `/proc/<pid>/status` right
    /// after the connection is accepted; a process that cannot be read is unprivileged.
    pub fn is_privileged(&self) -> bool {
        self.uid == 0 || has_capability(self.pid, CAP_NET_ADMIN)
    }
}

/// Whether process `pid` has capability `cap` in its effective set.
pub fn has_capability(pid: i32, cap: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|mask| cap < 64 && mask & (1u64 << cap) != 0)
}

fn errno(e: rustix::io::Errno) -> io::Error {
    e.into()
}

/// A listening `SOCK_SEQPACKET` socket bound to a path. The path is removed when the
/// listener is dropped.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

impl Listener {
    /// Binds and listens at `path` with file mode `mode` (the PF_KEY socket is 0666: anyone
    /// may connect, privilege is checked per message from the peer's credentials). A stale
    /// socket file nobody listens on is replaced; a live one is `AddrInUse`. The socket is
    /// non-blocking.
    pub fn bind(path: &Path, mode: u32) -> io::Result<Self> {
        if path.exists() {
            if Conn::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another daemon is listening there", path.display()),
                ));
            }
            fs::remove_file(path)?;
        }
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                fs::create_dir_all(dir)?;
            }
        }
        let fd = net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .map_err(errno)?;
        let addr = SocketAddrUnix::new(path).map_err(errno)?;
        net::bind(&fd, &addr).map_err(errno)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        net::listen(&fd, 128).map_err(errno)?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Accepts one pending connection (non-blocking), with its peer's credentials.
    /// `Ok(None)`: nobody is waiting.
    pub fn accept(&self) -> io::Result<Option<(Conn, PeerCred)>> {
        match net::accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(fd) => {
                let c = net::sockopt::socket_peercred(&fd).map_err(errno)?;
                let cred = PeerCred {
                    pid: c.pid.as_raw_pid(),
                    uid: c.uid.as_raw(),
                    gid: c.gid.as_raw(),
                };
                Ok(Some((Conn { fd }, cred)))
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => Ok(None),
            Err(rustix::io::Errno::CONNABORTED) => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }

    /// The bound path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What [`Conn::recv`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// A message of this many bytes is in the buffer.
    Msg(usize),
    /// A message larger than the buffer arrived (its real size); it was discarded.
    Truncated(usize),
    /// Nothing to read now (non-blocking socket).
    WouldBlock,
    /// The peer closed the connection.
    Closed,
}

/// What [`Conn::send`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The whole message went out.
    Done,
    /// The socket buffer is full (non-blocking socket); nothing was sent.
    WouldBlock,
    /// The peer is gone.
    Closed,
}

/// One `SOCK_SEQPACKET` connection.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
}

impl Conn {
    /// Connects to the listener at `path` (blocking socket).
    pub fn connect(path: &Path) -> io::Result<Self> {
        let fd = net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(errno)?;
        let addr = SocketAddrUnix::new(path).map_err(errno)?;
        net::connect(&fd, &addr).map_err(errno)?;
        Ok(Self { fd })
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let mut fl = rustix::fs::fcntl_getfl(&self.fd).map_err(errno)?;
        fl.set(rustix::fs::OFlags::NONBLOCK, on);
        rustix::fs::fcntl_setfl(&self.fd, fl).map_err(errno)
    }

    /// Sets the send buffer size (`SO_SNDBUF`), which bounds the largest message.
    pub fn set_send_buffer(&self, bytes: usize) -> io::Result<()> {
        net::sockopt::set_socket_send_buffer_size(&self.fd, bytes).map_err(errno)
    }

    /// Sets the receive buffer size (`SO_RCVBUF`).
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<()> {
        net::sockopt::set_socket_recv_buffer_size(&self.fd, bytes).map_err(errno)
    }

    /// Sends one message.
    pub fn send(&self, msg: &[u8]) -> io::Result<Sent> {
        loop {
            return match net::send(&self.fd, msg, SendFlags::NOSIGNAL) {
                Ok(_) => Ok(Sent::Done),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => Ok(Sent::WouldBlock),
                Err(rustix::io::Errno::PIPE)
                | Err(rustix::io::Errno::CONNRESET)
                | Err(rustix::io::Errno::NOTCONN) => Ok(Sent::Closed),
                Err(e) => Err(errno(e)),
            };
        }
    }

    /// Sends one message with a descriptor attached (`SCM_RIGHTS`): the receiver gets its
    /// own copy of `fd`.
    pub fn send_with_fd(&self, msg: &[u8], fd: BorrowedFd<'_>) -> io::Result<Sent> {
        let fds = [fd];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = net::SendAncillaryBuffer::new(&mut space);
        if !control.push(net::SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        loop {
            let iov = [std::io::IoSlice::new(msg)];
            return match net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL) {
                Ok(_) => Ok(Sent::Done),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => Ok(Sent::WouldBlock),
                Err(rustix::io::Errno::PIPE)
                | Err(rustix::io::Errno::CONNRESET)
                | Err(rustix::io::Errno::NOTCONN) => Ok(Sent::Closed),
                Err(e) => Err(errno(e)),
            };
        }
    }

    /// Receives one message into `buf`, with the first descriptor attached to it if any
    /// (received close-on-exec; further descriptors are closed).
    pub fn recv_with_fd(&self, buf: &mut [u8]) -> io::Result<(Recv, Option<OwnedFd>)> {
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        loop {
            let mut control = net::RecvAncillaryBuffer::new(&mut space);
            let mut iov = [std::io::IoSliceMut::new(&mut *buf)];
            let r = net::recvmsg(
                &self.fd,
                &mut iov,
                &mut control,
                RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC,
            );
            let mut fd = None;
            for m in control.drain() {
                if let net::RecvAncillaryMessage::ScmRights(fds) = m {
                    for f in fds {
                        if fd.is_none() {
                            fd = Some(f);
                        }
                    }
                }
            }
            let len = buf.len();
            return match r {
                Ok(m) if m.bytes == 0 => Ok((Recv::Closed, fd)),
                Ok(m) if m.bytes > len => Ok((Recv::Truncated(m.bytes), fd)),
                Ok(m) => Ok((Recv::Msg(m.bytes), fd)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => Ok((Recv::WouldBlock, None)),
                Err(rustix::io::Errno::CONNRESET) => Ok((Recv::Closed, None)),
                Err(e) => Err(errno(e)),
            };
        }
    }

    /// Receives one message into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Recv> {
        loop {
            return match net::recv(&self.fd, &mut *buf, RecvFlags::TRUNC) {
                Ok((_, 0)) => Ok(Recv::Closed),
                Ok((_, n)) if n > buf.len() => Ok(Recv::Truncated(n)),
                Ok((_, n)) => Ok(Recv::Msg(n)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => Ok(Recv::WouldBlock),
                Err(rustix::io::Errno::CONNRESET) => Ok(Recv::Closed),
                Err(e) => Err(errno(e)),
            };
        }
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_boundaries_and_credentials_are_ours() {
        let dir = std::env::temp_dir().join(format!("ipsec-sys-test-{}", std::process::id()));
        let path = dir.join("s");
        let l = Listener::bind(&path, 0o666).unwrap();
        let c = Conn::connect(&path).unwrap();
        let (s, cred) = loop {
            if let Some(x) = l.accept().unwrap() {
                break x;
            }
        };
        assert_eq!(cred.pid, std::process::id() as i32);
        assert_eq!(cred.uid, crate::geteuid());
        c.send(b"hello").unwrap();
        c.send(b"world!!").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(s.recv(&mut buf).unwrap(), Recv::Msg(5));
        assert_eq!(&buf[..5], b"hello");
        let mut small = [0u8; 4];
        assert_eq!(s.recv(&mut small).unwrap(), Recv::Truncated(7));
        assert_eq!(s.recv(&mut buf).unwrap(), Recv::WouldBlock);
        // A second listener on a live path is refused; after drop the path is gone.
        assert_eq!(
            Listener::bind(&path, 0o666).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(c);
        assert_eq!(s.recv(&mut buf).unwrap(), Recv::Closed);
        drop(l);
        assert!(!path.exists());
        let _ = fs::remove_dir(&dir);
    }
}
