//! The cleartext the nftables table drops (see [`crate::nft`]): each drop rule logs to an
//! NFLOG group with the prefix `ironswan REASON rule INDEX: `. A thread reads the group,
//! counts every record (`nflog_records`, `nflog_lost` when the socket overflowed,
//! `nflog_unparsed` for a prefix that is not ours) and hands it to the policy logger with
//! its reason, rule index and direction (from the hook that logged it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipsec_core::spd::PolicyDrop;
use ipsec_sys::nflog::{hook, NflogPacket, NflogSocket};
use ipsec_sys::{PollFd, PollFlags};

use super::record::{stage, Dir, CAPTURE};
use crate::dataplane::Counters;
use crate::log;

/// Reason, rule index, direction and stages of a record whose prefix is ours.
pub fn classify(
    p: &NflogPacket<'_>,
) -> Option<(&'static str, usize, Dir, &'static [&'static str])> {
    let prefix = std::str::from_utf8(p.prefix?).ok()?;
    let rest = prefix
        .strip_prefix("ironswan ")?
        .trim_end()
        .strip_suffix(':')?;
    let mut w = rest.split(' ');
    let (reason, rule_word, index) = (w.next()?, w.next()?, w.next()?);
    if rule_word != "rule" || w.next().is_some() {
        return None;
    }
    let rule = index.parse().ok()?;
    let reason = PolicyDrop::from_name(reason)
        .map(PolicyDrop::name)
        .or((reason == crate::nft::OUT_CLEAR).then_some(crate::nft::OUT_CLEAR))?;
    let (dir, st) = match p.hook {
        Some(hook::LOCAL_OUT | hook::POST_ROUTING) => (Dir::Out, stage::NFT_OUT),
        Some(hook::FORWARD) => (
            if reason == crate::nft::OUT_CLEAR {
                Dir::Out
            } else {
                Dir::In
            },
            stage::NFT_FWD,
        ),
        _ => (Dir::In, stage::NFT_IN),
    };
    Some((reason, rule, dir, st))
}

/// Binds NFLOG group `group` and starts the reader thread (it ends when `stop` is set).
pub fn spawn(group: u16, counters: Arc<Counters>, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let copy = u32::try_from(CAPTURE).unwrap_or(128);
    let mut sock = NflogSocket::bind(group, copy)?;
    sock.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("nflog".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut fds = [PollFd::new(&sock, PollFlags::IN)];
                if ipsec_sys::poll(&mut fds, Some(Duration::from_millis(200))).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    let r = sock.recv(|p| match classify(p) {
                        Some((reason, rule, dir, st)) => {
                            counters.add("nflog_records", 1);
                            super::drop_event(dir, reason, Some(rule), None, st, p.payload);
                        }
                        None => counters.add("nflog_unparsed", 1),
                    });
                    match r {
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if ipsec_sys::nflog::is_overrun(&e) => counters.add("nflog_lost", 1),
                        Err(e) => {
                            counters.add("nflog_errors", 1);
                            log::debug(format_args!("NFLOG: {e}"));
                            break;
                        }
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pkt(prefix: &[u8], hook: u8) -> NflogPacket<'_> {
        NflogPacket {
            prefix: Some(prefix),
            hook: Some(hook),
            ..NflogPacket::default()
        }
    }

    #[test]
    fn prefixes_of_the_table_parse() {
        let (r, i, d, s) =
            classify(&pkt(b"ironswan spd_got_clear rule 3: ", hook::LOCAL_IN)).unwrap();
        assert_eq!((r, i, d), ("spd_got_clear", 3, Dir::In));
        assert_eq!(s, stage::NFT_IN);
        let (r, i, d, _) = classify(&pkt(b"ironswan out_clear rule 0: ", hook::LOCAL_OUT)).unwrap();
        assert_eq!((r, i, d), ("out_clear", 0, Dir::Out));
        let (r, _, d, s) =
            classify(&pkt(b"ironswan spd_explicit rule 12: ", hook::FORWARD)).unwrap();
        assert_eq!((r, d, s), ("spd_explicit", Dir::In, stage::NFT_FWD));
        for bad in [
            &b"other spd_got_clear rule 3: "[..],
            b"ironswan spd_got_clear rule x: ",
            b"ironswan made_up rule 1: ",
            b"ironswan spd_got_clear 1: ",
            b"\xff\xfe",
            b"",
        ] {
            assert!(classify(&pkt(bad, 1)).is_none(), "{bad:?}");
        }
    }
}
