//! SPD lookup: the compiled index against the naive scan (every rule checked, highest priority
//! wins) in the same run, at 10, 1,000, 10,000 and 100,000 rules; the full outbound decision;
//! and compile time. The issue-4 bars: at 100,000 rules the median compiled lookup is under
//! 1 µs and at least 100x faster than the naive scan, and compiling takes under 2 s.
//!
//! The rule sets look like large host policies: mostly per-host and per-subnet rules (IPv4 /32,
//! /24, /16; IPv6 /128, /64), many with a protocol and a service port, a share of them bound to
//! a local address, a few bypass rules for services, and a few catch-alls; actions mix ESP, AH,
//! AH+ESP, `or` alternatives, drop and bypass. Packets hit specific rules (70%) or miss them
//! (30%), in both directions and both families.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use ipsec_core::spd::{
    analyze, Action, AlgSpec, AnalysisLimits, CompiledSpd, Dir, NaiveSpd, PacketKey, PolicyDir,
    PolicySet, PortRange, Prefix, Protection, Rule, SaSharing, Selector, Spd, TunnelNames,
};
use ipsec_crypto::{AuthAlg, EncrAlg};

const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];
const KEYS: usize = 4096;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SERVICES: [u16; 10] = [22, 25, 53, 80, 110, 143, 443, 993, 3306, 5432];

fn host_v4(r: &mut Rng) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (r.below(1 << 24) as u32))
}

fn host_v6(r: &mut Rng) -> Ipv6Addr {
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        r.below(256) as u16,
        r.below(4096) as u16,
        0,
        0,
        r.below(65536) as u16,
        r.below(65536) as u16,
    )
}

fn action(r: &mut Rng) -> Action {
    let esp = || Protection::esp(AlgSpec::of(EncrAlg::AesCbc));
    match r.below(20) {
        0..=7 => Action::ipsec(Protection::from_props(
            None,
            Some(AlgSpec::of(EncrAlg::AesGcm16)),
            None,
            SaSharing::Shared,
        )),
        8..=10 => Action::ipsec(Protection::from_props(
            None,
            Some(AlgSpec::of(EncrAlg::AesCbc)),
            Some(AlgSpec::of(AuthAlg::HmacSha256)),
            SaSharing::Unique,
        )),
        11..=12 => Action::ipsec(Protection::ah(AlgSpec::of(AuthAlg::HmacSha256))),
        13 => Action::ipsec(Protection::from_props(
            Some(AlgSpec::any()),
            Some(AlgSpec::any()),
            None,
            SaSharing::Shared,
        )),
        14 => Action::Ipsec(vec![
            esp(),
            Protection::esp(AlgSpec::of(EncrAlg::TripleDesCbc)),
        ]),
        15..=17 => Action::Drop,
        _ => Action::Bypass,
    }
}

/// A large host policy of `n` rules, and the host addresses its specific rules name.
fn policy(n: usize, seed: u64) -> (PolicySet, Vec<IpAddr>) {
    let mut r = Rng(seed | 1);
    let mut rules = Vec::with_capacity(n);
    let mut hosts = Vec::with_capacity(n);
    let locals = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
    // A few service bypass rules and catch-alls, wherever they fall in the file.
    for i in 0..n {
        let kind = if n >= 10 && i % (n / 10).max(1) == 7 {
            100
        } else {
            r.below(100)
        };
        let mut s = Selector::any();
        let dir = match r.below(10) {
            0..=1 => PolicyDir::Out,
            2 => PolicyDir::In,
            _ => PolicyDir::Both,
        };
        let mut act = action(&mut r);
        match kind {
            0..=59 => {
                let h = host_v4(&mut r);
                hosts.push(IpAddr::V4(h));
                let len = [32u8, 32, 32, 28, 24][r.below(5) as usize];
                s.raddr = Some(Prefix {
                    addr: IpAddr::V4(h),
                    len,
                });
            }
            60..=74 => {
                let h = host_v6(&mut r);
                hosts.push(IpAddr::V6(h));
                let len = [128u8, 128, 64][r.below(3) as usize];
                s.raddr = Some(Prefix {
                    addr: IpAddr::V6(h),
                    len,
                });
            }
            75..=89 => {
                let h = host_v4(&mut r);
                hosts.push(IpAddr::V4(h));
                s.raddr = Some(Prefix {
                    addr: IpAddr::V4(h),
                    len: [16u8, 20, 24][r.below(3) as usize],
                });
                s.laddr = Some(Prefix::host(IpAddr::V4(locals[r.below(2) as usize])));
            }
            90..=97 => {
                let h = host_v4(&mut r);
                hosts.push(IpAddr::V4(h));
                s.raddr = Some(Prefix {
                    addr: IpAddr::V4(h),
                    len: 8 + r.below(9) as u8,
                });
            }
            98 => {
                s.lport = Some(PortRange::single(SERVICES[r.below(10) as usize]));
                act = Action::Bypass;
            }
            _ => {
                // Catch-all for a protocol, or everything.
                if r.below(2) == 0 {
                    s.ulp = Some(6);
                }
                act = Action::ipsec(Protection::esp(AlgSpec::any()));
            }
        }
        if kind < 98 {
            match r.below(4) {
                0 => {
                    s.ulp = Some(6);
                    s.rport = Some(PortRange::single(SERVICES[r.below(10) as usize]));
                }
                1 => s.ulp = Some([6u8, 17][r.below(2) as usize]),
                _ => {}
            }
        }
        rules.push(Rule::new(s, dir, act));
    }
    (PolicySet::from_rules(rules), hosts)
}

fn keys(hosts: &[IpAddr], seed: u64) -> Vec<PacketKey> {
    let mut r = Rng(seed | 1);
    (0..KEYS)
        .map(|_| {
            let hit = r.below(10) < 7 && !hosts.is_empty();
            let remote = if hit {
                hosts[r.below(hosts.len() as u64) as usize]
            } else if r.below(4) == 0 {
                IpAddr::V6(host_v6(&mut r))
            } else {
                IpAddr::V4(host_v4(&mut r))
            };
            let local = match remote {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + r.below(2) as u8)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1)),
            };
            let dir = if r.below(2) == 0 { Dir::Out } else { Dir::In };
            let (src, dst) = match dir {
                Dir::Out => (local, remote),
                Dir::In => (remote, local),
            };
            let svc = SERVICES[r.below(10) as usize];
            let eph = 32768 + r.below(28000) as u16;
            let (sp, dp) = match dir {
                Dir::Out => (eph, svc),
                Dir::In => (svc, eph),
            };
            match r.below(10) {
                0..=5 => PacketKey::tcp(dir, src, dst, sp, dp),
                6..=8 => PacketKey::udp(dir, src, dst, sp, dp),
                _ => PacketKey::icmp(dir, src, dst, 8, 0),
            }
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("spd_lookup");
    for n in SIZES {
        let (set, hosts) = policy(n, 0x5eed_0000 + n as u64);
        let ks = keys(&hosts, 0xbeef);
        let mut names = TunnelNames::default();
        let t = Instant::now();
        let compiled = CompiledSpd::compile(Arc::new(set.clone()), &mut names).unwrap();
        let compile_time = t.elapsed();
        let naive = NaiveSpd::new(&set, &names);
        // The two must agree on every benchmark packet.
        let mut hits = 0;
        for k in &ks {
            let c1 = compiled.lookup(k).and_then(|e| e.source.rule_index());
            assert_eq!(c1, naive.lookup(k).map(|(i, _)| i), "{k}");
            hits += usize::from(c1.is_some());
        }
        eprintln!(
            "{n} rules: compiled in {compile_time:?}; {hits} of {} packets match a rule",
            ks.len()
        );
        g.bench_with_input(BenchmarkId::new("compiled", n), &n, |b, _| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                black_box(compiled.lookup(black_box(&ks[i])))
            })
        });
        if n >= 10_000 {
            g.sample_size(20).measurement_time(Duration::from_secs(8));
        }
        g.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                black_box(naive.lookup(black_box(&ks[i])))
            })
        });
        g.sample_size(100).measurement_time(Duration::from_secs(5));
    }
    g.finish();
}

fn decisions(c: &mut Criterion) {
    let n = 100_000;
    let (set, hosts) = policy(n, 0x5eed_0000 + n as u64);
    let ks = keys(&hosts, 0xbeef);
    let spd = Spd::with_policy(set).unwrap();
    let mut g = c.benchmark_group("spd_decision");
    g.bench_function(BenchmarkId::new("outbound_or_inbound_clear", n), |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & (KEYS - 1);
            let k = black_box(&ks[i]);
            match k.dir {
                Dir::Out => black_box(spd.outbound(k).basis),
                Dir::In => black_box(spd.inbound_clear(k).basis),
            }
        })
    });
    g.finish();
}

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("spd_compile");
    g.sample_size(10);
    for n in SIZES {
        let (set, _) = policy(n, 0x5eed_0000 + n as u64);
        let set = Arc::new(set);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || (Arc::clone(&set), TunnelNames::default()),
                |(s, mut names)| black_box(CompiledSpd::compile(s, &mut names).unwrap()),
                BatchSize::LargeInput,
            )
        });
        if n == 100_000 {
            let t = Instant::now();
            let w = analyze(&set, AnalysisLimits::default());
            eprintln!(
                "analysis of {n} rules: {:?}, {} warnings ({} incomplete)",
                t.elapsed(),
                w.len(),
                w.iter()
                    .filter(|x| matches!(x, ipsec_core::spd::Warning::Incomplete { .. }))
                    .count()
            );
        }
    }
    g.finish();
}

criterion_group!(benches, lookups, decisions, compile);
criterion_main!(benches);
