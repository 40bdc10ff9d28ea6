//! ikev2adm: administration of in.ikev2d over its socket.
//!
//! ```text
//! ikev2adm [-s SOCKET] show ikesa | show rule | show stats | flush ikesa | delete ikesa PEER
//! ```
//!
//! `show ikesa` lists the IKE SAs (SPIs, addresses, role, state, rule, Child SA pairs);
//! `show rule` the rules in force; `show stats` the daemon's counters; `flush ikesa`
//! deletes every IKE SA (each peer is told; their Child SAs leave ipsecd), `delete ikesa
//! PEER` those with one peer.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::{PollFd, PollFlags};

/// Administers in.ikev2d.
#[derive(Parser, Debug)]
#[command(name = "ikev2adm", version)]
struct Args {
    /// in.ikev2d's administration socket.
    #[arg(short = 's', long, default_value = ikev2d::DEFAULT_ADMIN_SOCKET)]
    socket: PathBuf,
    /// The request: show ikesa|rule|stats, flush ikesa, delete ikesa PEER.
    #[arg(required = true)]
    request: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let req = args.request.join(" ");
    let reply = (|| -> std::io::Result<String> {
        let c = Conn::connect(&args.socket)?;
        if c.send(req.as_bytes())? != Sent::Done {
            return Err(std::io::Error::other("in.ikev2d closed the connection"));
        }
        let mut fds = [PollFd::new(&c, PollFlags::IN)];
        if ipsec_sys::poll(&mut fds, Some(Duration::from_secs(10)))? == 0 {
            return Err(std::io::Error::other(
                "no answer from in.ikev2d within 10 s",
            ));
        }
        let mut buf = vec![0u8; 1 << 20];
        match c.recv(&mut buf)? {
            Recv::Msg(n) => {
                Ok(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned())
            }
            _ => Err(std::io::Error::other("in.ikev2d closed the connection")),
        }
    })();
    match reply {
        Ok(r) => match r.strip_prefix("ok") {
            Some(rest) => {
                print!("{}", rest.trim_start_matches([' ', '\n']));
                ExitCode::SUCCESS
            }
            None => {
                eprint!("ikev2adm: {}", r.strip_prefix("error ").unwrap_or(&r));
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("ikev2adm: {}: {e}", args.socket.display());
            ExitCode::FAILURE
        }
    }
}
