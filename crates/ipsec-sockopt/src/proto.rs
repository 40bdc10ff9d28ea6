//! The per-socket policy service's protocol: one text message per `SOCK_SEQPACKET` packet,
//! one reply per request.
//!
//! ```text
//!  open                     register the socket (family and protocol read from it)  -> ok
//!  set HEX32                IP_SEC_OPT with ipsec_req_t's 16 bytes (hex)   -> ok | err ERRNO WHY
//!  get                      getsockopt(IP_SEC_OPT)                         -> req HEX32 | none
//!  sync                     the socket's addresses or listening state changed -> ok | err ...
//! ```
//!
//! Every request carries the socket itself (`SCM_RIGHTS`): ipsecd reads the socket's family,
//! protocol, addresses and listening state from it, never from the client's words, checks
//! that it is the socket registered by `open` (its inode), and closes its copy at once. The
//! connection stands for the socket: closing it forgets the socket.

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
    Open,
    /// `setsockopt(IP_SEC_OPT)`.
    Set([u8; REQ_LEN]),
    /// `getsockopt(IP_SEC_OPT)`.
    Get,
    /// The socket was bound, connected or put to listen.
    Sync,
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

impl Request {
    /// The message text.
    pub fn encode(&self) -> String {
        match self {
            Request::Open => "open".into(),
            Request::Set(b) => format!("set {}", hex(b)),
            Request::Get => "get".into(),
            Request::Sync => "sync".into(),
        }
    }

    /// Parses a message; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let w: Vec<&str> = text.split_ascii_whitespace().collect();
        match w.as_slice() {
            ["open"] => Ok(Request::Open),
            ["set", h] => Ok(Request::Set(unhex(h)?)),
            ["get"] => Ok(Request::Get),
            ["sync"] => Ok(Request::Sync),
            _ => Err(format!(
                "expected open, set HEX32, get or sync, got {:?}",
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
            Request::Open,
            Request::Set([7; REQ_LEN]),
            Request::Get,
            Request::Sync,
        ];
        for r in rs {
            assert_eq!(Request::parse(&r.encode()), Ok(r));
        }
        assert!(Request::parse("set 00").is_err_and(|e| e.contains("expected 32 hex digits")));
        assert!(Request::parse("set 0g000000000000000000000000000000")
            .is_err_and(|e| e.contains("bad hex digits")));
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
