//! The daemon's control socket: one-line text requests from administration tools, one
//! text reply each (`ok ...` or `error ...`), over a SOCK_SEQPACKET Unix socket. Only
//! privileged peers (root or `CAP_NET_ADMIN`) may use it.
//!
//! Requests:
//!
//! | request | reply |
//! |---|---|
//! | `stats` | the PF_KEY server counters, the SADB size and the reloads (`reloads_ok`, `reloads_failed`, `last_reload_failed` 0 or 1), `key=value` (numbers) per line |
//! | `counters` | the data plane's counters by name, then per SA packets, bytes and drops by reason, then the global drop reasons |
//! | `save` | saves the SAs to the configured save file |
//! | `acquire ah\|esp SRC DST` | what outbound policy does on an SA miss: asks the registered key managers with an ACQUIRE (default proposal: AES-GCM-16, or AES-CBC with HMAC-SHA-256; AH: HMAC-SHA-256), suppressed while one for the same need is pending; replies `sent seq=N key_managers=K` or `suppressed seq=N` |
//! | `policy VERB ...` (a policy text may follow on the next lines) | ipsecconf(8)'s requests: add, replace, remove, check, delete, flush, list, explain (see [`crate::policy`]) |
//! | `algs show`, `algs sync NAME` (the table text follows) | the ipsecalgs(8) table (see [`crate::algs`]) |
//! | `logger status\|getprop [NAME]\|setprop NAME=VALUE\|enable\|disable\|refresh\|restart` | the policy logger's service actions and properties (see [`crate::logger`]); what `ipsecadm logger ARGS` forwards |
//! | `prop show [NAME[,NAME...]] [PROTO]` | the tunable properties as `ipadm show-prop` shows them: `PROTO PROPERTY PERM CURRENT PERSISTENT DEFAULT POSSIBLE` (see [`crate::props`]) |
//! | `prop set [-t] NAME=VALUE [PROTO]` | validates and sets a property; without `-t` first writes it to the properties file; `ok NAME=VALUE` |
//! | `prop reset [-t] NAME [PROTO]` | back to the default (without `-t` also removed from the file) |
//! | `reload` | what SIGHUP does: re-reads the properties, policy and keys files, all or nothing (see [`crate::reload`]); `ok` + what was loaded, or `error` + why, with nothing changed |
//! | `natt-relay` | `ok relaying IKE on NAT-T port N`; from then on the connection receives the IKE that peers send to the NAT-T port, as `ike SRC_IP SRC_PORT DST_IP DST_PORT` + newline + message, and may send `send DST_IP DST_PORT [SRC_IP]` + newline + message (no reply unless `error ...`); see [`crate::relay`] |
//!
//! The data plane calls the same ACQUIRE path when a packet needs an SA that does not
//! exist; the `acquire` request lets an administrator (and the conformance suite) exercise
//! the key managers without traffic.

use std::net::{IpAddr, SocketAddr};

use ipsec_core::Proto;
use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};
use ipsec_pfkey::engine::{AcquireNeed, AcquireOutcome, AcquireRequest};
use ipsec_pfkey::wire::{Address, Comb, Proposal};

use crate::props::Props;
use crate::server::{now, Server};

/// Handles one request; returns the reply text. `save` is the daemon's save action.
pub fn handle(srv: &mut Server, request: &str, save: &mut dyn FnMut(&Server) -> String) -> String {
    if let Some(rest) = crate::policy::request(request) {
        return crate::policy::handle(srv, rest);
    }
    if let Some(rest) = crate::algs::request(request) {
        return crate::algs::handle(srv, rest);
    }
    if let Some(rest) = crate::props::request(request) {
        return crate::props::handle(srv, rest);
    }
    let words: Vec<&str> = request.split_whitespace().collect();
    if words.first() == Some(&"logger") {
        return crate::logger::request(request.trim_start().get(6..).unwrap_or_default());
    }
    match words.as_slice() {
        ["stats"] => {
            let s = srv.stats();
            let r = srv.lock().reload.clone();
            format!(
                "ok\nsas={}\nconnections={}\nclients={}\nmessages_in={}\nmessages_out={}\nrefused_unprivileged={}\noversized={}\ndropped_queue_full={}\nrefused_full={}\nreloads_ok={}\nreloads_failed={}\nlast_reload_failed={}\n",
                srv.lock().keys.sadb().len(),
                s.accepted,
                srv.client_count(),
                s.messages_in,
                s.messages_out,
                s.refused_unprivileged,
                s.oversized,
                s.dropped_queue_full,
                s.refused_full,
                r.ok,
                r.failed,
                u8::from(r.last_failed)
            )
        }
        ["reload"] => crate::reload::run(srv),
        ["save"] => save(srv),
        ["counters"] => counters(srv),
        ["acquire", proto, src, dst] => match acquire(srv, proto, src, dst) {
            Ok(s) => s,
            Err(e) => format!("error {e}"),
        },
        _ => format!(
            "error unknown request {:?} (expected stats, counters, save, reload, policy ..., prop ..., algs show|sync, acquire ah|esp SRC DST, logger ..., or natt-relay)",
            request.trim()
        ),
    }
}

/// The data plane's counters and, per SA, packets, bytes and drops by reason.
fn counters(srv: &Server) -> String {
    crate::stats::Snapshot::take(srv.counters(), srv.core()).control_text()
}

fn acquire(srv: &mut Server, proto: &str, src: &str, dst: &str) -> Result<String, String> {
    let proto = match proto {
        "ah" => Proto::Ah,
        "esp" => Proto::Esp,
        other => return Err(format!("SA type {other:?}: expected ah or esp")),
    };
    let addr = |s: &str| {
        s.parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an IP address"))
            .map(|a| Address::new(SocketAddr::new(a, 0)))
    };
    let (src, dst) = (addr(src)?, addr(dst)?);
    if src.addr.is_ipv4() != dst.addr.is_ipv4() {
        return Err("source and destination of different address families".into());
    }
    let req = AcquireRequest {
        need: AcquireNeed {
            proto,
            src,
            dst,
            inner_src: None,
            inner_dst: None,
        },
        proposal: default_proposal(proto, &srv.lock().props),
        eprop: None,
        kmc: None,
        ident_src: None,
        ident_dst: None,
    };
    let out = srv.lock().keys.acquire(now().0, &req);
    srv.deliver();
    Ok(match out {
        AcquireOutcome::Sent { seq, key_managers } => {
            format!("ok sent seq={seq} key_managers={key_managers}")
        }
        AcquireOutcome::Suppressed { seq } => format!("ok suppressed seq={seq}"),
    })
}

fn comb(auth: AuthAlg, encr: Option<EncrAlg>, props: &Props) -> Comb {
    let a = auth_info(auth);
    let mut c = Comb {
        auth: a.pfkey,
        auth_minbits: a.key_bits.min,
        auth_maxbits: a.key_bits.max,
        ..Comb::default()
    };
    crate::props::set_lifetimes(&mut c, props);
    if let Some(e) = encr {
        let e = encr_info(e);
        c.encrypt = e.pfkey;
        c.encrypt_minbits = e.key_bits.min;
        c.encrypt_maxbits = e.key_bits.max;
        c.encrypt_saltbits = u8::try_from(e.salt_bytes * 8).unwrap_or(0);
    }
    c
}

/// The proposal used when no policy names algorithms (replay window and lifetimes from
/// the properties).
pub fn default_proposal(proto: Proto, props: &Props) -> Proposal {
    let combs = match proto {
        Proto::Esp => vec![
            comb(AuthAlg::None, Some(EncrAlg::AesGcm16), props),
            comb(AuthAlg::HmacSha256, Some(EncrAlg::AesCbc), props),
        ],
        Proto::Ah => vec![comb(AuthAlg::HmacSha256, None, props)],
    };
    Proposal {
        replay: crate::props::replay(props),
        combs,
    }
}
