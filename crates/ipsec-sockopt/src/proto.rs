//! The per-socket policy service's protocol: one text message per `SOCK_SEQPACKET` packet,
//! one reply per request.
//!
//! ```text
//!  open 4|6 PROTO           register the socket (family, IP protocol)     -> ok
//!  set HEX32                IP_SEC_OPT with ipsec_req_t's 16 bytes (hex)   -> ok | err ERRNO WHY
//!  get                      getsockopt(IP_SEC_OPT)                         -> req HEX32 | none
//!  listen                   listen() succeeded                             -> ok
//!  addr LOCAL [REMOTE]      the socket's addresses; REMOTE: connected      -> ok | err ERRNO WHY
//! ```
//!
//! The connection stands for the socket: closing it forgets the socket.

use std::net::SocketAddr;

/// The environment variable naming the service socket.
pub const SOCKET_ENV: &str = "IRONSWAN_SOCKPOLICY_SOCKET";
/// The service socket's default path.
pub const DEFAULT_SOCKET: &str = "/run/ironswan/sockpolicy.sock";
/// `sizeof (ipsec_req_t)`.
pub const REQ_LEN: usize = 16;

/// A request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Register the socket.
    Open {
        /// `AF_INET6`.
        v6: bool,
        /// IP protocol.
        proto: u8,
    },
    /// `setsockopt(IP_SEC_OPT)`.
    Set([u8; REQ_LEN]),
    /// `getsockopt(IP_SEC_OPT)`.
    Get,
    /// `listen()`.
    Listen,
    /// The socket's addresses.
    Addr {
        /// Local address and port.
        local: SocketAddr,
        /// Peer, once connected.
        remote: Option<SocketAddr>,
    },
}

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Done.
    Ok,
    /// The socket's request.
    Req([u8; REQ_LEN]),
    /// No policy.
    NoPolicy,
    /// Refused with this errno.
    Err {
        /// errno.
        errno: i32,
        /// Why.
        why: String,
    },
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<[u8; REQ_LEN], String> {
    let mut out = [0u8; REQ_LEN];
    if s.len() != REQ_LEN * 2 || !s.is_ascii() {
        return Err(format!("expected {} hex digits, got {s:?}", REQ_LEN * 2));
    }
    for (i, o) in out.iter_mut().enumerate() {
        let d = s.get(2 * i..2 * i + 2).unwrap_or_default();
        *o = u8::from_str_radix(d, 16).map_err(|_| format!("bad hex digits {d:?}"))?;
    }
    Ok(out)
}

fn addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("expected an address:port, got {s:?}"))
}

impl Request {
    /// The message text.
    pub fn encode(&self) -> String {
        match self {
            Request::Open { v6, proto } => format!("open {} {proto}", if *v6 { 6 } else { 4 }),
            Request::Set(b) => format!("set {}", hex(b)),
            Request::Get => "get".into(),
            Request::Listen => "listen".into(),
            Request::Addr {
                local,
                remote: Some(r),
            } => format!("addr {local} {r}"),
            Request::Addr {
                local,
                remote: None,
            } => format!("addr {local}"),
        }
    }

    /// Parses a message; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let w: Vec<&str> = text.split_ascii_whitespace().collect();
        match w.as_slice() {
            ["open", fam, proto] => {
                let v6 = match *fam {
                    "4" => false,
                    "6" => true,
                    _ => return Err(format!("open: family must be 4 or 6, got {fam:?}")),
                };
                let proto = proto
                    .parse()
                    .map_err(|_| format!("open: protocol must be 0-255, got {proto:?}"))?;
                Ok(Request::Open { v6, proto })
            }
            ["set", h] => Ok(Request::Set(unhex(h)?)),
            ["get"] => Ok(Request::Get),
            ["listen"] => Ok(Request::Listen),
            ["addr", l] => Ok(Request::Addr {
                local: addr(l)?,
                remote: None,
            }),
            ["addr", l, r] => Ok(Request::Addr {
                local: addr(l)?,
                remote: Some(addr(r)?),
            }),
            _ => Err(format!(
                "expected open, set, get, listen or addr, got {:?}",
                text.chars().take(40).collect::<String>()
            )),
        }
    }
}

impl Reply {
    /// The message text.
    pub fn encode(&self) -> String {
        match self {
            Reply::Ok => "ok".into(),
            Reply::Req(b) => format!("req {}", hex(b)),
            Reply::NoPolicy => "none".into(),
            Reply::Err { errno, why } => format!("err {errno} {why}"),
        }
    }

    /// Parses a reply.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut it = text.splitn(3, ' ');
        match (it.next(), it.next(), it.next()) {
            (Some("ok"), None, None) => Ok(Reply::Ok),
            (Some("none"), None, None) => Ok(Reply::NoPolicy),
            (Some("req"), Some(h), None) => Ok(Reply::Req(unhex(h)?)),
            (Some("err"), Some(e), why) => Ok(Reply::Err {
                errno: e.parse().map_err(|_| format!("bad errno {e:?}"))?,
                why: why.unwrap_or_default().to_string(),
            }),
            _ => Err(format!("unexpected reply {text:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_say_what_was_expected() {
        let rs = [
            Request::Open { v6: true, proto: 6 },
            Request::Set([7; REQ_LEN]),
            Request::Get,
            Request::Listen,
            Request::Addr {
                local: "10.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!()),
                remote: Some(
                    "[2001:db8::2]:80"
                        .parse()
                        .unwrap_or_else(|_| unreachable!()),
                ),
            },
        ];
        for r in rs {
            assert_eq!(Request::parse(&r.encode()), Ok(r));
        }
        assert!(Request::parse("set 00").is_err_and(|e| e.contains("expected 32 hex digits")));
        assert!(Request::parse("open 5 6").is_err_and(|e| e.contains("4 or 6")));
        assert!(Request::parse("frob").is_err_and(|e| e.contains("expected open")));
        for r in [
            Reply::Ok,
            Reply::NoPolicy,
            Reply::Req([1; REQ_LEN]),
            Reply::Err {
                errno: 1,
                why: "only privileged sockets may bypass".into(),
            },
        ] {
            assert_eq!(Reply::parse(&r.encode()), Ok(r));
        }
    }
}
