//! ipsecd: the Ironswan IPsec daemon. So far it serves PF_KEY v2 on a local socket over the
//! SADB (the key engine of ipsec-pfkey), loads the keys file at start and saves the SAs
//! atomically; with `--tun` it runs the data plane.
//!
//! Signals: SIGTERM and SIGINT stop it cleanly (saving the SAs to `--save-file` when one is
//! given); SIGUSR1 saves the SAs now; SIGHUP reloads the properties, policy and keys files,
//! all or nothing (see [`reload`]), and refreshes the policy logger's properties.
//!
//! Under systemd (`Type=notify`) it tells the service manager it is ready (`READY=1` on
//! `$NOTIFY_SOCKET`) once its sockets are bound and its files loaded.
#![forbid(unsafe_code)]

mod algs;
mod control;
mod core;
mod cryptopool;
mod dataplane;
#[cfg(test)]
mod fuzz_text;
mod gso;
mod inverse;
mod iptun;
mod keys;
mod log;
mod logger;
mod metrics;
mod netsetup;
mod nft;
mod persock;
mod policy;
mod props;
mod relay;
mod reload;
mod server;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ipsec_core::spd::Spd;
use ipsec_core::Sadb;
use ipsec_pfkey::engine::{EngineConfig, KeyEngine};
use ipsec_sys::signal::{SignalPipe, SIGHUP, SIGINT, SIGTERM, SIGUSR1};

use server::{Control, Limits, Server};

/// Default PF_KEY socket path.
pub const DEFAULT_PFKEY_SOCKET: &str = "/run/ironswan/pfkey.sock";

/// Default control socket path.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/ironswan/control.sock";

/// The Ironswan IPsec daemon.
#[derive(Parser, Debug)]
#[command(name = "ipsecd", version)]
struct Args {
    /// Where to serve PF_KEY (a SOCK_SEQPACKET Unix socket; also $IRONSWAN_PFKEY_SOCKET).
    #[arg(long, env = "IRONSWAN_PFKEY_SOCKET", default_value = DEFAULT_PFKEY_SOCKET)]
    pfkey_socket: PathBuf,
    /// An ipseckey file loaded at start after flushing the SADB (and again on SIGHUP).
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// Where SIGUSR1 and a clean shutdown save the SAs (atomically, mode 0600).
    #[arg(long)]
    save_file: Option<PathBuf>,
    /// The control socket of the administration tools (privileged peers only).
    #[arg(long, env = "IRONSWAN_CONTROL_SOCKET", default_value = DEFAULT_CONTROL_SOCKET)]
    control_socket: PathBuf,
    /// The per-socket policy service (IP_SEC_OPT; any user may connect), served with a data
    /// plane (--tun). Default: /run/ironswan/sockpolicy.sock with the default control
    /// socket, else the control socket's path with `.sockpolicy` appended.
    #[arg(long, env = ipsec_sockopt::proto::SOCKET_ENV)]
    sockpolicy_socket: Option<PathBuf>,
    /// Run the data plane on this TUN device (e.g. `ipsec0`; `%d` lets the kernel number
    /// it). Without it ipsecd serves PF_KEY and the control socket only.
    #[arg(long)]
    tun: Option<String>,
    /// Firewall mark of the daemon's own packets (policy routing keeps them off the TUN).
    #[arg(long, default_value_t = 0x1500)]
    mark: u32,
    /// Routing table for protected destinations (policy routing into the TUN device).
    #[arg(long, default_value_t = 0x1500)]
    route_table: u32,
    /// Priority of the policy-routing rules (`not fwmark MARK table TABLE`).
    #[arg(long, default_value_t = 100)]
    rule_priority: u32,
    /// MTU of the TUN device: the path MTU minus the largest ESP/AH overhead.
    #[arg(long, default_value_t = 1400)]
    mtu: u32,
    /// Seconds without traffic after which an SA's key schedules are released (memory then
    /// follows the SAs in use; they are built again on the next packet).
    #[arg(long, default_value_t = 120)]
    key_idle_seconds: u64,
    /// Path MTU toward the peers (bytes of the protected packets on the wire).
    #[arg(long, default_value_t = 1500)]
    path_mtu: usize,
    /// Do not ask the TUN device for TCP segmentation and checksum offload.
    #[arg(long)]
    no_offload: bool,
    /// Send ESP in UDP packet by packet and receive it without UDP receive offload (by
    /// default runs of equal-sized packets to one peer go out as one UDP GSO send).
    #[arg(long)]
    no_udp_offload: bool,
    /// Threads running the data plane's crypto (AEAD seal and open), the data-plane thread
    /// included: 1 runs everything on the data-plane thread; N > 1 adds N - 1 crypto
    /// workers while policy, sequence numbers and replay windows stay on the data-plane
    /// thread in packet order. The control request `workers N` changes it at run time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// The outer endpoints of a tunnel that ipsecconf `tunnel NAME` rules name, as
    /// `NAME=LOCAL,REMOTE` (Solaris: `dladm create-iptun -a local=,remote=`); repeatable.
    /// ACQUIREs of the tunnel's policy then ask for SAs between these endpoints.
    #[arg(long = "tunnel", value_name = "NAME=LOCAL,REMOTE")]
    tunnels: Vec<iptun::TunnelEnds>,
    /// UDP port for NAT-T (ESP in UDP, RFC 3948); 0 disables it.
    #[arg(long, default_value_t = 4500)]
    natt_port: u16,
    /// Seconds between NAT keepalives, 0 for none (the start value of property
    /// nat-keepalive-interval; Solaris nat_keepalive_interval).
    #[arg(long, default_value_t = 20)]
    keepalive_interval: u64,
    /// An ipsecalgs(8) table file synced at start (default: the built-in table).
    #[arg(long)]
    algs_file: Option<PathBuf>,
    /// System-wide policy in ipsecconf(8) syntax, loaded at start (and again on SIGHUP,
    /// replacing the whole policy as `ipsecconf -Fa` does).
    #[arg(long)]
    policy_file: Option<PathBuf>,
    /// The properties file (`NAME=VALUE` lines): read at start and on SIGHUP, written by
    /// `ipsecadm set-prop` (atomically, mode 0600). Its values override the options.
    #[arg(long)]
    props_file: Option<PathBuf>,
    /// Packets queued per destination while an ACQUIRE is pending.
    #[arg(long, default_value_t = 32)]
    acquire_queue: usize,
    /// Seconds a larval SA (GETSPI) waits for its UPDATE (the start value of property
    /// larval-timeout).
    #[arg(long, default_value_t = 90)]
    larval_timeout: u64,
    /// Seconds an ACQUIRE suppresses another for the same need (the start value of property
    /// acquire-timeout).
    #[arg(long, default_value_t = 15)]
    acquire_timeout: u64,
    /// Most PF_KEY clients at once.
    #[arg(long, default_value_t = 1024)]
    max_clients: usize,
    /// Messages queued per client before further ones are dropped and counted.
    #[arg(long, default_value_t = 65536)]
    client_queue: usize,
    /// The policy logger's properties file (`logger setprop` writes it; created when
    /// missing). Without it the logger runs with the default properties.
    #[arg(long)]
    logger_config: Option<PathBuf>,
    /// Enable the policy logger at start (also when the properties file says
    /// `enabled=true`); ipsecd exits with an error if its log file cannot be opened.
    #[arg(long)]
    logger_enable: bool,
    /// Serve the counters in the Prometheus text format at http://ADDR:PORT/metrics
    /// (e.g. 127.0.0.1:9515); off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// More log output (-v: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less log output (errors only).
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    log::set_level(if args.quiet { 0 } else { 1 + args.verbose });
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error(format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    logger::init(args.logger_config.clone(), args.logger_enable)?;
    let seed = ipsec_sys::random_u64().map_err(|e| format!("getrandom: {e}"))?;
    let cfg = EngineConfig {
        larval_timeout: args.larval_timeout,
        acquire_timeout: args.acquire_timeout,
        ..EngineConfig::default()
    };
    let props = props::Props::new(
        &[
            (props::LARVAL_TIMEOUT, args.larval_timeout),
            (props::ACQUIRE_TIMEOUT, args.acquire_timeout),
            (props::NAT_KEEPALIVE_INTERVAL, args.keepalive_interval),
        ],
        args.props_file.clone(),
    )?;
    let mut engine = KeyEngine::new(Sadb::new(), cfg, ipsec_pfkey::rng::SeededRng::new(seed));
    if let Some(k) = &args.keys_file {
        let n = keys::load(&mut engine, k, server::now().0, &mut |_| {})?;
        log::info(format_args!("loaded {n} SA(s) from {}", k.display()));
    }
    let signals = SignalPipe::new(&[SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        .map_err(|e| format!("signals: {e}"))?;
    let limits = Limits {
        max_clients: args.max_clients,
        queue_messages: args.client_queue.max(2),
        ..Limits::default()
    };
    let mut spd = Spd::new();
    if args.natt_port != 0 {
        // The SPD's key-management bypass and the nftables table follow the NAT-T port.
        spd.tunables_mut().natt_port = args.natt_port;
    }
    let core = core::new(engine, spd);
    {
        let mut g = core::lock(&core);
        g.props = props;
        props::apply(&mut g);
        g.tunnel_ends = args.tunnels.clone();
        g.reload.policy_file = args.policy_file.clone();
        g.reload.keys_file = args.keys_file.clone();
        g.reload.algs_file = args.algs_file.clone();
        g.reload.keys_loaded();
    }
    let mut srv = Server::bind(&args.pfkey_socket, core, limits)
        .map_err(|e| format!("{}: {e}", args.pfkey_socket.display()))?;
    srv.bind_control(&args.control_socket)
        .map_err(|e| format!("{}: {e}", args.control_socket.display()))?;
    srv.set_save_file(args.save_file.clone());
    if let Some(p) = &args.algs_file {
        algs::load(&srv, p)?;
    }
    if let Some(p) = &args.policy_file {
        load_policy(&srv, p)?;
    }
    let dataplane = match &args.tun {
        Some(name) => {
            let cfg = dataplane::Config {
                tun_name: name.clone(),
                mark: args.mark,
                acquire_queue: args.acquire_queue,
                table: args.route_table,
                rule_priority: args.rule_priority,
                mtu: args.mtu,
                natt_port: args.natt_port,
                path_mtu: args.path_mtu,
                key_idle: args.key_idle_seconds,
                tunnel_ends: args.tunnels.clone(),
                offload: !args.no_offload,
                udp_offload: !args.no_udp_offload,
                workers: usize::from(args.workers),
            };
            let waker = srv.waker().map_err(|e| format!("waker: {e}"))?;
            let mut h = dataplane::start(std::sync::Arc::clone(srv.core()), cfg, waker)
                .map_err(|e| format!("data plane on {name}: {e}"))?;
            log::info(format_args!("data plane on {}", h.tun_name));
            srv.set_counters(std::sync::Arc::clone(&h.counters));
            if let Some(p) = h.ike.take() {
                srv.set_ike_relay(p);
            }
            let path = args.sockpolicy_socket.clone().unwrap_or_else(|| {
                if args.control_socket.as_os_str() == DEFAULT_CONTROL_SOCKET {
                    PathBuf::from(ipsec_sockopt::proto::DEFAULT_SOCKET)
                } else {
                    let mut p = args.control_socket.clone().into_os_string();
                    p.push(".sockpolicy");
                    PathBuf::from(p)
                }
            });
            let cfg = persock::Config {
                path: path.clone(),
                tun: h.tun_name.clone(),
                mark: args.mark,
                table: args.route_table.wrapping_add(1),
                priority: args.rule_priority.saturating_sub(1),
            };
            // Without it IP_SEC_OPT fails with EPROTONOSUPPORT; global policy still holds.
            let ps = persock::start(std::sync::Arc::clone(srv.core()), cfg)
                .map_err(|e| {
                    log::error(format_args!("per-socket policy on {}: {e}", path.display()))
                })
                .ok();
            Some((h, ps))
        }
        None => None,
    };
    if let Some(addr) = args.metrics_listen {
        let plane = dataplane
            .as_ref()
            .map(|h| std::sync::Arc::clone(&h.0.counters));
        let bound = metrics::start(addr, std::sync::Arc::clone(srv.core()), plane)
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        log::info(format_args!("metrics on http://{bound}/metrics"));
    }
    log::info(format_args!(
        "PF_KEY on {}, control on {}",
        srv.path().display(),
        args.control_socket.display()
    ));
    notify_ready();
    srv.run(&signals, |srv| {
        let mut control = Control::Continue;
        for s in signals.take() {
            match s {
                SIGTERM | SIGINT => control = Control::Stop,
                SIGUSR1 => {
                    srv.save_now();
                }
                SIGHUP => {
                    reload::run(srv);
                    // The policy logger re-reads its properties (SMF refresh; its restart
                    // applies them).
                    log::info(format_args!(
                        "policy logger: {}",
                        logger::request("refresh").trim_end()
                    ));
                }
                _ => {}
            }
        }
        control
    })
    .map_err(|e| format!("PF_KEY server: {e}"))?;
    if let Some((h, ps)) = dataplane {
        if let Some(ps) = ps {
            ps.stop();
        }
        h.stop();
    }
    if args.save_file.is_some() {
        srv.save_now();
    }
    let st = srv.stats();
    log::info(format_args!(
        "stopping: {} connection(s), {} message(s) in, {} out, {} refused (unprivileged), {} dropped (queue full)",
        st.accepted, st.messages_in, st.messages_out, st.refused_unprivileged, st.dropped_queue_full
    ));
    Ok(())
}

/// Tells systemd (`Type=notify`) that the daemon is ready: `READY=1` in one datagram to
/// `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace); nothing without it.
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|s| {
        let p = std::path::Path::new(&path);
        match p.to_str().and_then(|t| t.strip_prefix('@')) {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                s.send_to_addr(b"READY=1", &a)
            }
            None => s.send_to(b"READY=1", p),
        }
    });
    if let Err(e) = sent {
        log::error(format_args!(
            "telling systemd we are ready ({}): {e}",
            path.to_string_lossy()
        ));
    }
}

/// Loads an ipsecconf(8) file as `ipsecconf -a` would (through the policy store, so that
/// `ipsecconf -l` shows its entries as written); errors name the file, line and column.
fn load_policy(srv: &Server, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reply = policy::handle(srv, &format!(" add {}\n{text}", path.display()));
    if let Some(e) = reply.strip_prefix("error ") {
        return Err(e.trim_end().to_string());
    }
    for w in reply.lines().skip(1) {
        log::info(format_args!("{}: {w}", path.display()));
    }
    log::info(format_args!("loaded policy from {}", path.display()));
    Ok(())
}
