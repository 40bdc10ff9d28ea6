//! The ipsecalgs table in the real daemon: `--algs-file` at start, `algs sync`/`algs show`
//! on the control socket, and what a synced table changes on the PF_KEY socket (REGISTER's
//! SUPPORTED lists, ADD and larval UPDATE refused for algorithms or key sizes it leaves
//! out). A file with an entry ipsecd cannot implement keeps it from starting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ipsec_config::ipsecalgs::Table;
use ipsec_pfkey::consts::*;
use ipsec_pfkey::wire::*;
use ipsec_pfkey::Diagnostic as D;

const EINVAL: u8 = 22;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ipsecd"))
}

/// The built-in table without AES-GCM-16 (20) and with AES-CBC (12) at 256 bits only.
fn narrowed() -> String {
    Table::builtin()
        .to_file_text()
        .lines()
        .filter(|l| !l.starts_with("ALG|3|20|"))
        .map(|l| {
            if l.starts_with("ALG|3|12|") {
                "ALG|3|12|aes-cbc,aes|CKM_AES_CBC|256|16".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn esp_cbc(spi: u32, key_bytes: usize) -> Message {
    let mut m = esp_add(spi, "10.0.0.1", "10.0.0.2");
    m.sa = Some(sa_ext(spi, 0, 12));
    m.key_encrypt = Key::new(&vec![0x5a; key_bytes]);
    m
}

#[test]
fn a_synced_table_narrows_register_add_and_update() {
    let dir = temp_dir("algs-file");
    let file = dir.join("ipsecalgs");
    std::fs::write(&file, narrowed()).unwrap();
    let d = Daemon::start(bin(), "algs", &["--algs-file", file.to_str().unwrap()]);
    assert_eq!(d.control("algs show"), format!("ok\n{}", narrowed()));
    let mut c = d.client();

    let r = c.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let encr = &r.supported_encrypt.as_ref().unwrap().algs;
    assert!(!encr.iter().any(|a| a.id == 20), "{encr:?}");
    let cbc = encr.iter().find(|a| a.id == 12).unwrap();
    assert_eq!((cbc.minbits, cbc.maxbits, cbc.increment), (256, 256, 0));
    assert!(encr.iter().any(|a| a.id == 19), "aes-gcm12 stays");

    c.refused(
        esp_add(0x100, "10.0.0.1", "10.0.0.2"),
        EINVAL,
        D::BadEalg as u16,
    );
    c.refused(esp_cbc(0x101, 16), EINVAL, D::BadEkeybits as u16);
    c.ok(esp_cbc(0x102, 32));
    // A larval SA matured with a removed algorithm.
    let spi = c
        .ok(getspi(
            SADB_SATYPE_ESP,
            "10.0.0.1",
            "10.0.0.2",
            0x1000,
            0x1fff,
        ))
        .sa
        .unwrap()
        .spi;
    let mut up = esp_add(spi, "10.0.0.1", "10.0.0.2");
    up.msg_type = SADB_UPDATE;
    c.refused(up.clone(), EINVAL, D::BadEalg as u16);

    // Syncing the built-in table back allows them again.
    let reply = d.control(&format!(
        "algs sync builtin\n{}",
        Table::builtin().to_file_text()
    ));
    assert!(reply.starts_with("ok synced 2 protocol(s), 10 authentication and 15 encryption algorithm(s); 0 installed SA(s)"), "{reply}");
    c.ok(up);
    c.ok(esp_add(0x103, "10.0.0.1", "10.0.0.2"));
    let r = c.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let encr = &r.supported_encrypt.as_ref().unwrap().algs;
    assert!(encr.iter().any(|a| a.id == 20));
    assert!(encr
        .iter()
        .any(|a| a.id == 12 && a.minbits == 128 && a.maxbits == 256));

    // Narrowing again: the installed SAs stay and are counted.
    let reply = d.control(&format!("algs sync narrowed\n{}", narrowed()));
    assert!(
        reply.contains(
            "; 2 installed SA(s) use algorithms or key sizes the table no longer lists (kept)"
        ),
        "{reply}"
    );
    let reply = d.control("algs sync bad\nPROTO|3|ESP\nALG|3|12|aes|CKM_AES_CBC|512|16\n");
    assert_eq!(reply, "error bad:2:1: ALG|3|12|aes|CKM_AES_CBC|512|16: key size 512 is not supported (supported: 128/128-256,64) (table unchanged)");
    let reply = d.control("algs sync bad\nPROTO|3|ESP\nALG|3|12|aes|CKM_AES_CBC|1x|16\n");
    assert_eq!(reply, "error bad:2:26: expected a key size, found \"1x\"");
    assert_eq!(d.control("algs show"), format!("ok\n{}", narrowed()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unimplementable_algs_file_keeps_ipsecd_from_starting() {
    let dir = temp_dir("algs-bad");
    let file = dir.join("ipsecalgs");
    std::fs::write(
        &file,
        "PROTO|3|PROTO_IPSEC_ESP|sync\n\nALG|3|99|rot13|CKM_ROT13|128|16\n",
    )
    .unwrap();
    let mut child = Command::new(bin())
        .arg("--pfkey-socket")
        .arg(dir.join("pfkey.sock"))
        .arg("--control-socket")
        .arg(dir.join("control.sock"))
        .arg("--algs-file")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ipsecd started with an unimplementable ipsecalgs file");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains(&format!("{}:3:1: ALG|3|99|rot13|CKM_ROT13|128|16: no encryption algorithm number 99 is implemented", file.display())),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reload (SIGHUP, `ipsecadm reload`) syncs the `--algs-file` table again, as a refresh of
/// Solaris' ipsecalgs service re-runs `ipsecalgs -s`; a file ipsecd cannot implement is
/// refused with its file, line and column and the table in force stays.
#[test]
fn a_reload_syncs_the_algs_file_again_all_or_nothing() {
    let dir = temp_dir("algs-reload");
    let file = dir.join("ipsecalgs");
    std::fs::write(&file, Table::builtin().to_file_text()).unwrap();
    let d = Daemon::start(
        bin(),
        "algs-reload",
        &["--algs-file", file.to_str().unwrap()],
    );
    let mut c = d.client();
    c.ok(esp_add(0x200, "10.0.0.1", "10.0.0.2"));

    std::fs::write(&file, narrowed()).unwrap();
    let reply = d.control("reload");
    assert!(
        reply.starts_with("ok ")
            && reply.contains(&format!("algorithm table from {}", file.display())),
        "{reply}"
    );
    assert_eq!(d.control("algs show"), format!("ok\n{}", narrowed()));
    c.refused(
        esp_add(0x201, "10.0.0.1", "10.0.0.2"),
        EINVAL,
        D::BadEalg as u16,
    );

    std::fs::write(
        &file,
        "PROTO|3|PROTO_IPSEC_ESP|sync\n\nALG|3|99|rot13|CKM_ROT13|128|16\n",
    )
    .unwrap();
    let reply = d.control("reload");
    assert!(
        reply.starts_with("error reload refused, configuration unchanged: ")
            && reply.contains(&format!("{}:3:1: ALG|3|99|rot13", file.display())),
        "{reply}"
    );
    assert_eq!(d.control("algs show"), format!("ok\n{}", narrowed()));
    c.ok(esp_cbc(0x202, 32));
    let _ = std::fs::remove_dir_all(&dir);
}
