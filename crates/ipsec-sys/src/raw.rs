//! Raw IP sockets for ESP (50) and AH (51): receivers that hand ipsecd every ESP or AH
//! packet addressed to this host, and senders that emit complete IP packets built by the
//! engine (`IPPROTO_RAW`, which implies the header-included mode for IPv4 and IPv6).
//!
//! An IPv4 raw socket delivers the whole packet, header included. An IPv6 raw socket
//! delivers only what follows the IPv6 header (and any extension headers before the
//! socket's protocol); the receiver rebuilds a fixed IPv6 header from the ancillary data
//! (destination from `IPV6_PKTINFO`, traffic class, hop limit) and the source address, so
//! that the engine always sees a complete packet. Extension headers that preceded ESP/AH
//! are not available this way (rare on ESP traffic; AH over such packets fails its ICV).
//!
//! Senders carry a firewall mark (`SO_MARK`) so that policy routing keeps the daemon's own
//! packets out of the TUN device.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::cmsg::{self, Control};

/// What [`RawSocket::recv`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRecv {
    /// Bytes of the (complete) IP packet in the buffer.
    pub len: usize,
    /// The packet's source address.
    pub src: IpAddr,
}

/// Bytes the IPv6 receiver reserves in front of the payload for the rebuilt header.
pub const IPV6_HEADER: usize = 40;

/// A raw IP socket.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    v6: bool,
    proto: u8,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[allow(unsafe_code)]
fn new_socket(v6: bool, proto: u8) -> io::Result<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain system call with constant arguments; no pointers.
    let fd = cvt(unsafe {
        libc::socket(
            domain,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(proto),
        )
    })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[allow(unsafe_code)]
fn set_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` and its exact size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

impl RawSocket {
    /// A socket receiving every IPv4 (or IPv6) packet of protocol `proto` sent to this host.
    pub fn receiver(v6: bool, proto: u8) -> io::Result<Self> {
        let fd = new_socket(v6, proto)?;
        if v6 {
            set_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
            set_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1)?;
            set_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        }
        set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20)?;
        Ok(Self { fd, v6, proto })
    }

    /// A socket sending complete IPv4 (or IPv6) packets, marked with `mark` (0: no mark).
    pub fn sender(v6: bool, mark: u32) -> io::Result<Self> {
        let fd = new_socket(v6, libc::IPPROTO_RAW as u8)?;
        if !v6 {
            set_int(&fd, libc::IPPROTO_IP, libc::IP_HDRINCL, 1)?;
        }
        if mark != 0 {
            set_int(&fd, libc::SOL_SOCKET, libc::SO_MARK, mark as libc::c_int)?;
        }
        set_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 4 << 20)?;
        Ok(Self {
            fd,
            v6,
            proto: libc::IPPROTO_RAW as u8,
        })
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let mut fl = rustix::fs::fcntl_getfl(&self.fd)?;
        fl.set(rustix::fs::OFlags::NONBLOCK, on);
        Ok(rustix::fs::fcntl_setfl(&self.fd, fl)?)
    }

    /// Receives one packet into `buf` as a complete IP packet (for IPv6 the first
    /// [`IPV6_HEADER`] bytes are the rebuilt header). `WouldBlock` when non-blocking and
    /// nothing is queued. A packet larger than the buffer is reported as `InvalidData`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<RawRecv> {
        if self.v6 {
            self.recv6(buf)
        } else {
            self.recv4(buf)
        }
    }

    #[allow(unsafe_code)]
    fn recv4(&self, buf: &mut [u8]) -> io::Result<RawRecv> {
        let mut from = MaybeUninit::<libc::sockaddr_in>::zeroed();
        let mut flen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `buf` is valid for writes of its length; `from`/`flen` describe a
        // writable sockaddr_in of the given size.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                from.as_mut_ptr().cast(),
                &mut flen,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "packet larger than the buffer",
            ));
        }
        // SAFETY: recvfrom succeeded and initialised at most `flen` bytes of a zeroed
        // sockaddr_in, so every field is initialised.
        let from = unsafe { from.assume_init() };
        let src = IpAddr::V4(Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr)));
        Ok(RawRecv { len: n, src })
    }

    #[allow(unsafe_code)]
    fn recv6(&self, buf: &mut [u8]) -> io::Result<RawRecv> {
        let Some(payload) = buf.get_mut(IPV6_HEADER..) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer too small",
            ));
        };
        let mut from = MaybeUninit::<libc::sockaddr_in6>::zeroed();
        let mut control = Control::new();
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        // SAFETY: an all-zero msghdr is a valid value (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        msg.msg_name = from.as_mut_ptr().cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len();
        // SAFETY: `msg` points at the live iovec, sockaddr and control buffers above, with
        // their true sizes; they outlive the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n > payload.len() || msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "packet larger than the buffer",
            ));
        }
        // SAFETY: the sockaddr was zeroed and then (partly) written by the kernel.
        let from = unsafe { from.assume_init() };
        let src = Ipv6Addr::from(from.sin6_addr.s6_addr);
        let anc = parse_ipv6_control(control.0.get(..msg.msg_controllen).unwrap_or_default());
        let dst = anc.dst.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no IPV6_PKTINFO on a raw IPv6 packet",
            )
        })?;
        let plen = u16::try_from(n)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "jumbogram"))?;
        let tclass = anc.tclass.unwrap_or(0);
        let mut h = [0u8; IPV6_HEADER];
        h[0] = 0x60 | (tclass >> 4);
        h[1] = tclass << 4;
        h[4..6].copy_from_slice(&plen.to_be_bytes());
        h[6] = self.proto;
        h[7] = anc.hop_limit.unwrap_or(64);
        h[8..24].copy_from_slice(&src.octets());
        h[24..40].copy_from_slice(&dst.octets());
        if let Some(d) = buf.get_mut(..IPV6_HEADER) {
            d.copy_from_slice(&h);
        }
        Ok(RawRecv {
            len: IPV6_HEADER + n,
            src: IpAddr::V6(src),
        })
    }

    /// Sends one complete IP packet (its header names the destination).
    #[allow(unsafe_code)]
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let (sa, alen) = cmsg::sockaddr_of(self.packet_dst(packet)?);
        // SAFETY: `packet` is readable for its length and `sa` is a live sockaddr of the
        // length passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&sa as *const libc::sockaddr_in6).cast(),
                alen as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Most packets [`RawSocket::recv_batch`] takes from one `recvmmsg`.
pub const RECV_BATCH: usize = 64;

/// Most packets [`RawSocket::send_batch`] passes to one `sendmmsg`.
pub const SEND_BATCH: usize = 64;

impl RawSocket {
    /// Sends complete IP packets (all of this socket's family) with one `sendmmsg` call
    /// per [`SEND_BATCH`] packets. Returns how many were sent; a packet the kernel refuses
    /// is skipped and the rest still go out. If none could be sent, the first error.
    #[allow(unsafe_code)]
    pub fn send_batch(&self, packets: &[&[u8]]) -> io::Result<usize> {
        let mut sent = 0;
        let mut first_err = None;
        for chunk in packets.chunks(SEND_BATCH) {
            // SAFETY: all-zero sockaddr_in6, iovec and mmsghdr values are valid (null
            // pointers, zero lengths); every pointer is set below before use.
            let mut addrs: [libc::sockaddr_in6; SEND_BATCH] =
                unsafe { MaybeUninit::zeroed().assume_init() };
            // SAFETY: as above.
            let mut iovs: [libc::iovec; SEND_BATCH] =
                unsafe { MaybeUninit::zeroed().assume_init() };
            // SAFETY: as above.
            let mut msgs: [libc::mmsghdr; SEND_BATCH] =
                unsafe { MaybeUninit::zeroed().assume_init() };
            let mut n = 0usize;
            for (i, p) in chunk.iter().enumerate() {
                let (Some(a), Some(iov), Some(m)) =
                    (addrs.get_mut(i), iovs.get_mut(i), msgs.get_mut(i))
                else {
                    break;
                };
                let (sa, alen) = cmsg::sockaddr_of(self.packet_dst(p)?);
                *a = sa;
                iov.iov_base = p.as_ptr() as *mut libc::c_void;
                iov.iov_len = p.len();
                m.msg_hdr.msg_name = (a as *mut libc::sockaddr_in6).cast();
                m.msg_hdr.msg_namelen = alen as libc::socklen_t;
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
                n += 1;
            }
            let mut off = 0usize;
            while off < n {
                let rest = msgs.get_mut(off..n).unwrap_or_default();
                // SAFETY: `rest` holds `rest.len()` initialised mmsghdrs whose names and
                // iovecs point into `addrs`, `iovs` and the caller's packets, all alive
                // for the call; the kernel only reads them (and writes msg_len).
                let r = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        rest.as_mut_ptr(),
                        rest.len() as libc::c_uint,
                        0,
                    )
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    // The packet at `off` was refused: skip it and go on with the rest.
                    first_err.get_or_insert(e);
                    off += 1;
                    continue;
                }
                if r == 0 {
                    break;
                }
                off += r as usize;
                sent += r as usize;
            }
        }
        match first_err {
            Some(e) if sent == 0 => Err(e),
            _ => Ok(sent),
        }
    }
}

impl RawSocket {
    /// Receives up to `bufs.len()` (at most [`RECV_BATCH`]) packets with one `recvmmsg`
    /// (IPv4) or one `recvmsg` each (IPv6, whose header is rebuilt per packet); `out[i]`
    /// describes `bufs[i]`. Returns how many arrived (0 when none are queued on a
    /// non-blocking socket). A packet larger than its buffer is dropped and not counted.
    #[allow(unsafe_code)]
    pub fn recv_batch(&self, bufs: &mut [&mut [u8]], out: &mut [RawRecv]) -> io::Result<usize> {
        let want = bufs.len().min(out.len()).min(RECV_BATCH);
        if self.v6 {
            let mut n = 0;
            while n < want {
                let (Some(b), Some(o)) = (bufs.get_mut(n), out.get_mut(n)) else {
                    break;
                };
                match self.recv6(b) {
                    Ok(r) => {
                        *o = r;
                        n += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                    Err(e) => return if n > 0 { Ok(n) } else { Err(e) },
                }
            }
            return Ok(n);
        }
        // SAFETY: all-zero sockaddr_in, iovec and mmsghdr values are valid; the pointers
        // are set below before the call.
        let mut addrs: [libc::sockaddr_in; RECV_BATCH] =
            unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        for i in 0..want {
            let (Some(b), Some(a), Some(iov), Some(m)) = (
                bufs.get_mut(i),
                addrs.get_mut(i),
                iovs.get_mut(i),
                msgs.get_mut(i),
            ) else {
                break;
            };
            iov.iov_base = b.as_mut_ptr().cast();
            iov.iov_len = b.len();
            m.msg_hdr.msg_name = (a as *mut libc::sockaddr_in).cast();
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        let r = loop {
            // SAFETY: the first `want` mmsghdrs point at live sockaddrs, iovecs and the
            // caller's buffers (with their true lengths), all alive for the call.
            let r = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    want as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(0),
                    _ => return Err(e),
                }
            }
            break r as usize;
        };
        let mut n = 0;
        for i in 0..r {
            let (Some(m), Some(a)) = (msgs.get(i), addrs.get(i)) else {
                break;
            };
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            let src = IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)));
            let len = m.msg_len as usize;
            if n != i {
                // Keep the packets contiguous in `bufs` after a dropped one.
                let (lo, hi) = bufs.split_at_mut(i);
                if let (Some(to), Some(from)) = (lo.get_mut(n), hi.first()) {
                    if let (Some(d), Some(f)) = (to.get_mut(..len), from.get(..len)) {
                        d.copy_from_slice(f);
                    }
                }
            }
            if let Some(o) = out.get_mut(n) {
                *o = RawRecv { len, src };
                n += 1;
            }
        }
        Ok(n)
    }
}

impl RawSocket {
    /// The destination of a complete IP packet of this socket's family (port 0).
    fn packet_dst(&self, packet: &[u8]) -> io::Result<std::net::SocketAddr> {
        let ip = if self.v6 {
            packet
                .get(24..40)
                .and_then(|d| <[u8; 16]>::try_from(d).ok())
                .map(|d| IpAddr::V6(Ipv6Addr::from(d)))
        } else {
            packet
                .get(16..20)
                .and_then(|d| <[u8; 4]>::try_from(d).ok())
                .map(|d| IpAddr::V4(Ipv4Addr::from(d)))
        };
        ip.map(|ip| std::net::SocketAddr::new(ip, 0))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "short IP packet"))
    }
}

impl AsFd for RawSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Ipv6Ancillary {
    dst: Option<Ipv6Addr>,
    tclass: Option<u8>,
    hop_limit: Option<u8>,
}

/// The destination, traffic class and hop limit from the control messages of a recvmsg.
fn parse_ipv6_control(c: &[u8]) -> Ipv6Ancillary {
    let mut out = Ipv6Ancillary::default();
    for (level, kind, data) in cmsg::walk(c) {
        if level != libc::IPPROTO_IPV6 {
            continue;
        }
        let byte = || cmsg::int(data).and_then(|v| u8::try_from(v).ok());
        match kind {
            libc::IPV6_PKTINFO => {
                out.dst = data
                    .get(..16)
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .map(Ipv6Addr::from);
            }
            libc::IPV6_TCLASS => out.tclass = byte(),
            libc::IPV6_HOPLIMIT => out.hop_limit = byte(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let hdr = size_of::<usize>() + 8;
        let len = hdr + data.len();
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        while v.len() % size_of::<usize>() != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn ancillary_data_is_decoded() {
        let mut info = [0u8; 20];
        info[..16].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        let mut c = cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info);
        c.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            &0xb8i32.to_ne_bytes(),
        ));
        c.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &63i32.to_ne_bytes(),
        ));
        let a = parse_ipv6_control(&c);
        assert_eq!(a.dst, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(a.tclass, Some(0xb8));
        assert_eq!(a.hop_limit, Some(63));
        // Truncated or garbage control data decodes to nothing rather than failing.
        assert_eq!(parse_ipv6_control(&c[..7]), Ipv6Ancillary::default());
        assert_eq!(parse_ipv6_control(&[0xff; 40]), Ipv6Ancillary::default());
    }
}
