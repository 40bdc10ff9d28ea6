//! ipsecstat: what ipsecd's data plane has done: packets per path, drops by named reason
//! (Solaris ipdrop names), and per SA packets, bytes and drops.
//!
//! ```text
//! ipsecstat [--socket PATH]
//! ```
//!
//! It asks ipsecd's control socket (`--socket`, `$IRONSWAN_CONTROL_SOCKET`, default
//! `/run/ironswan/control.sock`; root or CAP_NET_ADMIN) for its counters.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ipsec_sys::seqpacket::{Conn, Recv, Sent};

/// Shows ipsecd's data-plane counters and per-SA statistics.
#[derive(Parser, Debug)]
#[command(name = "ipsecstat", version)]
struct Args {
    /// ipsecd's control socket.
    #[arg(
        long,
        env = "IRONSWAN_CONTROL_SOCKET",
        default_value = "/run/ironswan/control.sock"
    )]
    socket: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipsecstat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let conn = Conn::connect(&args.socket)
        .map_err(|e| format!("cannot reach ipsecd at {}: {e}", args.socket.display()))?;
    match conn.send(b"counters") {
        Ok(Sent::Done) => {}
        Ok(_) => return Err("ipsecd closed the connection".into()),
        Err(e) => return Err(format!("sending to ipsecd: {e}")),
    }
    let mut buf = vec![0u8; 1 << 20];
    let n = match conn.recv(&mut buf) {
        Ok(Recv::Msg(n)) => n,
        Ok(Recv::Truncated(_)) => return Err("reply too large".into()),
        Ok(_) => return Err("ipsecd closed the connection".into()),
        Err(e) => return Err(format!("reading from ipsecd: {e}")),
    };
    let reply = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
    let Some(body) = reply.strip_prefix("ok\n") else {
        return Err(reply.trim_end().to_string());
    };
    Ok(format(body))
}

/// Lays the counters out in three sections.
fn format(body: &str) -> String {
    let (mut plane, mut sas, mut drops) = (Vec::new(), Vec::new(), Vec::new());
    for line in body.lines() {
        if let Some(sa) = line.strip_prefix("sa ") {
            sas.push(sa.to_string());
        } else if let Some(d) = line.strip_prefix("drop ") {
            drops.push(d.replacen('=', " ", 1));
        } else if let Some((k, v)) = line.split_once('=') {
            plane.push(format!("  {k:<32}{v:>12}"));
        }
    }
    let mut o = String::from("Data plane (packets):\n");
    if plane.is_empty() {
        o.push_str("  (no data plane, or nothing yet)\n");
    }
    for l in plane {
        o.push_str(&l);
        o.push('\n');
    }
    o.push_str("Security associations:\n");
    if sas.is_empty() {
        o.push_str("  (none)\n");
    }
    for l in sas {
        o.push_str("  ");
        o.push_str(&l);
        o.push('\n');
    }
    o.push_str("Engine drops (all SAs):\n");
    if drops.is_empty() {
        o.push_str("  (none)\n");
    }
    for l in drops {
        o.push_str("  ");
        o.push_str(&l);
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_laid_out() {
        let t = format("tun_in=5\nsa esp spi=0x00001000 10.0.0.1 -> 10.0.0.2 packets=3 bytes=192\ndrop esp_bad_auth=1\n");
        assert!(t.contains("  tun_in"));
        assert!(t.contains("  esp spi=0x00001000 10.0.0.1 -> 10.0.0.2 packets=3 bytes=192\n"));
        assert!(t.contains("  esp_bad_auth 1\n"));
        assert!(format("").contains("(none)"));
    }
}
