//! One request and its reply over ipsecd's control socket (the tools that ask a single
//! question: ipsecstat, ipsecalgs).

use std::path::Path;

use ipsec_sys::seqpacket::{Conn, Recv, Sent};

/// Largest reply read (and request sent) at once.
const MAX_MESSAGE: usize = 1 << 20;

/// Sends `msg` to the control socket at `socket` and returns the reply's body: the text
/// after `ok` (and its newline, if any). An `error ...` reply is `Err` with its text.
pub fn request(socket: &Path, msg: &str) -> Result<String, String> {
    let conn = Conn::connect(socket).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied => "root or CAP_NET_ADMIN is needed",
            _ => "is ipsecd running? see --socket",
        };
        format!("cannot reach ipsecd at {}: {e} ({hint})", socket.display())
    })?;
    if msg.len() > MAX_MESSAGE {
        return Err(format!("request too large ({} bytes)", msg.len()));
    }
    if msg.len() > 64 * 1024 {
        let _ = conn.set_send_buffer(msg.len() + 64 * 1024);
    }
    match conn.send(msg.as_bytes()) {
        Ok(Sent::Done) => {}
        Ok(_) => return Err("ipsecd closed the connection".into()),
        Err(e) => return Err(format!("sending to ipsecd: {e}")),
    }
    let mut buf = vec![0u8; MAX_MESSAGE];
    let n = match conn.recv(&mut buf) {
        Ok(Recv::Msg(n)) => n,
        Ok(Recv::Truncated(_)) => return Err("reply too large".into()),
        Ok(_) => return Err("ipsecd closed the connection".into()),
        Err(e) => return Err(format!("reading from ipsecd: {e}")),
    };
    let reply = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
    match reply.strip_prefix("ok") {
        Some(body) => Ok(body
            .strip_prefix('\n')
            .or_else(|| body.strip_prefix(' '))
            .unwrap_or(body)
            .to_string()),
        None => Err(reply
            .strip_prefix("error ")
            .unwrap_or(&reply)
            .trim_end()
            .to_string()),
    }
}
