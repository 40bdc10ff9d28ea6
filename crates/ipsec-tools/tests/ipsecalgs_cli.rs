//! End-to-end tests of the `ipsecalgs` command: the table file in a temporary directory, and
//! a real `ipsecd` it syncs to, checked through `ipsecalgs -l` and through `ipseckey` adding
//! SAs the synced table allows or refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/daemon.rs"]
mod daemon;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use daemon::Ipsecd;

const IPSECALGS: &str = env!("CARGO_BIN_EXE_ipsecalgs");
const IPSECKEY: &str = env!("CARGO_BIN_EXE_ipseckey");

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs ipsecalgs on `file` (and the daemon's socket); asserts success; its stdout.
fn ok(d: &Ipsecd, file: &Path, args: &[&str]) -> String {
    let o = run(d, file, args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "ipsecalgs {args:?} failed: {err}");
    out
}

fn run(d: &Ipsecd, file: &Path, args: &[&str]) -> Output {
    d.tool(IPSECALGS)
        .arg("--file")
        .arg(file)
        .args(args)
        .output()
        .unwrap()
}

/// ipseckey adds an ESP SA with `alg` and a key of `key_hex`; stdout+stderr and success.
fn add_esp(d: &Ipsecd, spi: u32, alg: &str, key_hex: &str) -> (bool, String) {
    let f = d.dir.join(format!("sa-{spi:x}"));
    std::fs::write(
        &f,
        format!(
            "add esp spi {spi:#x} src 10.0.0.1 dst 10.0.0.2 encr_alg {alg} encrkey {key_hex}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = d.tool(IPSECKEY).arg("-f").arg(&f).output().unwrap();
    let (out, err) = text(&o);
    (o.status.success(), out + &err)
}

/// The algorithm numbers of protocol `proto` in a listing.
fn numbers(listing: &str, proto: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let mut cur = 0;
    for l in listing.lines() {
        if let Some(p) = l.trim().strip_prefix("Protocol number: ") {
            cur = p.parse().unwrap();
        } else if let Some(n) = l.trim().strip_prefix("Algorithm number: ") {
            if cur == proto {
                out.insert(n.parse().unwrap());
            }
        }
    }
    out
}

fn lines(p: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

const AES128: &str = "00112233445566778899aabbccddeeff";
const AES256: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const GCM128: &str = "00112233445566778899aabbccddeeff01020304";

#[test]
fn remove_and_add_back_with_sync_changes_what_the_daemon_accepts() {
    let Some(d) = Ipsecd::start(IPSECALGS, "ipsecalgs-sync", &[]) else {
        return;
    };
    let file: PathBuf = d.dir.join("ipsecalgs");

    // No file: the built-in table, the same in the file listing and in ipsecd.
    let listing = ok(&d, &file, &[]);
    assert!(listing.starts_with("List of algorithms, grouped by IPsec protocol:\n\n"));
    assert!(listing.contains("Protocol 3/PROTO_IPSEC_ESP (execution mode: sync)\n"));
    assert!(listing.contains(
        "\tAlgorithm names: aes-cbc,aes\n\tMechanism Name: CKM_AES_CBC\n\tBlock sizes or MAC sizes: 16\n\tKey sizes: 128-256, increment 64, default 128\n"
    ), "{listing}");
    assert!(listing.contains("\tRFC 8221: MUST NOT\n"), "des: {listing}");
    let kernel = ok(&d, &file, &["-l"]);
    assert!(kernel.starts_with("Kernel list of algorithms:\n\n"));
    assert_eq!(numbers(&kernel, 3), numbers(&listing, 3));
    assert!(numbers(&kernel, 3).contains(&12));
    assert!(!file.exists(), "listing wrote the file");

    // Remove aes-cbc by name and sync: ipsecd no longer lists it and refuses its SAs.
    assert_eq!(
        ok(&d, &file, &["-r", "-p", "PROTO_IPSEC_ESP", "-n", "aes"]),
        ""
    );
    let builtin_minus_aes = lines(&file);
    assert!(!builtin_minus_aes.iter().any(|l| l.starts_with("ALG|3|12|")));
    assert!(
        numbers(&ok(&d, &file, &["-l"]), 3).contains(&12),
        "synced without -s"
    );
    let out = ok(&d, &file, &["-s"]);
    assert!(out.starts_with("synced 2 protocol(s)"), "{out}");
    assert!(!numbers(&ok(&d, &file, &["-l"]), 3).contains(&12));
    let (added, msg) = add_esp(&d, 0x100, "aes", AES128);
    assert!(!added, "aes-cbc SA accepted after removal: {msg}");
    assert!(msg.contains("Diagnostic code 41"), "{msg}");
    let (added, msg) = add_esp(&d, 0x101, "aes-gcm", GCM128);
    assert!(added, "{msg}");

    // Add it back with 256-bit keys only (Solaris options), synced in the same command.
    let out = ok(
        &d,
        &file,
        &[
            "-a",
            "-P",
            "3",
            "-k",
            "256",
            "-b",
            "16",
            "-n",
            "aes-cbc,aes",
            "-N",
            "12",
            "-m",
            "CKM_AES_CBC",
            "-s",
        ],
    );
    assert!(out.contains("synced"), "{out}");
    assert!(lines(&file).contains("ALG|3|12|aes-cbc,aes|CKM_AES_CBC|256|16"));
    let (added, msg) = add_esp(&d, 0x102, "aes", AES128);
    assert!(
        !added && msg.contains("Diagnostic code 45"),
        "128-bit key: {msg}"
    );
    let (added, msg) = add_esp(&d, 0x103, "aes", AES256);
    assert!(added, "{msg}");

    // The same entry again is refused without -f; with -f (range form, -i, -K) it replaces.
    let again = [
        "-a",
        "-p",
        "PROTO_IPSEC_ESP",
        "-k",
        "128-256",
        "-i",
        "64",
        "-K",
        "128",
        "-b",
        "16",
        "-n",
        "aes-cbc,aes",
        "-N",
        "12",
        "-m",
        "CKM_AES_CBC",
    ];
    let o = run(&d, &file, &again);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("already exists: use -f"),
        "{}",
        text(&o).1
    );
    let mut forced = again.to_vec();
    forced.push("-f");
    ok(&d, &file, &forced);
    // Round trip: the file now holds exactly the built-in entries again.
    let mut builtin = builtin_minus_aes.clone();
    builtin.insert("ALG|3|12|aes-cbc,aes|CKM_AES_CBC|128/128-256,64|16".into());
    assert_eq!(lines(&file), builtin);
    ok(&d, &file, &["-s"]);
    let (added, msg) = add_esp(&d, 0x104, "aes", AES128);
    assert!(added, "{msg}");
}

#[test]
fn unimplementable_entries_and_parse_errors_leave_the_previous_table() {
    let Some(d) = Ipsecd::start(IPSECALGS, "ipsecalgs-refuse", &[]) else {
        return;
    };
    let file = d.dir.join("ipsecalgs");
    ok(&d, &file, &["-r", "-p", "PROTO_IPSEC_ESP", "-N", "3", "-s"]);
    let before = ok(&d, &file, &["-l"]);
    assert!(!numbers(&before, 3).contains(&3));

    // An algorithm ipsec-crypto does not have: written to the file, refused by ipsecd with
    // the entry's file and line; ipsecd keeps the previous table.
    ok(
        &d,
        &file,
        &[
            "-a",
            "-P",
            "3",
            "-k",
            "128",
            "-b",
            "16",
            "-n",
            "rot13",
            "-N",
            "99",
            "-m",
            "CKM_ROT13",
        ],
    );
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("ALG|3|99|"))
        .unwrap()
        + 1;
    let o = run(&d, &file, &["-s"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let want = format!("{}:{line}:1: ALG|3|99|rot13|CKM_ROT13|128|16: no encryption algorithm number 99 is implemented (table unchanged)", file.display());
    assert!(err.contains(&want), "{err}\nwanted {want}");
    assert_eq!(ok(&d, &file, &["-l"]), before);
    ok(&d, &file, &["-r", "-P", "3", "-N", "99"]);

    // A supported algorithm with a key size it cannot take.
    ok(
        &d,
        &file,
        &[
            "-a",
            "-f",
            "-P",
            "3",
            "-k",
            "128-512",
            "-i",
            "64",
            "-b",
            "16",
            "-n",
            "aes-cbc,aes",
            "-N",
            "12",
            "-m",
            "CKM_AES_CBC",
        ],
    );
    let (_, err) = text(&run(&d, &file, &["-s"]));
    assert!(
        err.contains("key size 320 is not supported (supported: 128/128-256,64)"),
        "{err}"
    );
    assert_eq!(ok(&d, &file, &["-l"]), before);

    // A protocol ipsecd does not implement: the file takes it (with -e), the sync does not.
    ok(&d, &file, &["-P", "50", "-p", "PROTO_NEW", "-e", "async"]);
    assert!(lines(&file).contains("PROTO|50|PROTO_NEW|async"));
    ok(&d, &file, &["-e", "sync", "-p", "PROTO_NEW"]);
    assert!(lines(&file).contains("PROTO|50|PROTO_NEW|sync"));
    let (_, err) = text(&run(&d, &file, &["-s"]));
    assert!(
        err.contains("PROTO|50|PROTO_NEW: ipsecd implements only protocols 2 (AH) and 3 (ESP)"),
        "{err}"
    );
    ok(&d, &file, &["-R", "-p", "PROTO_NEW"]);
    assert!(!lines(&file).iter().any(|l| l.contains("PROTO_NEW")));

    // A damaged file: listing and sync name its line and column; nothing is sent.
    let mut t = std::fs::read_to_string(&file).unwrap();
    t.push_str("ALG|3|20|aes-gcm|CKM_AES_GCM|128/128-256,6x|16\n");
    std::fs::write(&file, &t).unwrap();
    let n = t.lines().count();
    for args in [&[][..], &["-s"][..], &["-r", "-P", "3", "-N", "20"][..]] {
        let o = run(&d, &file, args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "{}:{n}:42: expected a key-size increment, found \"6x\"",
                file.display()
            )),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(&d, &file, &["-l"]), before);

    // Usage errors.
    for args in [
        &["-l", "-s"][..],
        &["-a", "-r"][..],
        &["-k", "128"][..],
        &[
            "-a", "-P", "3", "-k", "128-256", "-b", "16", "-n", "x", "-N", "77", "-m", "M",
        ][..],
    ] {
        let o = run(&d, &file, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
    }
}
