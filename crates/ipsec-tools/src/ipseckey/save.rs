//! `save` / `-s`: the SAs of a DUMP as `add` commands that `ipseckey -f` reads back.
//!
//! Like Solaris' `save_assoc`, a dying or dead SA is written as a (mature) `add` preceded by
//! a warning comment; a larval SA keeps `state larval`. Lifetimes are written in absolute
//! terms (what was configured, not what is left). A pair link (`pair-spi`) is written on the
//! second SA of the pair only, so that reading the file back adds the first SA before the
//! SA that names it (the key engine refuses a `pair-spi` naming an SA not yet there).

use std::fmt::Write as _;
use std::net::IpAddr;

use zeroize::Zeroizing;

use ipsec_config::ipseckey::print_add;
use ipsec_core::{Proto, SaConfig, SaState};
use ipsec_pfkey::consts::{SADB_SASTATE_LARVAL, SADB_SASTATE_MATURE};
use ipsec_pfkey::convert::{message_to_config, ADD_FLAGS};
use ipsec_pfkey::{Message, PfkeyError};

/// The first line of every save.
pub const HEADER: &str =
    "# Security associations saved by ipseckey (Ironswan); read them back with ipseckey -f.\n";

/// What a DUMP record describes, as the `SaConfig` an `add` recreates, and whether the SA
/// was dying or dead.
pub fn record_to_config(m: &Message) -> Result<(SaConfig, bool), PfkeyError> {
    let mut r = m.clone();
    r.lifetime_current = None;
    r.kmc = None;
    let mut stale = false;
    let mut larval = false;
    if let Some(sa) = r.sa.as_mut() {
        match sa.state {
            SADB_SASTATE_LARVAL => larval = true,
            SADB_SASTATE_MATURE => {}
            _ => {
                stale = true;
                sa.state = SADB_SASTATE_MATURE;
            }
        }
        sa.flags &= ADD_FLAGS;
    }
    let mut cfg = message_to_config(&r, true, 0)?;
    if larval {
        cfg.state = SaState::Larval;
    }
    Ok((cfg, stale))
}

/// The save text of `records` (DUMP records in dump order). Records that do not describe
/// an SA this tool can write again are kept as a comment with the reason.
pub fn save_text(records: &[Message], paranoid: bool) -> Zeroizing<String> {
    // Sized up front: a growing String would leave copies of key text behind.
    let mut o = Zeroizing::new(String::with_capacity(
        HEADER.len() + 160 + records.len() * 1024,
    ));
    o.push_str(HEADER);
    if paranoid {
        o.push_str(
            "# Keys are shown as X (-p): this file documents the SAs but cannot restore them.\n",
        );
    }
    let mut written: Vec<(Proto, IpAddr, u32)> = Vec::new();
    for m in records {
        let spi = m.sa.map_or(0, |s| s.spi);
        let (mut cfg, stale) = match record_to_config(m) {
            Ok(x) => x,
            Err(e) => {
                let _ = writeln!(o, "# SA with spi 0x{spi:x} not saved: {}", e.what);
                continue;
            }
        };
        if let Some(p) = cfg.pair_spi {
            let partner_written = cfg
                .src
                .is_some_and(|src| written.contains(&(cfg.proto, src, p)));
            if !partner_written {
                cfg.pair_spi = None;
            }
        }
        if stale {
            o.push_str("# WARNING: SA was dying or dead.\n");
        }
        let line = Zeroizing::new(print_add(&cfg, paranoid));
        if o.capacity() - o.len() < line.len() + 64 {
            o.reserve_exact(line.len() + 64);
        }
        o.push_str(&line);
        o.push('\n');
        written.push((cfg.proto, cfg.dst, cfg.spi));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec_config::ipseckey::{parse_with, request::request, Command, ParseOptions};
    use ipsec_pfkey::consts::{SADB_DUMP, SADB_X_SAFLAGS_PAIRED, SADB_X_SAFLAGS_USED};

    fn record(text: &str, state: u8, flags: u32, pair: Option<u32>) -> Message {
        let cmds = parse_with(text, "t", ParseOptions { numeric: true }).unwrap();
        let Some(cmd) = cmds.first() else {
            panic!("no command")
        };
        let mut m = request(cmd, 1, 1).unwrap().unwrap();
        m.msg_type = SADB_DUMP;
        if let Some(sa) = m.sa.as_mut() {
            sa.state = state;
            sa.flags |= flags;
        }
        m.pair = pair.map(|spi| ipsec_pfkey::wire::Pair { spi });
        m
    }

    const A: &str = "add esp spi 0x1000 src 10.0.0.1 dst 10.0.0.2 encr_alg aes encrkey 00112233445566778899aabbccddeeff auth_alg sha1 authkey 0102030405060708090a0b0c0d0e0f1011121314 hard_addtime 60";
    const B: &str = "add esp spi 0x2000 src 10.0.0.2 dst 10.0.0.1 encr_alg aes encrkey 00112233445566778899aabbccddee00 auth_alg sha1 authkey 0102030405060708090a0b0c0d0e0f1011121300";

    #[test]
    fn saved_text_parses_back_to_the_same_sas() {
        let recs = [
            record(
                A,
                1,
                SADB_X_SAFLAGS_USED | SADB_X_SAFLAGS_PAIRED,
                Some(0x2000),
            ),
            record(B, 2, SADB_X_SAFLAGS_PAIRED, Some(0x1000)),
        ];
        let text = save_text(&recs, false);
        assert!(text.starts_with(HEADER));
        assert!(text.contains("# WARNING: SA was dying or dead.\n"));
        let cmds = parse_with(&text, "saved", ParseOptions { numeric: true }).unwrap();
        assert_eq!(cmds.len(), 2);
        let Command::Add(a) = &cmds[0] else {
            panic!("not an add")
        };
        let Command::Add(b) = &cmds[1] else {
            panic!("not an add")
        };
        // The pair link travels on the second SA only.
        assert_eq!(a.pair_spi, None);
        assert_eq!(b.pair_spi, Some(0x1000));
        assert_eq!(a.hard.addtime, Some(60));
        let (want, _) = record_to_config(&recs[0]).unwrap();
        let mut want = want;
        want.pair_spi = None;
        assert_eq!(
            print_add(&a.to_config().unwrap(), false),
            print_add(&want, false)
        );
    }

    #[test]
    fn paranoid_save_hides_keys() {
        let text = save_text(&[record(A, 1, 0, None)], true);
        assert!(text.contains("encrkey XXXXXXXX"));
        assert!(!text.contains("0011223344"));
    }

    #[test]
    fn larval_sas_stay_larval() {
        let text = save_text(
            &[record(
                "add esp spi 0x3000 dst 10.0.0.9 state larval",
                0,
                0,
                None,
            )],
            false,
        );
        assert!(
            text.contains("add esp spi 0x3000 dst 10.0.0.9 state larval\n"),
            "{}",
            *text
        );
    }
}
