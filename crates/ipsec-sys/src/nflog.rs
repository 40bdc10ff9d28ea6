//! NFLOG (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_ULOG`): the packets an nftables rule
//! hands to `log group G` arrive here, with the rule's prefix.
//!
//! ```text
//!  NflogSocket::bind(G, range)  ── NFULNL_MSG_CONFIG: NFULA_CFG_CMD BIND (res_id = G),
//!                                   NFULA_CFG_MODE COPY_PACKET range, NFULA_CFG_QTHRESH 1
//!  NflogSocket::recv(f)         ── each NFULNL_MSG_PACKET: NFULA_PACKET_HDR (hw protocol, hook),
//!                                   NFULA_PREFIX, NFULA_PAYLOAD, NFULA_IFINDEX_INDEV/OUTDEV, NFULA_MARK
//! ```
//!
//! Messages are `nlmsghdr` + `nfgenmsg` (family, version, resource id in network order) +
//! `nlattr`s; the attribute payloads of nfnetlink_log are in network byte order. Built on
//! the same hand-written netlink encoding as [`crate::netlink`], over rustix's safe socket
//! calls (no `unsafe`). A group can be bound by one socket per network namespace (`EBUSY`
//! otherwise). The kernel needs `nfnetlink_log` (built in or loaded).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{self as rnet, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::netlink::{i32_at, malformed, next_msg, retry_eintr, Attrs, Msg};

/// Numbers from `<linux/netfilter/nfnetlink.h>` and `<linux/netfilter/nfnetlink_log.h>`.
mod c {
    pub(super) const NFNL_SUBSYS_ULOG: u16 = 4;
    pub(super) const NFULNL_MSG_PACKET: u16 = 0;
    pub(super) const NFULNL_MSG_CONFIG: u16 = 1;
    pub(super) const NLM_F_REQUEST: u16 = 0x1;
    pub(super) const NLM_F_ACK: u16 = 0x4;
    pub(super) const NLMSG_ERROR: u16 = 2;

    pub(super) const NFULA_CFG_CMD: u16 = 1;
    pub(super) const NFULA_CFG_MODE: u16 = 2;
    pub(super) const NFULA_CFG_QTHRESH: u16 = 5;
    pub(super) const NFULNL_CFG_CMD_BIND: u8 = 1;
    pub(super) const NFULNL_COPY_PACKET: u8 = 2;

    pub(super) const NFULA_PACKET_HDR: u16 = 1;
    pub(super) const NFULA_MARK: u16 = 2;
    pub(super) const NFULA_IFINDEX_INDEV: u16 = 4;
    pub(super) const NFULA_IFINDEX_OUTDEV: u16 = 5;
    pub(super) const NFULA_PAYLOAD: u16 = 9;
    pub(super) const NFULA_PREFIX: u16 = 10;
}

/// Netfilter hooks (`enum nf_inet_hooks`).
pub mod hook {
    /// `NF_INET_PRE_ROUTING`.
    pub const PRE_ROUTING: u8 = 0;
    /// `NF_INET_LOCAL_IN`.
    pub const LOCAL_IN: u8 = 1;
    /// `NF_INET_FORWARD`.
    pub const FORWARD: u8 = 2;
    /// `NF_INET_LOCAL_OUT`.
    pub const LOCAL_OUT: u8 = 3;
    /// `NF_INET_POST_ROUTING`.
    pub const POST_ROUTING: u8 = 4;
}

/// One logged packet, borrowed from the receive buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NflogPacket<'a> {
    /// Address family of the packet (`AF_INET` 2, `AF_INET6` 10).
    pub family: u8,
    /// The hook that logged it (see [`hook`]).
    pub hook: Option<u8>,
    /// The link-layer protocol (`ETH_P_IP`, `ETH_P_IPV6`).
    pub hw_protocol: Option<u16>,
    /// The rule's log prefix (without its terminating NUL).
    pub prefix: Option<&'a [u8]>,
    /// The packet from its network header on, at most the copy range.
    pub payload: &'a [u8],
    /// Input interface index.
    pub indev: Option<u32>,
    /// Output interface index.
    pub outdev: Option<u32>,
    /// Firewall mark.
    pub mark: Option<u32>,
}

/// A socket bound to one NFLOG group.
#[derive(Debug)]
pub struct NflogSocket {
    fd: OwnedFd,
    group: u16,
    buf: Vec<u8>,
}

impl AsFd for NflogSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn be_u32(b: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(b.get(..4)?)
        .ok()
        .map(u32::from_be_bytes)
}

impl NflogSocket {
    /// Binds NFLOG group `group`, asking for the first `copy_range` bytes of each packet,
    /// delivered one by one (queue threshold 1). Needs `CAP_NET_ADMIN`; `EBUSY` when another
    /// socket has the group.
    pub fn bind(group: u16, copy_range: u32) -> io::Result<Self> {
        let fd = rnet::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::NETFILTER),
        )?;
        rnet::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        // Room for bursts: what overflows is reported as ENOBUFS by recv (counted).
        let _ = sockopt::set_socket_recv_buffer_size(&fd, 1 << 20);
        sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(Duration::from_secs(5)))?;
        let mut s = Self {
            fd,
            group,
            buf: vec![0; 64 * 1024],
        };
        s.config(&[(c::NFULA_CFG_CMD, &[c::NFULNL_CFG_CMD_BIND])])?;
        let mut mode = [0u8; 6];
        mode[..4].copy_from_slice(&copy_range.to_be_bytes());
        mode[4] = c::NFULNL_COPY_PACKET;
        s.config(&[
            (c::NFULA_CFG_MODE, &mode),
            (c::NFULA_CFG_QTHRESH, &1u32.to_be_bytes()),
        ])?;
        sockopt::set_socket_timeout(&s.fd, Timeout::Recv, None)?;
        Ok(s)
    }

    /// The bound group.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// Makes [`recv`](Self::recv) return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        rustix::io::ioctl_fionbio(&self.fd, on).map_err(Into::into)
    }

    /// Sends one `NFULNL_MSG_CONFIG` for the group and waits for the kernel's ack.
    fn config(&mut self, attrs: &[(u16, &[u8])]) -> io::Result<()> {
        let mut m = Msg::new(
            (c::NFNL_SUBSYS_ULOG << 8) | c::NFULNL_MSG_CONFIG,
            c::NLM_F_REQUEST | c::NLM_F_ACK,
        );
        // struct nfgenmsg { family: u8 (AF_UNSPEC), version: u8 (NFNETLINK_V0), res_id: be16 }
        let g = self.group.to_be_bytes();
        m.push(&[0, 0, g[0], g[1]]);
        for (ty, data) in attrs {
            m.attr(*ty, data);
        }
        let bytes = m.finish(1);
        let kernel = SocketAddrNetlink::new(0, 0);
        retry_eintr(|| rnet::sendto(&self.fd, bytes, SendFlags::empty(), &kernel))?;
        loop {
            let n = retry_eintr(|| rnet::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()))
                .map(|(n, _)| n)
                .map_err(|e| {
                    if e == rustix::io::Errno::AGAIN {
                        io::Error::new(io::ErrorKind::TimedOut, "no answer from nfnetlink_log")
                    } else {
                        e.into()
                    }
                })?;
            let mut rest = self.buf.get(..n).unwrap_or_default();
            while let Some(msg) = next_msg(&mut rest)? {
                if msg.ty == c::NLMSG_ERROR {
                    let errno = i32_at(msg.payload, 0)?;
                    return if errno == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(errno.saturating_neg()))
                    };
                }
            }
        }
    }

    /// Receives one datagram and calls `f` for each logged packet in it; how many. A
    /// datagram that is not NFLOG is skipped; a malformed one is an error (`InvalidData`).
    /// `ENOBUFS` means the socket overflowed and records were lost.
    pub fn recv(&mut self, mut f: impl FnMut(&NflogPacket<'_>)) -> io::Result<usize> {
        let (n, _) = retry_eintr(|| rnet::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()))?;
        let mut rest = self.buf.get(..n).unwrap_or_default();
        let mut count = 0;
        while let Some(msg) = next_msg(&mut rest)? {
            if msg.ty != (c::NFNL_SUBSYS_ULOG << 8) | c::NFULNL_MSG_PACKET {
                continue;
            }
            let p = parse_packet(msg.payload).ok_or_else(|| malformed("NFLOG packet message"))?;
            f(&p);
            count += 1;
        }
        Ok(count)
    }
}

/// Whether a [`NflogSocket::recv`] error says the socket overflowed (`ENOBUFS`): records
/// were lost, the socket still works.
pub fn is_overrun(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error())
}

/// Parses an `NFULNL_MSG_PACKET` payload (`nfgenmsg` + attributes).
pub fn parse_packet(b: &[u8]) -> Option<NflogPacket<'_>> {
    let family = *b.first()?;
    let attrs = b.get(4..)?;
    let mut p = NflogPacket {
        family,
        ..NflogPacket::default()
    };
    for (ty, data) in Attrs(attrs) {
        match ty {
            c::NFULA_PACKET_HDR => {
                p.hw_protocol = data.get(..2).map(|h| u16::from_be_bytes([h[0], h[1]]));
                p.hook = data.get(2).copied();
            }
            c::NFULA_MARK => p.mark = be_u32(data),
            c::NFULA_IFINDEX_INDEV => p.indev = be_u32(data),
            c::NFULA_IFINDEX_OUTDEV => p.outdev = be_u32(data),
            c::NFULA_PAYLOAD => p.payload = data,
            c::NFULA_PREFIX => {
                let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                p.prefix = data.get(..end);
            }
            _ => {}
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn attr(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
        out.extend_from_slice(&u16::try_from(4 + data.len()).unwrap().to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    #[test]
    fn parses_a_packet_message_and_survives_garbage() {
        let mut b = vec![2, 0, 0x05, 0xdc];
        attr(
            &mut b,
            c::NFULA_PACKET_HDR,
            &[0x08, 0x00, hook::LOCAL_IN, 0],
        );
        attr(
            &mut b,
            c::NFULA_PREFIX,
            b"ironswan spd_got_clear rule 0: \0",
        );
        attr(&mut b, c::NFULA_IFINDEX_INDEV | 0x4000, &7u32.to_be_bytes());
        attr(&mut b, c::NFULA_PAYLOAD, &[0x45, 0, 0, 20]);
        let p = parse_packet(&b).unwrap();
        assert_eq!(p.family, 2);
        assert_eq!(p.hook, Some(hook::LOCAL_IN));
        assert_eq!(p.hw_protocol, Some(0x0800));
        assert_eq!(p.prefix, Some(&b"ironswan spd_got_clear rule 0: "[..]));
        assert_eq!(p.indev, Some(7));
        assert_eq!(p.payload, &[0x45, 0, 0, 20]);
        for cut in 0..b.len() {
            let _ = parse_packet(&b[..cut]);
        }
        let mut rng = 99u64;
        for _ in 0..2000 {
            let v: Vec<u8> = (0..64)
                .map(|_| {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (rng >> 56) as u8
                })
                .collect();
            let _ = parse_packet(&v);
        }
    }

    /// Binding needs CAP_NET_ADMIN and nfnetlink_log; as root the bind must work.
    #[test]
    fn binds_a_group_as_root() {
        if crate::geteuid() != 0 {
            eprintln!("skipping: needs root");
            return;
        }
        let s =
            NflogSocket::bind(40_123, 128).expect("bind NFLOG group (is nfnetlink_log available?)");
        assert_eq!(s.group(), 40_123);
        s.set_nonblocking(true).unwrap();
    }
}
