//! PF_KEY stress over the real socket (issue 5): 8 client threads send REGISTER, GETSPI,
//! UPDATE, ADD, DELETE, GET, DUMP and FLUSH in random order for `IRONSWAN_STRESS_SECONDS`
//! (default 30) while an observer client replays every broadcast it receives into a model
//! of the SADB's keys. Checked:
//!
//! * no deadlock: every request is answered within [`REPLY_TIMEOUT`], and the daemon still
//!   answers afterwards; the process is still running;
//! * every message received parses and is canonical; each reply carries its request's seq
//!   and pid; each DUMP ends with a seq-0 message; refusals are only the expected ones
//!   (EEXIST, ESRCH, and a keyed UPDATE of an SA someone else re-added);
//! * GETSPI never hands out an SPI (or one in 0..=255) that a coexisting SA with the same
//!   destination and protocol holds: the observer sees the daemon's changes in the daemon's
//!   order, so the model knows exactly which SAs coexisted with each GETSPI;
//! * the model and a final DUMP agree, and the counters agree with what the clients sent and
//!   received (nothing dropped).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ipsec_pfkey::consts::*;
use ipsec_pfkey::wire::Message;
use ipsec_pfkey::Diagnostic as D;

const WORKERS: usize = 8;
const SRC: &str = "10.0.0.1";
const DSTS: [&str; 4] = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "2001:db8::2"];
const SRC6: &str = "2001:db8::1";

/// A narrow GETSPI range the threads compete for (exhaustion, the scan path).
const NARROW: (u32, u32) = (256, 511);
/// The SPIs ADD and DELETE pick from (collisions on purpose).
const ADD_SPIS: (u32, u32) = (256, 1279);

fn seconds() -> u64 {
    std::env::var("IRONSWAN_STRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn src_for(dst: &str) -> &'static str {
    if dst.contains(':') {
        SRC6
    } else {
        SRC
    }
}

/// The identity of an SA in the model (every SA has the source of its family).
type Key = (u8, IpAddr, u32);

#[derive(Default)]
struct WorkerReport {
    ops: BTreeMap<&'static str, u64>,
    refused: BTreeMap<(u8, u8, u16), u64>,
    max_latency: Duration,
    getspi: Vec<(u8, IpAddr, u32)>,
}

fn worker(mut c: Client, seed: u64, stop: Arc<AtomicBool>) -> (Client, WorkerReport) {
    let mut rng = Rng::new(seed);
    let mut rep = WorkerReport::default();
    let mut larval: Vec<(u8, &'static str, u32)> = Vec::new();
    let mut added: Vec<(u8, &'static str, u32)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let dst = DSTS[rng.below(DSTS.len() as u64) as usize];
        let src = src_for(dst);
        let satype = if rng.below(3) == 0 {
            SADB_SATYPE_AH
        } else {
            SADB_SATYPE_ESP
        };
        let roll = rng.below(100);
        let t0 = Instant::now();
        let (name, r) = match roll {
            0..=3 => ("REGISTER", c.request(Message::new(SADB_REGISTER, satype))),
            4..=28 => {
                let (lo, hi) = if rng.below(10) < 7 {
                    (0, u32::MAX)
                } else {
                    NARROW
                };
                let r = c.request(getspi(satype, src, dst, lo, hi));
                if r.errno == 0 {
                    let spi = r.sa.unwrap().spi;
                    assert!(spi > 255 && spi >= lo && spi <= hi, "GETSPI gave {spi}");
                    rep.getspi.push((satype, dst.parse().unwrap(), spi));
                    larval.push((satype, dst, spi));
                }
                ("GETSPI", r)
            }
            29..=38 => match larval.pop() {
                Some((t, d, spi)) => {
                    let mut up = if t == SADB_SATYPE_AH {
                        ah_add(spi, src_for(d), d)
                    } else {
                        esp_add(spi, src_for(d), d)
                    };
                    up.msg_type = SADB_UPDATE;
                    ("UPDATE", c.request(up))
                }
                None => ("GET", c.request(sel(SADB_GET, satype, 0x5555, src, dst))),
            },
            39..=63 => {
                let spi = ADD_SPIS.0 + rng.below(u64::from(ADD_SPIS.1 - ADD_SPIS.0 + 1)) as u32;
                let m = if satype == SADB_SATYPE_AH {
                    ah_add(spi, src, dst)
                } else {
                    esp_add(spi, src, dst)
                };
                let r = c.request(m);
                if r.errno == 0 {
                    added.push((satype, dst, spi));
                }
                ("ADD", r)
            }
            64..=78 => {
                // Mostly an SA this client added (which may be gone), else any.
                let (t, d, spi) = match added.pop() {
                    Some(x) if rng.below(4) != 0 => x,
                    _ => (
                        satype,
                        dst,
                        ADD_SPIS.0 + rng.below(u64::from(ADD_SPIS.1 - ADD_SPIS.0 + 1)) as u32,
                    ),
                };
                ("DELETE", c.request(sel(SADB_DELETE, t, spi, src_for(d), d)))
            }
            79..=92 => {
                let spi = ADD_SPIS.0 + rng.below(u64::from(ADD_SPIS.1 - ADD_SPIS.0 + 1)) as u32;
                let r = c.request(sel(SADB_GET, satype, spi, src, dst));
                if r.errno == 0 {
                    let sa = r.sa.unwrap();
                    assert_eq!(sa.spi, spi);
                    // Larval SAs (the narrow GETSPI range overlaps) have no keys yet.
                    assert!(
                        sa.state == SADB_SASTATE_LARVAL
                            || r.key_encrypt.is_some()
                            || r.key_auth.is_some()
                    );
                }
                ("GET", r)
            }
            93..=97 => {
                let t = [0, SADB_SATYPE_AH, SADB_SATYPE_ESP][rng.below(3) as usize];
                let recs = c.dump(t);
                for r in &recs {
                    assert!(t == 0 || r.satype == t);
                }
                *rep.ops.entry("DUMP").or_default() += 1;
                rep.max_latency = rep.max_latency.max(t0.elapsed());
                c.backlog.clear();
                continue;
            }
            _ => {
                let t = [0, SADB_SATYPE_AH, SADB_SATYPE_ESP][rng.below(3) as usize];
                ("FLUSH", c.request(Message::new(SADB_FLUSH, t)))
            }
        };
        rep.max_latency = rep.max_latency.max(t0.elapsed());
        *rep.ops.entry(name).or_default() += 1;
        if r.errno != 0 {
            let expected = match (r.msg_type, r.errno) {
                (SADB_ADD | SADB_GETSPI, EEXIST) => r.diagnostic == 0,
                (SADB_DELETE | SADB_GET | SADB_UPDATE, ESRCH) => {
                    r.diagnostic == D::SaNotfound.code()
                }
                // Someone deleted our larval SA and someone else ADDed that SPI again.
                (SADB_UPDATE, EINVAL) => {
                    r.diagnostic == D::EkeyPresent.code() || r.diagnostic == D::AkeyPresent.code()
                }
                _ => false,
            };
            assert!(expected, "unexpected refusal of {name}: {r:?}");
            *rep.refused
                .entry((r.msg_type, r.errno, r.diagnostic))
                .or_default() += 1;
        }
        // Other clients' broadcasts are not this worker's business (they are counted and
        // were checked on receipt).
        c.backlog.clear();
    }
    (c, rep)
}

#[derive(Default)]
struct Model {
    sas: HashSet<Key>,
    broadcasts: u64,
    getspi_seen: u64,
}

impl Model {
    /// Applies one message as the daemon ordered it.
    fn apply(&mut self, m: &Message) {
        if m.errno != 0 {
            return;
        }
        let key = |m: &Message| -> Key { (m.satype, m.dst.unwrap().ip(), m.sa.unwrap().spi) };
        match m.msg_type {
            SADB_GETSPI => {
                self.getspi_seen += 1;
                let k = key(m);
                assert!(k.2 > 255, "GETSPI handed out a reserved SPI: {m:?}");
                assert!(
                    self.sas.insert(k),
                    "GETSPI handed out SPI {:#x} for {} while an SA with it existed",
                    k.2,
                    k.1
                );
            }
            SADB_ADD => {
                assert!(self.sas.insert(key(m)), "ADD of an existing SA: {m:?}");
            }
            SADB_UPDATE => {
                assert!(self.sas.contains(&key(m)), "UPDATE of no SA: {m:?}");
            }
            SADB_DELETE => {
                assert!(self.sas.remove(&key(m)), "DELETE of no SA: {m:?}");
            }
            SADB_FLUSH => {
                let t = m.satype;
                self.sas.retain(|k| t != 0 && k.0 != t);
            }
            SADB_REGISTER | SADB_EXPIRE | SADB_ACQUIRE => {}
            other => panic!("unexpected broadcast type {other}: {m:?}"),
        }
        self.broadcasts += 1;
    }
}

fn observer(mut c: Client, stop: Arc<AtomicBool>) -> (Client, Model) {
    let mut model = Model::default();
    let mut idle_since = Instant::now();
    loop {
        match c.recv(Duration::from_millis(100)) {
            Some(m) => {
                model.apply(&m);
                idle_since = Instant::now();
            }
            None => {
                if stop.load(Ordering::Relaxed) && idle_since.elapsed() > Duration::from_millis(500)
                {
                    return (c, model);
                }
            }
        }
    }
}

#[test]
fn eight_clients_in_random_order_keep_the_invariants() {
    let secs = seconds();
    let mut d = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_ipsecd")),
        "stress",
        &[
            "--larval-timeout",
            "1000000",
            "--client-queue",
            "10000000",
            "-q",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let obs = {
        let c = d.client();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || observer(c, stop))
    };
    let seed0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("stress: {WORKERS} clients for {secs} s, seed {seed0:#x}");
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let c = d.client();
            let stop = Arc::clone(&stop);
            let seed = seed0 ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            std::thread::spawn(move || worker(c, seed, stop))
        })
        .collect();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            workers.iter().all(|w| !w.is_finished()),
            "a client thread stopped early (see its panic)"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let mut clients = Vec::new();
    let mut total = WorkerReport::default();
    for w in workers {
        let (c, rep) = w.join().expect("client thread panicked");
        for (k, v) in rep.ops {
            *total.ops.entry(k).or_default() += v;
        }
        for (k, v) in rep.refused {
            *total.refused.entry(k).or_default() += v;
        }
        total.max_latency = total.max_latency.max(rep.max_latency);
        total.getspi.extend(rep.getspi);
        clients.push(c);
    }
    let elapsed = t0.elapsed();
    let (obs_client, model) = obs.join().expect("observer panicked");
    clients.push(obs_client);

    // The daemon still answers, and its SADB is the model's.
    let mut check = d.client();
    let t1 = Instant::now();
    let recs = check.dump(SADB_SATYPE_UNSPEC);
    let dump_time = t1.elapsed();
    let dumped: HashSet<Key> = recs
        .iter()
        .map(|r| (r.satype, r.dst.unwrap().ip(), r.sa.unwrap().spi))
        .collect();
    assert_eq!(dumped.len(), recs.len(), "a key appears twice in the dump");
    assert_eq!(
        dumped, model.sas,
        "the observer's model and the DUMP differ"
    );
    clients.push(check);
    for c in &mut clients {
        c.collect(Duration::from_millis(100));
    }
    let st = d.stats();
    let sent: u64 = clients.iter().map(|c| c.sent).sum();
    let received: u64 = clients.iter().map(|c| c.received).sum();
    assert_eq!(st["messages_in"], sent, "{st:?}");
    assert_eq!(st["messages_out"], received, "{st:?}");
    assert_eq!(st["dropped_queue_full"], 0, "{st:?}");
    assert_eq!(st["sas"], recs.len() as u64);
    assert_eq!(st["clients"], (WORKERS + 2) as u64);
    assert_eq!(st["refused_unprivileged"] + st["oversized"], 0);
    let mut c = d.client();
    c.ok(esp_add(0x7777_7777, SRC, DSTS[0]));
    assert!(d.alive(), "ipsecd died");

    // Informational: repeats of GETSPI SPIs over the whole run (legitimate after the
    // first holder is gone; the model checked that no two holders coexisted).
    let wide: Vec<_> = total
        .getspi
        .iter()
        .filter(|k| !(NARROW.0..=NARROW.1).contains(&k.2))
        .collect();
    let distinct: BTreeSet<_> = wide.iter().collect();
    let ops: u64 = total.ops.values().sum();
    eprintln!(
        "stress: {ops} requests in {elapsed:.1?} ({:.0}/s), {:?}; refusals {:?}; \
         max latency {:?}; {} broadcasts seen by the observer; {} wide-range GETSPIs, {} repeats; \
         final SADB {} SAs (DUMP {dump_time:?}); daemon {st:?}",
        ops as f64 / elapsed.as_secs_f64(),
        total.ops,
        total.refused,
        total.max_latency,
        model.broadcasts,
        wide.len(),
        wide.len() - distinct.len(),
        recs.len(),
    );
    assert_eq!(model.getspi_seen, total.getspi.len() as u64);
    assert!(total.max_latency < REPLY_TIMEOUT);
}
