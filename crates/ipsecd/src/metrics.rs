//! The Prometheus endpoint (`--metrics-listen ADDR:PORT`, off by default): a thread with a
//! std `TcpListener` that answers `GET /metrics` (and `HEAD`) with the counters in the text
//! exposition format ([`crate::stats::Snapshot::prometheus`]), 404 for any other path, 405
//! for other methods and 400 for a request it cannot read.
//!
//! It never blocks the data plane: each scrape takes the same snapshot as the control
//! socket's `counters` request (locks held only to copy the counters), and connections are
//! served one at a time with read and write timeouts, so a slow or idle client delays only
//! other scrapes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;
use crate::dataplane::Counters;

/// Largest request head read.
const MAX_HEAD: usize = 8192;
/// How long a client may take to send its request or read the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds `addr` and serves it from a new thread; the bound address (port 0 picks one).
pub fn start(addr: SocketAddr, core: Core, plane: Option<Arc<Counters>>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(s) => {
                        if let Err(e) = serve(s, &core, plane.as_deref()) {
                            crate::log::debug(format_args!("metrics: {e}"));
                        }
                    }
                    Err(e) => {
                        crate::log::debug(format_args!("metrics: accept: {e}"));
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(bound)
}

/// Reads the request head (up to the blank line); `None` if the client closed early or
/// sent more than [`MAX_HEAD`] bytes without one.
fn read_head(s: &mut TcpStream) -> io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(String::from_utf8(buf).ok())
}

/// The status line, content type and body for a request line.
fn respond(
    request_line: &str,
    core: &Core,
    plane: Option<&Counters>,
) -> (&'static str, &'static str, String) {
    let text = "text/plain; charset=utf-8";
    let mut w = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (w.next(), w.next(), w.next(), w.next())
    else {
        return ("400 Bad Request", text, "bad request line\n".into());
    };
    if !version.starts_with("HTTP/1.") {
        return ("400 Bad Request", text, "HTTP/1.x only\n".into());
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/metrics" {
        return (
            "404 Not Found",
            text,
            "not found: the counters are at /metrics\n".into(),
        );
    }
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", text, "GET or HEAD only\n".into());
    }
    let body = crate::stats::Snapshot::take(plane, core).prometheus();
    ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
}

fn serve(mut s: TcpStream, core: &Core, plane: Option<&Counters>) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = read_head(&mut s)?;
    let line = head.as_deref().and_then(|h| h.lines().next()).unwrap_or("");
    let (status, ctype, body) = match head {
        Some(_) => respond(line.trim_end(), core, plane),
        None => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".into(),
        ),
    };
    let head_only = line.starts_with("HEAD ");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(&body);
    }
    s.write_all(out.as_bytes())?;
    s.flush()
}
