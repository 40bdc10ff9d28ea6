//! rtnetlink against the real kernel: links, addresses, routes and the wg-quick style
//! policy routing ipsecd installs, each change checked with `ip -j` (iproute2's own view)
//! and each undone and checked gone; the errors carry the kernel's errno.
//!
//! Needs root and iproute2. Each test creates its own network namespace
//! (`ip netns add ironswan-nl-<pid>-<n>`), re-executes this test binary inside it with
//! `ip netns exec`, and deletes it afterwards (a Drop guard, so also on failure); the
//! host's own network configuration is never touched. Links are `dummy` devices, or a veth
//! pair with its peer up where the kernel has no dummy driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use ipsec_sys::netlink::{Family, Netlink, Route, RouteKind, Rule, RT_TABLE_MAIN};
use serde_json::{json, Value};

/// Set (to the namespace's name) in the re-executed inner run.
const INNER: &str = "IRONSWAN_NETLINK_TEST_NETNS";

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;
const ENETUNREACH: i32 = 101;
const EADDRNOTAVAIL: i32 = 99;

/// The private table and mark, as wg-quick picks them (51820 = 0xca6c).
const TABLE: u32 = 51820;
const MARK: u32 = 0xca6c;

/// Deletes the namespace when the outer test ends, however it ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let ok = Command::new("ip")
            .args(["netns", "del", &self.0])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not delete network namespace {}", self.0);
        }
    }
}

/// In the outer run: runs `test` inside a fresh network namespace and returns true (the
/// caller then returns). In the inner run: returns false (the caller does the work).
fn run_inside_netns(test: &str) -> bool {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    if std::env::var_os(INNER).is_some() {
        return false;
    }
    if ipsec_sys::geteuid() != 0 {
        eprintln!("skipped: {test} needs root (CI runs as root)");
        return true;
    }
    let name = format!(
        "ironswan-nl-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let made = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipped: {test}: cannot create a network namespace (`ip netns add` failed)");
        return true;
    }
    let _ns = Netns(name.clone());
    let out = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, &name)
        .output()
        .expect("ip netns exec runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{test} failed inside {name}");
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run inside {name}"
    );
    true
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2) runs");
    assert!(st.success(), "ip {args:?}");
}

/// `ip -j ARGS`, parsed.
fn ip_json(args: &[&str]) -> Value {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .expect("ip (iproute2) runs");
    assert!(out.status.success(), "ip -j {args:?}");
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return json!([]);
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether some object in `list` has every field of `pattern` with the same value.
fn has(list: &Value, pattern: &Value) -> bool {
    let (Some(list), Some(pattern)) = (list.as_array(), pattern.as_object()) else {
        return false;
    };
    list.iter()
        .any(|item| pattern.iter().all(|(k, v)| item.get(k) == Some(v)))
}

#[track_caller]
fn assert_has(list: &Value, pattern: Value) {
    assert!(has(list, &pattern), "{pattern} not in {list:#}");
}

#[track_caller]
fn assert_lacks(list: &Value, pattern: Value) {
    assert!(!has(list, &pattern), "{pattern} still in {list:#}");
}

#[track_caller]
fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    let e = r.expect_err("the kernel refuses this");
    e.raw_os_error()
        .unwrap_or_else(|| panic!("{e:?} carries no errno"))
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Creates link `name` (a dummy, or a veth whose peer `<name>p` is up) with IPv6 duplicate
/// address detection off, so its addresses are usable at once. Returns its index, looked up
/// through the API.
fn make_link(nl: &mut Netlink, name: &str) -> u32 {
    let dummy = Command::new("ip")
        .args(["link", "add", name, "type", "dummy"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !dummy {
        let peer = format!("{name}p");
        ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "up"]);
    }
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/accept_dad"), "0").unwrap();
    nl.link_index(name).unwrap()
}

fn link_json(name: &str) -> Value {
    ip_json(&["link", "show", "dev", name])[0].clone()
}

fn link_flags(name: &str) -> Vec<String> {
    serde_json::from_value(link_json(name)["flags"].clone()).unwrap()
}

#[test]
fn links_and_addresses() {
    if run_inside_netns("links_and_addresses") {
        return;
    }
    let mut nl = Netlink::open().unwrap();
    let lo = nl.link_index("lo").unwrap();
    assert_eq!(lo, 1);
    let d0 = make_link(&mut nl, "d0");
    assert_eq!(link_json("d0")["ifindex"], json!(d0));
    assert_eq!(errno(nl.link_index("nosuch0")), ENODEV);
    let long = nl.link_index("a-name-far-too-long").unwrap_err();
    assert_eq!(long.kind(), io::ErrorKind::InvalidInput);

    // Up, MTU, down.
    assert!(!link_flags("d0").contains(&"UP".to_owned()));
    nl.link_set_up(d0, true).unwrap();
    assert!(link_flags("d0").contains(&"UP".to_owned()));
    nl.link_set_mtu(d0, 1400).unwrap();
    assert_eq!(link_json("d0")["mtu"], json!(1400));
    assert_eq!(errno(nl.link_set_mtu(d0, 1 << 20)), EINVAL);
    assert_eq!(errno(nl.link_set_mtu(9999, 1400)), ENODEV);
    assert_eq!(errno(nl.link_set_up(9999, true)), ENODEV);

    // IPv4 and IPv6 addresses.
    nl.addr_add(d0, addr("10.10.0.1"), 24).unwrap();
    nl.addr_add(d0, addr("fd00:1::1"), 64).unwrap();
    let info = &link_addrs("d0");
    assert_has(
        info,
        json!({"family": "inet", "local": "10.10.0.1", "prefixlen": 24}),
    );
    assert_has(
        info,
        json!({"family": "inet6", "local": "fd00:1::1", "prefixlen": 64}),
    );
    assert_eq!(errno(nl.addr_add(d0, addr("10.10.0.1"), 24)), EEXIST);
    assert_eq!(errno(nl.addr_add(d0, addr("fd00:1::1"), 64)), EEXIST);
    assert_eq!(errno(nl.addr_add(9999, addr("10.10.0.9"), 24)), ENODEV);
    let bad = nl.addr_add(d0, addr("10.10.0.9"), 33).unwrap_err();
    assert_eq!(bad.kind(), io::ErrorKind::InvalidInput);
    // The kernel derived the connected route from the address.
    assert_has(
        &ip_json(&["route", "show", "table", "main"]),
        json!({"dst": "10.10.0.0/24", "dev": "d0"}),
    );

    nl.addr_del(d0, addr("10.10.0.1"), 24).unwrap();
    nl.addr_del(d0, addr("fd00:1::1"), 64).unwrap();
    let info = &link_addrs("d0");
    assert_lacks(info, json!({"local": "10.10.0.1"}));
    assert_lacks(info, json!({"local": "fd00:1::1"}));
    assert_eq!(errno(nl.addr_del(d0, addr("10.10.0.1"), 24)), EADDRNOTAVAIL);
    assert_eq!(errno(nl.addr_del(d0, addr("fd00:1::1"), 64)), EADDRNOTAVAIL);

    nl.link_set_up(d0, false).unwrap();
    assert!(!link_flags("d0").contains(&"UP".to_owned()));
}

fn link_addrs(name: &str) -> Value {
    ip_json(&["addr", "show", "dev", name])[0]["addr_info"].clone()
}

/// d0 up with 10.10.0.1/24 and fd00:1::1/64.
fn uplink(nl: &mut Netlink) -> u32 {
    let lo = nl.link_index("lo").unwrap();
    nl.link_set_up(lo, true).unwrap();
    let d0 = make_link(nl, "d0");
    nl.link_set_up(d0, true).unwrap();
    nl.addr_add(d0, addr("10.10.0.1"), 24).unwrap();
    nl.addr_add(d0, addr("fd00:1::1"), 64).unwrap();
    d0
}

/// A route as listed by `routes_in_table`, for comparison: the kernel reports IPv6 routes
/// without a metric at 1024.
fn listed(mut r: Route) -> Route {
    if r.dst.is_ipv6() && r.metric.is_none() {
        r.metric = Some(1024);
    }
    r
}

#[test]
fn routes_in_main_and_private_tables() {
    if run_inside_netns("routes_in_main_and_private_tables") {
        return;
    }
    let mut nl = Netlink::open().unwrap();
    let d0 = uplink(&mut nl);

    // Main table: ip route add 10.20.0.0/16 dev d0 metric 100
    let main = Route {
        oif: Some(d0),
        metric: Some(100),
        ..Route::new(addr("10.20.0.0"), 16)
    };
    nl.route_add(&main).unwrap();
    assert_has(
        &ip_json(&["route", "show", "table", "main"]),
        json!({"dst": "10.20.0.0/16", "dev": "d0", "metric": 100, "scope": "link"}),
    );
    let got = nl.route_get(addr("10.20.1.1"), None).unwrap();
    assert_eq!(
        (got.table, got.kind, got.oif, got.gateway),
        (RT_TABLE_MAIN, RouteKind::Unicast, Some(d0), None)
    );
    assert_eq!(got.src, Some(addr("10.10.0.1")));

    // A private table (past 255, so only in RTA_TABLE), both families.
    let in_table = |r: Route| Route { table: TABLE, ..r };
    let routes = [
        in_table(Route {
            oif: Some(d0),
            src: Some(addr("10.10.0.1")),
            mtu: Some(1380),
            ..Route::new(addr("10.30.0.0"), 16)
        }),
        in_table(Route {
            gateway: Some(addr("10.10.0.2")),
            ..Route::new(addr("10.31.0.0"), 16)
        }),
        in_table(Route {
            oif: Some(d0),
            ..Route::new(addr("0.0.0.0"), 0)
        }),
        in_table(Route {
            kind: RouteKind::Blackhole,
            metric: Some(4000),
            ..Route::new(addr("10.40.0.0"), 16)
        }),
        in_table(Route {
            oif: Some(d0),
            src: Some(addr("fd00:1::1")),
            mtu: Some(1380),
            ..Route::new(addr("fd00:2::"), 48)
        }),
        in_table(Route {
            gateway: Some(addr("fd00:1::2")),
            oif: Some(d0),
            metric: Some(300),
            ..Route::new(addr("fd00:3::"), 48)
        }),
    ];
    for r in &routes {
        nl.route_add(r).unwrap();
    }
    let t = TABLE.to_string();
    let v4 = ip_json(&["-4", "route", "show", "table", &t]);
    assert_has(
        &v4,
        json!({"dst": "10.30.0.0/16", "dev": "d0", "prefsrc": "10.10.0.1",
               "metrics": [{"mtu": 1380}]}),
    );
    assert_has(
        &v4,
        json!({"dst": "10.31.0.0/16", "gateway": "10.10.0.2", "dev": "d0"}),
    );
    assert_has(&v4, json!({"dst": "default", "dev": "d0"}));
    assert_has(
        &v4,
        json!({"type": "blackhole", "dst": "10.40.0.0/16", "metric": 4000}),
    );
    assert_eq!(v4.as_array().unwrap().len(), 4, "{v4:#}");
    let v6 = ip_json(&["-6", "route", "show", "table", &t]);
    assert_has(
        &v6,
        json!({"dst": "fd00:2::/48", "dev": "d0", "prefsrc": "fd00:1::1",
               "metrics": [{"mtu": 1380}]}),
    );
    assert_has(
        &v6,
        json!({"dst": "fd00:3::/48", "gateway": "fd00:1::2", "dev": "d0", "metric": 300}),
    );
    assert_eq!(v6.as_array().unwrap().len(), 2, "{v6:#}");

    // The API's own listing agrees (the gateway route's oif is filled in by the kernel).
    let mut want: Vec<Route> = routes.iter().copied().map(listed).collect();
    want[1].oif = Some(d0);
    let mut have = nl.routes_in_table(TABLE).unwrap();
    let key = |r: &Route| (r.dst, r.prefix_len);
    want.sort_by_key(key);
    have.sort_by_key(key);
    assert_eq!(have, want);
    assert!(nl.routes_in_table(TABLE + 1).unwrap().is_empty());

    // Errors.
    assert_eq!(errno(nl.route_add(&main)), EEXIST);
    assert_eq!(errno(nl.route_add(&routes[4])), EEXIST);
    let no_dev = Route {
        oif: Some(9999),
        ..Route::new(addr("10.60.0.0"), 16)
    };
    assert_eq!(errno(nl.route_add(&no_dev)), ENODEV);
    let far_gateway = Route {
        gateway: Some(addr("192.0.2.1")),
        ..Route::new(addr("10.61.0.0"), 16)
    };
    assert_eq!(errno(nl.route_add(&far_gateway)), ENETUNREACH);
    let host_bits = Route {
        oif: Some(d0),
        ..Route::new(addr("10.62.0.1"), 16)
    };
    assert_eq!(errno(nl.route_add(&host_bits)), EINVAL);
    let mixed = Route {
        gateway: Some(addr("fd00:1::2")),
        ..Route::new(addr("10.63.0.0"), 16)
    };
    let e = nl.route_add(&mixed).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(errno(nl.route_get(addr("192.0.2.1"), None)), ENETUNREACH);

    // Remove everything and check it is gone.
    nl.route_del(&main).unwrap();
    for r in &routes {
        nl.route_del(r).unwrap();
    }
    assert_lacks(
        &ip_json(&["route", "show", "table", "main"]),
        json!({"dst": "10.20.0.0/16"}),
    );
    assert_eq!(ip_json(&["-4", "route", "show", "table", &t]), json!([]));
    assert_eq!(ip_json(&["-6", "route", "show", "table", &t]), json!([]));
    assert!(nl.routes_in_table(TABLE).unwrap().is_empty());
    assert_eq!(errno(nl.route_del(&main)), ESRCH);
    assert_eq!(errno(nl.route_del(&routes[4])), ESRCH);
}

/// wg-quick's rules for one family: `ip rule add not fwmark M table T` and
/// `ip rule add table main suppress_prefixlength 0`.
fn wg_rules(family: Family) -> [Rule; 2] {
    [
        Rule {
            priority: 32765,
            fwmark: Some((MARK, u32::MAX)),
            invert: true,
            ..Rule::new(family, TABLE)
        },
        Rule {
            priority: 32764,
            suppress_prefixlen: Some(0),
            ..Rule::new(family, RT_TABLE_MAIN)
        },
    ]
}

fn rules_json(family: Family) -> Value {
    let f = match family {
        Family::V4 => "-4",
        Family::V6 => "-6",
    };
    ip_json(&[f, "rule", "show"])
}

#[test]
fn marked_packets_bypass_the_tunnel_table() {
    if run_inside_netns("marked_packets_bypass_the_tunnel_table") {
        return;
    }
    let mut nl = Netlink::open().unwrap();
    let d0 = uplink(&mut nl);
    // t0 stands where ipsecd's TUN will be.
    let t0 = make_link(&mut nl, "t0");
    nl.link_set_up(t0, true).unwrap();
    nl.link_set_mtu(t0, 1420).unwrap();

    // The uplink's default routes in main; everything into t0 in the tunnel table, with a
    // narrower path MTU towards one network.
    let main_routes = [
        Route {
            oif: Some(d0),
            gateway: Some(addr("10.10.0.254")),
            ..Route::new(addr("0.0.0.0"), 0)
        },
        Route {
            oif: Some(d0),
            gateway: Some(addr("fd00:1::fe")),
            ..Route::new(addr("::"), 0)
        },
    ];
    let tunnel_routes = [
        Route {
            table: TABLE,
            oif: Some(t0),
            ..Route::new(addr("0.0.0.0"), 0)
        },
        Route {
            table: TABLE,
            oif: Some(t0),
            ..Route::new(addr("::"), 0)
        },
        Route {
            table: TABLE,
            oif: Some(t0),
            mtu: Some(1380),
            ..Route::new(addr("10.50.0.0"), 16)
        },
    ];
    for r in main_routes.iter().chain(&tunnel_routes) {
        nl.route_add(r).unwrap();
    }

    // Before the rules, the tunnel table is not consulted.
    let got = nl.route_get(addr("198.51.100.7"), None).unwrap();
    assert_eq!((got.table, got.oif), (RT_TABLE_MAIN, Some(d0)));

    for family in [Family::V4, Family::V6] {
        for rule in &wg_rules(family) {
            nl.rule_add(rule).unwrap();
        }
        let rules = rules_json(family);
        assert_has(
            &rules,
            json!({"priority": 32765, "not": null, "fwmark": "0xca6c", "table": "51820"}),
        );
        assert_has(
            &rules,
            json!({"priority": 32764, "table": "main", "suppress_prefixlen": 0}),
        );
        for rule in &wg_rules(family) {
            assert_eq!(errno(nl.rule_add(rule)), EEXIST, "{rule:?}");
        }
    }

    // Unmarked lookups go to the tunnel table, marked ones (ipsecd's own packets) to main.
    for (dst, gw) in [
        ("198.51.100.7", "10.10.0.254"),
        ("2001:db8::7", "fd00:1::fe"),
    ] {
        let got = nl.route_get(addr(dst), None).unwrap();
        assert_eq!((got.table, got.oif, got.gateway), (TABLE, Some(t0), None));
        let got = nl.route_get(addr(dst), Some(MARK)).unwrap();
        assert_eq!(
            (got.table, got.oif, got.gateway),
            (RT_TABLE_MAIN, Some(d0), Some(addr(gw)))
        );
        // Another mark is not ipsecd's.
        let got = nl.route_get(addr(dst), Some(MARK + 1)).unwrap();
        assert_eq!(got.table, TABLE);
    }
    // suppress_prefixlength 0: main's more specific routes still win, its default does not.
    let got = nl.route_get(addr("10.10.0.5"), None).unwrap();
    assert_eq!(
        (got.table, got.oif, got.gateway),
        (RT_TABLE_MAIN, Some(d0), None)
    );
    assert_eq!(got.src, Some(addr("10.10.0.1")));
    // The path MTU towards a peer network.
    let got = nl.route_get(addr("10.50.1.1"), None).unwrap();
    assert_eq!((got.table, got.oif, got.mtu), (TABLE, Some(t0), Some(1380)));
    let got = nl.route_get(addr("198.51.100.7"), None).unwrap();
    assert_eq!(got.mtu, None, "the link's MTU applies");

    // Fail closed: with a blackhole behind the tunnel routes, losing the TUN (and with it
    // its routes) does not send protected traffic out in clear through main.
    let closed = Route {
        table: TABLE,
        kind: RouteKind::Blackhole,
        metric: Some(u32::MAX),
        ..Route::new(addr("0.0.0.0"), 0)
    };
    nl.route_add(&closed).unwrap();
    ip(&["link", "del", "t0"]);
    assert_eq!(errno(nl.route_get(addr("198.51.100.7"), None)), EINVAL);
    let got = nl.route_get(addr("198.51.100.7"), Some(MARK)).unwrap();
    assert_eq!((got.table, got.oif), (RT_TABLE_MAIN, Some(d0)));
    nl.route_del(&closed).unwrap();
    assert!(nl.routes_in_table(TABLE).unwrap().is_empty());

    // A rule without a priority gets one from the kernel, just before the others.
    let auto = Rule::new(Family::V4, 100);
    nl.rule_add(&auto).unwrap();
    assert_has(
        &rules_json(Family::V4),
        json!({"priority": 32763, "table": "100"}),
    );
    nl.rule_del(&auto).unwrap();
    assert_lacks(&rules_json(Family::V4), json!({"table": "100"}));

    // Remove the rules: only the kernel's defaults remain (IPv6 has no `default` table rule).
    for family in [Family::V4, Family::V6] {
        for rule in &wg_rules(family) {
            nl.rule_del(rule).unwrap();
            assert_eq!(errno(nl.rule_del(rule)), ENOENT, "{rule:?}");
        }
        let prios: Vec<u64> = rules_json(family)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["priority"].as_u64().unwrap())
            .collect();
        let defaults: &[u64] = match family {
            Family::V4 => &[0, 32766, 32767],
            Family::V6 => &[0, 32766],
        };
        assert_eq!(prios, defaults, "{family:?}");
    }
    for r in &main_routes {
        nl.route_del(r).unwrap();
    }
    assert_lacks(
        &ip_json(&["-4", "route", "show", "table", "main"]),
        json!({"dst": "default"}),
    );
    assert_lacks(
        &ip_json(&["-6", "route", "show", "table", "main"]),
        json!({"dst": "default"}),
    );
}
