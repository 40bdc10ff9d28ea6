//! UDP sockets that report each datagram's destination address (`IP_PKTINFO`,
//! `IPV6_RECVPKTINFO`): the NAT-T socket on port 4500 receives ESP-in-UDP (RFC 3948) for
//! every local address, and the data plane rebuilds the IP and UDP headers the engine
//! expects from the source, the destination and the ports.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::cmsg::{self, Control};

/// One received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRecv {
    /// Payload bytes in the buffer.
    pub len: usize,
    /// The sender.
    pub src: SocketAddr,
    /// The local address it was sent to.
    pub dst: IpAddr,
    /// With receive offload on ([`PktinfoSocket::set_gro`]): the kernel merged several
    /// datagrams of this size (the last may be shorter) into the buffer.
    pub seg: Option<usize>,
}

/// `SOL_UDP`.
const SOL_UDP: libc::c_int = 17;
/// `UDP_SEGMENT`: send one buffer as datagrams of this size (UDP GSO).
const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO`: receive runs of datagrams merged, with their size in a control message.
const UDP_GRO: libc::c_int = 104;
/// Most datagrams one UDP GSO send may make (`UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;

/// A UDP socket with destination-address reporting.
#[derive(Debug)]
pub struct PktinfoSocket {
    sock: UdpSocket,
    v6: bool,
}

#[allow(unsafe_code)]
fn set_int(
    sock: &UdpSocket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` and its exact size is passed.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl PktinfoSocket {
    /// Binds `addr` (an IPv6 socket is IPv6-only) and marks outgoing datagrams with `mark`
    /// (0: none). Non-blocking.
    pub fn bind(addr: SocketAddr, mark: u32) -> io::Result<Self> {
        let v6 = addr.is_ipv6();
        let sock = if v6 {
            // std cannot set IPV6_V6ONLY before binding (a dual-stack socket would take the
            // IPv4 port too), so the IPv6 socket is made by hand.
            bind_v6only(addr)?
        } else {
            UdpSocket::bind(addr)?
        };
        if v6 {
            set_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        } else {
            set_int(&sock, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        }
        if mark != 0 {
            set_int(&sock, libc::SOL_SOCKET, libc::SO_MARK, mark as libc::c_int)?;
        }
        set_int(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20)?;
        sock.set_nonblocking(true)?;
        Ok(Self { sock, v6 })
    }

    /// Turns UDP receive offload on: runs of datagrams from one sender arrive merged,
    /// reported with their size in [`UdpRecv::seg`].
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        set_int(&self.sock, SOL_UDP, UDP_GRO, libc::c_int::from(on))
    }

    /// Sends `payload` as datagrams of `seg` bytes each (the last may be shorter) with one
    /// system call and one pass through the stack (UDP GSO, at most [`MAX_SEGMENTS`]).
    #[allow(unsafe_code)]
    pub fn send_segments(
        &self,
        payload: &[u8],
        seg: u16,
        tos: u8,
        dst: SocketAddr,
    ) -> io::Result<()> {
        // The segment size, then the traffic class / TOS of every datagram (the outer DSCP
        // and ECN of RFC 6040), as an int.
        let (level, kind) = if dst.is_ipv6() {
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
        } else {
            (libc::IPPROTO_IP, libc::IP_TOS)
        };
        let tos = libc::c_int::from(tos).to_ne_bytes();
        self.send_msg(
            payload,
            dst,
            &[
                (SOL_UDP, UDP_SEGMENT, &seg.to_ne_bytes()),
                (level, kind, &tos),
            ],
        )
    }

    /// Sends `payload` to `dst` from local address `src` (`IP_PKTINFO` /
    /// `IPV6_PKTINFO`): on a socket bound to the wildcard address, the reply leaves from
    /// the address the peer sent to rather than the one the route prefers. `src` must be
    /// of `dst`'s family and assigned to this host.
    #[allow(unsafe_code)]
    pub fn send_from(&self, payload: &[u8], src: IpAddr, dst: SocketAddr) -> io::Result<()> {
        let mut data = [0u8; 20];
        let (level, kind, dlen) = match (src, dst) {
            (IpAddr::V4(s), SocketAddr::V4(_)) => {
                // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
                data[4..8].copy_from_slice(&s.octets());
                (libc::IPPROTO_IP, libc::IP_PKTINFO, 12)
            }
            (IpAddr::V6(s), SocketAddr::V6(_)) => {
                // struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
                data[..16].copy_from_slice(&s.octets());
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, 20)
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "source and destination of different address families",
                ))
            }
        };
        self.send_msg(payload, dst, &[(level, kind, &data[..dlen])])
    }

    /// One `sendmsg` of `payload` to `dst` with control messages `cmsgs`.
    #[allow(unsafe_code)]
    fn send_msg(
        &self,
        payload: &[u8],
        dst: SocketAddr,
        cmsgs: &[(i32, i32, &[u8])],
    ) -> io::Result<()> {
        let (mut sa, alen) = cmsg::sockaddr_of(dst);
        let mut control = Control::new();
        let space = cmsg::encode(&mut control.0, cmsgs)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "control data too long"))?;
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        // SAFETY: an all-zero msghdr is a valid value.
        let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = alen as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = space;
        loop {
            // SAFETY: `msg` points at the live sockaddr, iovec (over the caller's payload,
            // only read) and control buffer, with their true sizes.
            let r = unsafe { libc::sendmsg(self.sock.as_raw_fd(), &msg, 0) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// A second handle on the same socket (`dup`), e.g. for another thread that sends
    /// from the same port; both see the same options and receive queue.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            sock: self.sock.try_clone()?,
            v6: self.v6,
        })
    }

    /// Whether this is an IPv6 socket (no system call).
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sends `payload` to `dst`.
    pub fn send_to(&self, payload: &[u8], dst: SocketAddr) -> io::Result<()> {
        self.sock.send_to(payload, dst).map(|_| ())
    }

    /// Receives one datagram into `buf`. `WouldBlock` when nothing is queued; a datagram
    /// larger than the buffer is `InvalidData`.
    #[allow(unsafe_code)]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<UdpRecv> {
        let mut from = MaybeUninit::<libc::sockaddr_in6>::zeroed();
        let mut control = Control::new();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is a valid value (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        msg.msg_name = from.as_mut_ptr().cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len();
        // SAFETY: `msg` points at the live iovec, sockaddr (large enough for either family)
        // and control buffers above, with their true sizes; they outlive the call.
        let n = unsafe { libc::recvmsg(self.sock.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n > buf.len() || msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "datagram larger than the buffer",
            ));
        }
        // SAFETY: zeroed, then written by the kernel: every field is initialised.
        let from6 = unsafe { from.assume_init() };
        let src = if self.v6 {
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(from6.sin6_addr.s6_addr)),
                u16::from_be(from6.sin6_port),
            )
        } else {
            // The kernel wrote a sockaddr_in at the start of the buffer.
            let b = sockaddr_bytes(&from6);
            let port = u16::from_be_bytes([b[2], b[3]]);
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])), port)
        };
        let cmsgs = control.0.get(..msg.msg_controllen).unwrap_or_default();
        let dst = parse_pktinfo(cmsgs, self.v6)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no packet info"))?;
        let seg = parse_gro(cmsgs);
        Ok(UdpRecv {
            len: n,
            src,
            dst,
            seg,
        })
    }
}

fn sockaddr_bytes(sa: &libc::sockaddr_in6) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0..2].copy_from_slice(&sa.sin6_family.to_ne_bytes());
    b[2..4].copy_from_slice(&sa.sin6_port.to_ne_bytes());
    b[4..8].copy_from_slice(&sa.sin6_flowinfo.to_ne_bytes());
    b
}

#[allow(unsafe_code)]
fn bind_v6only(addr: SocketAddr) -> io::Result<UdpSocket> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain system call with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    set_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    let SocketAddr::V6(a) = addr else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not IPv6"));
    };
    // SAFETY: an all-zero sockaddr_in6 is valid.
    let mut sa: libc::sockaddr_in6 = unsafe { MaybeUninit::zeroed().assume_init() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = a.port().to_be();
    sa.sin6_addr.s6_addr = a.ip().octets();
    sa.sin6_scope_id = a.scope_id();
    // SAFETY: `sa` is a live sockaddr_in6 of the size passed.
    let r = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&sa as *const libc::sockaddr_in6).cast(),
            size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

/// The destination address from `IP_PKTINFO` (`struct in_pktinfo`: ifindex, spec_dst,
/// addr) or `IPV6_PKTINFO` (`struct in6_pktinfo`: addr, ifindex).
fn parse_pktinfo(c: &[u8], v6: bool) -> Option<IpAddr> {
    cmsg::walk(c).find_map(|(level, kind, data)| {
        if v6 && level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO {
            let a: [u8; 16] = data.get(..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        } else if !v6 && level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO {
            let a: [u8; 4] = data.get(8..12)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(a)))
        } else {
            None
        }
    })
}

/// The merged datagrams' size from a `UDP_GRO` control message.
fn parse_gro(c: &[u8]) -> Option<usize> {
    cmsg::walk(c)
        .find(|(level, kind, _)| *level == SOL_UDP && *kind == UDP_GRO)
        .and_then(|(_, _, data)| cmsg::int(data))
        .and_then(|v| usize::try_from(v).ok())
        .filter(|v| *v > 0)
}

impl AsFd for PktinfoSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_from_picks_the_source_address() {
        let s = PktinfoSocket::bind("0.0.0.0:0".parse().unwrap(), 0).unwrap();
        let port = s.local_addr().unwrap().port();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        for src in ["127.0.0.1", "127.0.0.2"] {
            let src: IpAddr = src.parse().unwrap();
            s.send_from(b"hi", src, peer.local_addr().unwrap()).unwrap();
            let mut buf = [0u8; 8];
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hi");
            assert_eq!(from, SocketAddr::new(src, port));
        }
        let e = s
            .send_from(b"x", "::1".parse().unwrap(), peer.local_addr().unwrap())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        if let Ok(s6) = PktinfoSocket::bind("[::]:0".parse().unwrap(), 0) {
            if let Ok(p6) = UdpSocket::bind("[::1]:0") {
                s6.send_from(b"v6", Ipv6Addr::LOCALHOST.into(), p6.local_addr().unwrap())
                    .unwrap();
                let mut buf = [0u8; 8];
                let (n, from) = p6.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], b"v6");
                assert_eq!(from.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
        }
    }

    #[test]
    fn a_clone_sends_from_the_same_port() {
        let s = PktinfoSocket::bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let c = s.try_clone().unwrap();
        assert_eq!(c.local_addr().unwrap(), s.local_addr().unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"from the clone", peer.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"from the clone");
        assert_eq!(from, s.local_addr().unwrap());
    }

    #[test]
    fn destination_and_source_are_reported_over_loopback() {
        let s = PktinfoSocket::bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let port = s.local_addr().unwrap().port();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"hello", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        let r = loop {
            match s.recv(&mut buf) {
                Ok(r) => break r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..r.len], b"hello");
        assert_eq!(r.src, c.local_addr().unwrap());
        assert_eq!(r.dst, IpAddr::V4(Ipv4Addr::LOCALHOST));

        // UDP GSO out, GRO in: one send of 3 x 100 + 40 bytes comes back as four datagrams
        // (or merged, with their size reported).
        s.set_gro(true).unwrap();
        let tx = PktinfoSocket::bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let payload: Vec<u8> = (0..340u32).map(|i| i as u8).collect();
        tx.send_segments(&payload, 100, 0, s.local_addr().unwrap())
            .unwrap();
        let mut got = Vec::new();
        let mut big = vec![0u8; 65536];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < payload.len() && std::time::Instant::now() < deadline {
            match s.recv(&mut big) {
                Ok(r) => {
                    if let Some(seg) = r.seg {
                        assert_eq!(seg, 100);
                    } else {
                        assert!(r.len == 100 || r.len == 40, "{}", r.len);
                    }
                    got.extend_from_slice(&big[..r.len]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, payload);

        if let Ok(s6) = PktinfoSocket::bind("[::1]:0".parse().unwrap(), 0) {
            let port = s6.local_addr().unwrap().port();
            let c6 = UdpSocket::bind("[::1]:0").unwrap();
            c6.send_to(b"v6", ("::1", port)).unwrap();
            let r = loop {
                match s6.recv(&mut buf) {
                    Ok(r) => break r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(2))
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(&buf[..r.len], b"v6");
            assert_eq!(r.src, c6.local_addr().unwrap());
            assert_eq!(r.dst, IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
    }
}
