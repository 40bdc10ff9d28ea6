//! The NAT-T IKE relay (issue 6): IKE that peers send to ipsecd's NAT-T port (UDP 4500,
//! marked by the 4-byte non-ESP marker, RFC 3948 §2.2) goes to the key managers that asked
//! for it on the control socket, and they send IKE from that port through ipsecd.
//!
//! ```text
//!  peer ──UDP 4500: 00000000 + IKE──► data plane (read_natt)
//!                                        │ no relay: natt_ike_no_key_manager
//!                                        │ channel full: natt_ike_relay_queue_full
//!                                        ▼ bounded channel + waker byte
//!                                    server thread ──"ike SRC SPORT DST DPORT\n" + IKE──► every relay
//!                                        ▲                 (per-relay queue; full: dropped, counted)
//!  peer ◄──UDP 4500: 00000000 + IKE── clone of the NAT-T socket ◄──"send DST DPORT\n" + IKE── a relay
//! ```
//!
//! A relay is a privileged control-socket connection that sent `natt-relay` (reply: `ok
//! ...`). From then on it receives one SOCK_SEQPACKET message per IKE datagram: the line
//! `ike SRC_IP SRC_PORT DST_IP DST_PORT\n` followed by the IKE message without the marker
//! (the destination is the local address the peer sent to and the NAT-T port). Every
//! connected relay receives every datagram, as every registered PF_KEY key manager receives
//! an ACQUIRE: several IKE daemons may share the port, and each ignores what it does not
//! know (by SPI). A relay may send `send DST_IP DST_PORT [SRC_IP]\n` followed by an IKE
//! message: ipsecd sends the marker and the message from its NAT-T socket of that family to
//! the peer, from local address `SRC_IP` when given (a responder answers from the address
//! the request came to, RFC 7296 §2.11: the `DST_IP` of the `ike` line), else from the
//! address the route prefers.
//! A successful send has no reply (so replies never interleave with the IKE stream);
//! failures are answered with `error ...`. Other control requests still work on a relay
//! connection.
//!
//! Counters (the control socket's `counters`): `natt_ike_relayed` (datagrams queued for
//! at least one relay), `natt_ike_no_key_manager` (no relay connected), `natt_ike_relay_queue_full`
//! (the data plane's channel to the server thread was full), `natt_ike_relay_dropped`
//! (messages, IKE or replies, dropped for one relay whose queue of [`RELAY_QUEUE`] was full:
//! a slow relay loses datagrams, never blocks ipsecd or the other relays),
//! `natt_ike_sent` and `natt_ike_send_error` (the relays' `send` requests). A marker with
//! nothing after it is a `natt_bad_datagram`.
//!
//! IKE is control traffic (a few datagrams per exchange), so each datagram is copied into
//! its own buffer; the ESP path does not go through here.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use ipsec_sys::udp::PktinfoSocket;

pub use ipsec_wire::udpencap::NON_ESP_MARKER;

/// IKE datagrams waiting between the data plane and the server thread.
pub const CHANNEL_DATAGRAMS: usize = 1024;

/// Messages queued for one relay connection before further datagrams are dropped for it.
pub const RELAY_QUEUE: usize = 1024;

/// Largest IKE message a relay may send (a UDP datagram less the marker).
pub const MAX_IKE: usize = 65_507 - NON_ESP_MARKER.len();

/// One IKE datagram received on the NAT-T port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeDatagram {
    /// The peer.
    pub src: SocketAddr,
    /// The local address and port it was sent to.
    pub dst: SocketAddr,
    /// The IKE message, without the non-ESP marker.
    pub msg: Vec<u8>,
}

/// The data plane's end: hands IKE datagrams to the server thread.
#[derive(Debug)]
pub struct Feed {
    tx: SyncSender<IkeDatagram>,
    relays: Arc<AtomicUsize>,
}

/// What [`Feed::offer`] did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Queued for the server thread (which must be woken).
    Queued,
    /// No relay is connected: nobody wants it.
    NoKeyManager,
    /// The channel is full (the server thread is behind): dropped.
    Full,
}

impl Feed {
    /// Queues `d` for the relays, if any is connected.
    pub fn offer(&self, d: IkeDatagram) -> Offer {
        if self.relays.load(Ordering::Relaxed) == 0 {
            return Offer::NoKeyManager;
        }
        match self.tx.try_send(d) {
            Ok(()) => Offer::Queued,
            // A disconnected receiver means the server is shutting down.
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Offer::Full,
        }
    }
}

/// The server thread's end: receives the datagrams and sends IKE from the NAT-T sockets.
#[derive(Debug)]
pub struct Port {
    rx: Receiver<IkeDatagram>,
    relays: Arc<AtomicUsize>,
    socks: Vec<PktinfoSocket>,
    /// The NAT-T port.
    pub port: u16,
}

/// The two ends of a relay channel over the NAT-T sockets `socks` (clones of the data
/// plane's) on `port`.
pub fn channel(socks: Vec<PktinfoSocket>, port: u16) -> (Feed, Port) {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_DATAGRAMS);
    let relays = Arc::new(AtomicUsize::new(0));
    (
        Feed {
            tx,
            relays: Arc::clone(&relays),
        },
        Port {
            rx,
            relays,
            socks,
            port,
        },
    )
}

impl Port {
    /// Tells the data plane how many relays are connected (0: it counts IKE as having no
    /// key manager instead of queueing it).
    pub fn set_relays(&self, n: usize) {
        self.relays.store(n, Ordering::Relaxed);
    }

    /// The next queued datagram, if any.
    pub fn poll_datagram(&self) -> Option<IkeDatagram> {
        self.rx.try_recv().ok()
    }

    /// Sends the marker and `msg` to `dst` from the NAT-T socket of `dst`'s family, from
    /// local address `src` when given (else the one the route prefers).
    pub fn send(&self, dst: SocketAddr, src: Option<IpAddr>, msg: &[u8]) -> Result<(), String> {
        let sock = self
            .socks
            .iter()
            .find(|s| s.is_ipv6() == dst.is_ipv6())
            .ok_or_else(|| {
                format!(
                    "no NAT-T socket for {} (sending to {dst})",
                    if dst.is_ipv6() { "IPv6" } else { "IPv4" }
                )
            })?;
        let mut d = Vec::with_capacity(NON_ESP_MARKER.len() + msg.len());
        d.extend_from_slice(&NON_ESP_MARKER);
        d.extend_from_slice(msg);
        match src {
            Some(s) => sock.send_from(&d, s, dst),
            None => sock.send_to(&d, dst),
        }
        .map_err(|e| format!("sending to {dst}: {e}"))
    }
}

/// The message a relay receives for `d`: `ike SRC_IP SRC_PORT DST_IP DST_PORT\n` + IKE.
pub fn frame(d: &IkeDatagram) -> Vec<u8> {
    let head = format!(
        "ike {} {} {} {}\n",
        d.src.ip(),
        d.src.port(),
        d.dst.ip(),
        d.dst.port()
    );
    let mut m = Vec::with_capacity(head.len() + d.msg.len());
    m.extend_from_slice(head.as_bytes());
    m.extend_from_slice(&d.msg);
    m
}

/// Whether a control message is a relay's `send` request (binary after its first line,
/// so it is not read as text).
pub fn is_send(msg: &[u8]) -> bool {
    msg.starts_with(b"send ") || msg.starts_with(b"send\n") || msg == b"send"
}

/// A relay's `send` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRequest<'a> {
    /// The peer.
    pub dst: SocketAddr,
    /// The local address to send from, if the relay named one.
    pub src: Option<IpAddr>,
    /// The IKE message (the marker is added).
    pub ike: &'a [u8],
}

/// Parses `send DST_IP DST_PORT [SRC_IP]\n<IKE message>`.
pub fn parse_send(msg: &[u8]) -> Result<SendRequest<'_>, String> {
    let nl = msg
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("send: expected \"send DST_IP DST_PORT\" then a newline and the IKE message")?;
    let (line, rest) = msg.split_at(nl);
    let ike = rest.get(1..).unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| "send: the first line is not text")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let (ip, port, src) = match words.as_slice() {
        ["send", ip, port] => (ip, port, None),
        ["send", ip, port, src] => (ip, port, Some(src)),
        _ => {
            return Err(format!(
                "send: expected \"send DST_IP DST_PORT [SRC_IP]\", got {:?}",
                line.trim()
            ))
        }
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("send: {ip:?} is not an IP address"))?;
    let port: u16 = match port.parse() {
        Ok(p) if p != 0 => p,
        _ => return Err(format!("send: {port:?} is not a UDP port")),
    };
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(format!("send: {ip} is not a unicast address"));
    }
    let src = match src {
        None => None,
        Some(s) => {
            let a: IpAddr = s
                .parse()
                .map_err(|_| format!("send: source {s:?} is not an IP address"))?;
            if a.is_ipv4() != ip.is_ipv4() || a.is_unspecified() || a.is_multicast() {
                return Err(format!(
                    "send: source {a} is not a unicast address of {ip}'s family"
                ));
            }
            Some(a)
        }
    };
    if ike.is_empty() {
        return Err("send: no IKE message after the first line".into());
    }
    if ike.len() > MAX_IKE {
        return Err(format!(
            "send: IKE message of {} bytes (at most {MAX_IKE})",
            ike.len()
        ));
    }
    Ok(SendRequest {
        dst: SocketAddr::new(ip, port),
        src,
        ike,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frame_names_both_ends_then_the_message() {
        let d = IkeDatagram {
            src: "10.0.0.1:4500".parse().unwrap(),
            dst: "10.0.0.2:4500".parse().unwrap(),
            msg: vec![0, 1, b'\n', 0xff],
        };
        assert_eq!(
            frame(&d),
            b"ike 10.0.0.1 4500 10.0.0.2 4500\n\x00\x01\n\xff"
        );
        let d6 = IkeDatagram {
            src: "[2001:db8::1]:14500".parse().unwrap(),
            dst: "[2001:db8::2]:4500".parse().unwrap(),
            msg: vec![],
        };
        assert_eq!(frame(&d6), b"ike 2001:db8::1 14500 2001:db8::2 4500\n");
    }

    #[test]
    fn send_parses_the_peer_and_keeps_the_message_binary() {
        let r = parse_send(b"send 192.0.2.1 4500\n\x00\n\x01").unwrap();
        assert_eq!(r.dst, "192.0.2.1:4500".parse().unwrap());
        assert_eq!(r.src, None);
        assert_eq!(r.ike, b"\x00\n\x01");
        let r = parse_send(b"send  2001:db8::7   14500 \nIKE").unwrap();
        assert_eq!(r.dst, "[2001:db8::7]:14500".parse().unwrap());
        assert_eq!(r.ike, b"IKE");
        let r = parse_send(b"send 192.0.2.1 4500 192.0.2.2\nIKE").unwrap();
        assert_eq!(r.src, Some("192.0.2.2".parse().unwrap()));
        let r = parse_send(b"send 2001:db8::7 4500 2001:db8::2\nIKE").unwrap();
        assert_eq!(r.src, Some("2001:db8::2".parse().unwrap()));
        assert!(is_send(b"send 1.2.3.4 500\nx"));
        assert!(is_send(b"send"));
        assert!(!is_send(b"sender"));
        assert!(!is_send(b"stats"));
    }

    #[test]
    fn bad_send_requests_are_explained() {
        for (req, what) in [
            (&b"send 192.0.2.1 4500"[..], "newline"),
            (b"send 192.0.2.1\nx", "expected"),
            (b"send 192.0.2.1 4500 9 9\nx", "expected"),
            (
                b"send 192.0.2.1 4500 9\nx",
                "source \"9\" is not an IP address",
            ),
            (b"send 192.0.2.1 4500 2001:db8::2\nx", "family"),
            (b"send 192.0.2.1 4500 0.0.0.0\nx", "family"),
            (b"send host 4500\nx", "not an IP address"),
            (b"send 192.0.2.1 0\nx", "not a UDP port"),
            (b"send 192.0.2.1 65536\nx", "not a UDP port"),
            (b"send 0.0.0.0 4500\nx", "unicast"),
            (b"send 224.0.0.1 4500\nx", "unicast"),
            (b"send 192.0.2.1 4500\n", "no IKE message"),
            (b"send \xff 4500\nx", "not text"),
        ] {
            let e = parse_send(req).unwrap_err();
            assert!(e.contains(what), "{:?}: {e}", String::from_utf8_lossy(req));
        }
        let big = [b"send 192.0.2.1 4500\n".as_slice(), &vec![1u8; MAX_IKE + 1]].concat();
        assert!(parse_send(&big).unwrap_err().contains("at most"));
        let max = [b"send 192.0.2.1 4500\n".as_slice(), &vec![1u8; MAX_IKE]].concat();
        assert_eq!(parse_send(&max).unwrap().ike.len(), MAX_IKE);
    }

    #[test]
    fn the_feed_queues_only_while_a_relay_listens_and_is_bounded() {
        let (feed, port) = channel(Vec::new(), 4500);
        let d = IkeDatagram {
            src: "10.0.0.1:4500".parse().unwrap(),
            dst: "10.0.0.2:4500".parse().unwrap(),
            msg: b"ike".to_vec(),
        };
        assert_eq!(feed.offer(d.clone()), Offer::NoKeyManager);
        port.set_relays(1);
        for _ in 0..CHANNEL_DATAGRAMS {
            assert_eq!(feed.offer(d.clone()), Offer::Queued);
        }
        assert_eq!(feed.offer(d.clone()), Offer::Full);
        assert_eq!(port.poll_datagram(), Some(d.clone()));
        assert_eq!(feed.offer(d.clone()), Offer::Queued);
        assert!(port
            .send("10.0.0.1:4500".parse().unwrap(), None, b"x")
            .is_err());
    }

    #[test]
    fn the_port_sends_the_marker_and_the_message() {
        let s = PktinfoSocket::bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let local = s.local_addr().unwrap();
        let (_feed, port) = channel(vec![s], local.port());
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        port.send(peer.local_addr().unwrap(), None, b"IKE_SA_INIT")
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"\0\0\0\0IKE_SA_INIT");
        assert_eq!(from, local);
        let e = port
            .send("[::1]:4500".parse().unwrap(), None, b"x")
            .unwrap_err();
        assert!(e.contains("no NAT-T socket for IPv6"), "{e}");
    }
}
