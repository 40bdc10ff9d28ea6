//! in.ikev2d (the binary `in-ikev2d`: Cargo allows no dot in a binary's name): the IKEv2
//! daemon. `-c` checks the configuration and exits.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ikev2d::certs::load_cert_creds;
use ikev2d::config::{load_config, load_preshared};
use ikev2d::daemon::{any_v4, Daemon, Options};
use ikev2d::log;
use ipsec_sys::signal::{SignalPipe, SIGINT, SIGTERM};

/// Ironswan's IKEv2 daemon.
#[derive(Parser, Debug)]
#[command(name = "in.ikev2d", version)]
struct Args {
    /// Check the configuration (with the pre-shared keys file and the certificate
    /// store's credentials for the certificate rules) and exit.
    #[arg(short = 'c')]
    check: bool,
    /// The configuration file.
    #[arg(short = 'f', long, default_value = "/etc/inet/ike/ikev2.config")]
    config: PathBuf,
    /// The pre-shared keys file (mode 0600, owned by root).
    #[arg(long, default_value = "/etc/inet/ike/ikev2.preshared")]
    preshared: PathBuf,
    /// ipsecd's PF_KEY socket.
    #[arg(
        long,
        env = "IRONSWAN_PFKEY_SOCKET",
        default_value = "/run/ironswan/pfkey.sock"
    )]
    pfkey_socket: PathBuf,
    /// ipsecd's control socket: IKE on the NAT-T port goes through its `natt-relay`.
    /// Without it IKE stays on port 500.
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// Local address of the IKE socket.
    #[arg(long, default_value_t = any_v4())]
    bind: IpAddr,
    /// The IKE port.
    #[arg(long, default_value_t = 500)]
    ike_port: u16,
    /// Firewall mark of the IKE packets (0: none). The default is ipsecd's: IKE then
    /// bypasses the TUN device and its policy (as Solaris's in.ikev2d sockets bypass
    /// IPsec), so that an IKE message longer than the path MTU (IKE_AUTH with
    /// certificates) leaves as IP fragments; through the TUN, policy would drop the
    /// fragments without ports.
    #[arg(long, default_value_t = 0x1500)]
    mark: u32,
    /// Half-open IKE SAs above which responders demand cookies (RFC 7296 §2.6).
    #[arg(long, default_value_t = 64)]
    cookie_threshold: usize,
    /// Child SA pairs one IKE SA may hold; a peer asking for more is refused with
    /// NO_ADDITIONAL_SAS (a rekey may go one pair beyond while the old pair is deleted).
    #[arg(long, default_value_t = ike::sa::DEFAULT_MAX_CHILD_SAS)]
    max_child_sas: usize,
    /// The administration socket of ikev2adm (mode 0600, root or CAP_NET_ADMIN peers).
    #[arg(long, default_value = ikev2d::DEFAULT_ADMIN_SOCKET)]
    admin_socket: PathBuf,
    /// Dead-peer detection: seconds without a message from a peer before a liveness
    /// check (0: none).
    #[arg(long, default_value_t = 30)]
    dpd_seconds: u64,
    /// First retransmission of a request after this many milliseconds (each next one
    /// waits twice as long).
    #[arg(long, default_value_t = 500)]
    retransmit_ms: u64,
    /// Sends of one request in all before the peer is taken for dead.
    #[arg(long, default_value_t = 7)]
    retransmit_sends: u32,
    /// More log output (-v: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> ExitCode {
    let args = Args::parse();
    log::set_level(1 + args.verbose);
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(e) => {
            log::error(format_args!("{e}"));
            return ExitCode::FAILURE;
        }
    };
    // Certificate-only configurations need no pre-shared keys file.
    let psk = if config.uses_preshared() || args.preshared.exists() {
        match load_preshared(&args.preshared) {
            Ok(p) => p,
            Err(e) => {
                log::error(format_args!("{e}"));
                return ExitCode::FAILURE;
            }
        }
    } else {
        ikev2d::config::Preshared::default()
    };
    let certs = match load_cert_creds(&config) {
        Ok(c) => c,
        Err(e) => {
            log::error(format_args!("{}: {e}", args.config.display()));
            return ExitCode::FAILURE;
        }
    };
    for r in config.rules.iter().filter(|r| !r.auth.is_cert()) {
        if psk.get(&r.label).is_none() {
            log::error(format_args!(
                "{}:{}: rule {:?} has no key in {}",
                args.config.display(),
                r.line,
                r.label,
                args.preshared.display()
            ));
            return ExitCode::FAILURE;
        }
    }
    if args.check {
        if certs.is_empty() {
            println!(
                "{}: {} rule(s), {} pre-shared key(s): OK",
                args.config.display(),
                config.rules.len(),
                psk.len()
            );
        } else {
            println!(
                "{}: {} rule(s), {} pre-shared key(s), {} certificate rule(s) with credentials in {}: OK",
                args.config.display(),
                config.rules.len(),
                psk.len(),
                certs.len(),
                config.cert_store().display()
            );
        }
        return ExitCode::SUCCESS;
    }
    let signals = match SignalPipe::new(&[SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            log::error(format_args!("signals: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let opts = Options {
        pfkey_socket: args.pfkey_socket,
        control_socket: args.control_socket,
        bind: args.bind,
        ike_port: args.ike_port,
        mark: args.mark,
        cookie_threshold: args.cookie_threshold,
        max_child_sas: args.max_child_sas.max(1),
        admin_socket: Some(args.admin_socket),
        dpd: std::time::Duration::from_secs(args.dpd_seconds),
        backoff: ike::sa::Backoff {
            first: std::time::Duration::from_millis(args.retransmit_ms.max(1)),
            max_sends: args.retransmit_sends.max(1),
        },
    };
    let mut d = match Daemon::new(opts, config, psk) {
        Ok(d) => d.with_certs(certs),
        Err(e) => {
            log::error(format_args!("IKE port: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let stop = std::cell::Cell::new(false);
    let r = d.run(std::os::fd::AsFd::as_fd(&signals), &|| {
        if !signals.take().is_empty() {
            stop.set(true);
        }
        stop.get()
    });
    let s = d.stats;
    log::info(format_args!(
        "stopping: {} ACQUIRE(s), {} IKE SA(s) established, {} failed, {} Child SA pair(s) installed, {} deleted, {} datagram(s) dropped",
        s.acquires, s.ike_established, s.ike_failed, s.children_installed, s.children_deleted, s.dropped
    ));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error(format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}
