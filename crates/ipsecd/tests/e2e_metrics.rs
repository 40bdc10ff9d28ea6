//! End-to-end: the counters of a daemon with traffic and drops, as the Prometheus endpoint
//! (`--metrics-listen`) serves them and as `ipsecstat --json` prints them. Two namespaces
//! joined by a veth pair; host A holds a wrong key for B's replies, so A protects its pings
//! and drops every reply with `esp_bad_auth`. The exposition is checked by a strict parser
//! of the text format (names, labels, escaping, HELP/TYPE once and before the samples, no
//! duplicate series). Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/netns.rs"]
mod netns;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use netns::*;

const GCM_WRONG: &str = "9999999999999999999999999999999999999999";
const PINGS: u64 = 4;

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn is_name(s: &str, colon: bool) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || (colon && f == ':'))
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || (colon && x == ':'))
}

/// Parses `{a="x",b="y"}` (after the metric name); the labels and the rest of the line.
fn labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut m = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((m, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((m, r));
        }
        let (name, r) = rest.split_once("=\"").ok_or(format!("label in {s:?}"))?;
        if !is_name(name, false) || name.starts_with("__") {
            return Err(format!("label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?} in {s:?}")),
                },
                Some((_, '\n')) | None => return Err(format!("unterminated label value in {s:?}")),
                Some((_, c)) => value.push(c),
            }
        };
        if m.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &r[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A strict reader of the text exposition format 0.0.4 as ipsecd writes it: every family has
/// one HELP and one TYPE line before its samples, its samples are contiguous, counters end
/// in `_total`, no series appears twice, values are numbers, the text ends in a newline.
fn parse_exposition(text: &str) -> Result<(Vec<Sample>, BTreeMap<String, String>), String> {
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let (mut samples, mut types) = (Vec::new(), BTreeMap::new());
    let (mut helps, mut done, mut series) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(c) = line.strip_prefix("# ") {
            let (kw, rest) = c.split_once(' ').ok_or_else(|| at("comment".into()))?;
            let (name, arg) = rest.split_once(' ').ok_or_else(|| at("no text".into()))?;
            if !is_name(name, true) || done.contains(name) {
                return Err(at(format!("family {name} out of place")));
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.replace(name.to_string()) {
                    done.insert(c);
                }
            }
            match kw {
                "HELP" if helps.insert(name.to_string()) && !arg.is_empty() => {}
                "TYPE"
                    if ["counter", "gauge", "untyped", "histogram", "summary"].contains(&arg) =>
                {
                    if types.insert(name.to_string(), arg.to_string()).is_some() {
                        return Err(at("second TYPE".into()));
                    }
                    if arg == "counter" && !name.ends_with("_total") {
                        return Err(at("counter without _total".into()));
                    }
                }
                _ => return Err(at("bad HELP/TYPE".into())),
            }
            continue;
        }
        let end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..end];
        if !is_name(name, true) || current.as_deref() != Some(name) || !types.contains_key(name) {
            return Err(at(format!("sample of {name} outside its family")));
        }
        let (l, rest) = labels(&line[end..]).map_err(at)?;
        let v = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before value".into()))?;
        let v: f64 = v.parse().map_err(|_| at("value".into()))?;
        if !series.insert((name.to_string(), l.clone())) {
            return Err(at("duplicate series".into()));
        }
        samples.push((name.to_string(), l, v));
    }
    if helps.len() != types.len() {
        return Err("a family lacks HELP or TYPE".into());
    }
    Ok((samples, types))
}

fn value(s: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    s.iter()
        .find(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

/// An HTTP request from inside `ns`: the status line and the body.
fn http(ns: &Ns, port: u16, method: &str, path: &str) -> (String, String) {
    let script = format!(
        "import socket,sys\ns=socket.create_connection(('127.0.0.1',{port}),timeout=5)\n\
         s.sendall(b'{method} {path} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\nd=b''\n\
         while True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\nsys.stdout.buffer.write(d)\n"
    );
    let out = ns.ok(&[PYTHON, "-c", &script]);
    let (head, body) = out.split_once("\r\n\r\n").expect("HTTP reply");
    let status = head.lines().next().unwrap_or_default().to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    if method != "HEAD" {
        assert_eq!(len, body.len(), "Content-Length");
    }
    (status, body.to_string())
}

fn ipsecstat(control: &Path, extra: &[&str]) -> String {
    let bin = ipsecd_bin().with_file_name("ipsecstat");
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p ipsec-tools",
        bin.display()
    );
    let o = std::process::Command::new(bin)
        .arg("--socket")
        .arg(control)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn metrics_endpoint_and_ipsecstat_json_show_traffic_and_drops() {
    let Some(lab) = Lab::new("metrics_endpoint_and_ipsecstat_json_show_traffic_and_drops") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    let keys = |ba: &str| {
        format!(
            "add esp spi 0x1000 src {A4} dst {B4} encr_alg aes-gcm encrkey {GCM_AB}\n\
             add esp spi 0x1001 src {B4} dst {A4} encr_alg aes-gcm encrkey {ba}\n"
        )
    };
    let pol = |l: &str, r: &str| transport_policy(l, r, "encr_algs aes-gcm");
    let port = 9515;
    let listen = format!("127.0.0.1:{port}");
    let da = Daemon::start_with(
        &lab,
        &a,
        "a",
        &keys(GCM_WRONG),
        &pol(A4, B4),
        &["--metrics-listen", &listen],
    );
    let _db = Daemon::start(&lab, &b, "b", &keys(GCM_BA), &pol(B4, A4));

    // Nothing yet: every drop reason is there, at zero.
    let (status, body) = http(&a, port, "GET", "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (s0, types) = parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    for r in [
        "esp_bad_auth",
        "esp_no_sa",
        "spd_got_clear",
        "esp_replay",
        "ah_bad_auth",
    ] {
        assert_eq!(
            value(&s0, "ironswan_drops_total", &[("reason", r)]),
            Some(0.0),
            "{r}"
        );
    }
    let reasons = s0
        .iter()
        .filter(|(n, _, _)| n == "ironswan_drops_total")
        .count();
    assert!(reasons >= 50, "{reasons} drop reasons");
    for f in [
        "ironswan_packets_total",
        "ironswan_drops_total",
        "ironswan_sa_packets_total",
        "ironswan_sa_bytes_total",
        "ironswan_sa_drops_total",
    ] {
        assert_eq!(types.get(f).map(String::as_str), Some("counter"), "{f}");
    }
    assert_eq!(types.get("ironswan_sas").map(String::as_str), Some("gauge"));

    // Traffic: A's pings go out protected; every reply fails A's ICV check.
    let o = a.ping(B4, PINGS as u32);
    assert!(!o.status.success(), "pings answered despite the wrong key");
    let (status, body) = http(&a, port, "GET", "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (s, _) = parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let out = [
        ("spi", "0x00001000"),
        ("dst", B4),
        ("proto", "esp"),
        ("src", A4),
    ];
    let inb = [
        ("spi", "0x00001001"),
        ("dst", A4),
        ("proto", "esp"),
        ("src", B4),
    ];
    assert_eq!(
        value(&s, "ironswan_sa_packets_total", &out),
        Some(PINGS as f64),
        "{body}"
    );
    assert!(value(&s, "ironswan_sa_bytes_total", &out).unwrap() >= (PINGS * 64) as f64);
    assert_eq!(value(&s, "ironswan_sa_packets_total", &inb), Some(0.0));
    let bad = [("reason", "esp_bad_auth")];
    assert_eq!(
        value(&s, "ironswan_drops_total", &bad),
        Some(PINGS as f64),
        "{body}"
    );
    assert_eq!(
        value(&s, "ironswan_engine_drops_total", &bad),
        Some(PINGS as f64)
    );
    let mut sa_bad = inb.to_vec();
    sa_bad.push(("reason", "esp_bad_auth"));
    assert_eq!(
        value(&s, "ironswan_sa_drops_total", &sa_bad),
        Some(PINGS as f64)
    );
    let tun_in = value(
        &s,
        "ironswan_packets_total",
        &[("direction", "in"), ("interface", "tun")],
    )
    .unwrap();
    let wire_in = value(
        &s,
        "ironswan_packets_total",
        &[("direction", "in"), ("interface", "wire")],
    )
    .unwrap();
    assert!(tun_in >= PINGS as f64 && wire_in >= PINGS as f64, "{body}");
    assert_eq!(value(&s, "ironswan_sas", &[]), Some(2.0));

    // ipsecstat --json says the same.
    let v: serde_json::Value = serde_json::from_str(&ipsecstat(&da.control, &["--json"])).unwrap();
    assert_eq!(v["drops"]["esp_bad_auth"], PINGS);
    assert!(
        v["drops"].get("esp_no_sa").is_none(),
        "zero reasons shown without --all"
    );
    assert_eq!(v["engine_drops"]["esp_bad_auth"], PINGS);
    assert_eq!(v["dataplane"]["tun_in"].as_f64(), Some(tun_in));
    let sas = v["sas"].as_array().unwrap();
    let sa = |spi: u64| sas.iter().find(|x| x["spi"] == spi).unwrap();
    assert_eq!(sa(0x1000)["packets"], PINGS);
    assert_eq!(sa(0x1000)["dst"], B4);
    assert_eq!(sa(0x1001)["drops"]["esp_bad_auth"], PINGS);
    let all: serde_json::Value =
        serde_json::from_str(&ipsecstat(&da.control, &["--json", "--all"])).unwrap();
    let n = all["drops"].as_object().unwrap().len();
    assert_eq!(n, reasons, "--all lists every reason the endpoint does");
    assert_eq!(all["drops"]["esp_no_sa"], 0);
    let text = ipsecstat(&da.control, &["-a"]);
    assert!(text.contains("  esp_no_sa "), "{text}");

    // Other paths and methods.
    assert_eq!(http(&a, port, "GET", "/").0, "HTTP/1.1 404 Not Found");
    assert_eq!(
        http(&a, port, "GET", "/metricsx").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http(&a, port, "POST", "/metrics").0,
        "HTTP/1.1 405 Method Not Allowed"
    );
    let (st, body) = http(&a, port, "HEAD", "/metrics");
    assert_eq!((st.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));

    // A client that connects and sends nothing is timed out; the next scrape is served.
    let script = format!(
        "import socket,time\nidle=socket.create_connection(('127.0.0.1',{port}))\n\
         t=time.time()\ns=socket.create_connection(('127.0.0.1',{port}),timeout=10)\n\
         s.sendall(b'GET /metrics HTTP/1.0\\r\\n\\r\\n')\nd=s.recv(64)\n\
         print(d.split(b'\\r\\n')[0].decode(), round(time.time()-t,1))\n"
    );
    let out = a.ok(&[PYTHON, "-c", &script]);
    let (line, secs) = out.trim().rsplit_once(' ').unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK");
    assert!(secs.parse::<f64>().unwrap() < 5.0, "{out}");
}

#[test]
fn the_strict_parser_rejects_what_prometheus_would() {
    let ok = "# HELP x_total A counter.\n# TYPE x_total counter\nx_total{a=\"q\\\"\\n\\\\\"} 1\nx_total 2\n";
    let (s, _) = parse_exposition(ok).unwrap();
    assert_eq!(s[0].1["a"], "q\"\n\\");
    for bad in [
        "x_total 1\n",                                                          // no TYPE
        "# HELP x_total h\n# TYPE x_total counter\nx_total 1",                  // no newline
        "# HELP x_total h\n# TYPE x_total counter\nx_total 1\nx_total 2\n",     // duplicate
        "# HELP x h\n# TYPE x counter\nx 1\n",                                  // counter name
        "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"\\t\"} 1\n",     // escape
        "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"1\",a=\"2\"} 1\n", // label twice
        "# HELP x_total h\n# TYPE x_total counter\nx_total one\n",              // value
        "# HELP x_total h\n# TYPE x_total counter\n# HELP y h\n# TYPE y gauge\ny 1\nx_total 1\n",
        "# HELP x_total h\n# TYPE x_total counter\nx_total 1\n# HELP y h\n# TYPE y gauge\n# TYPE x_total counter\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}
