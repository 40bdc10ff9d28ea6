//! The text form of a PF_KEY message, laid out as Solaris' `print_samsg` (libipsecutil)
//! lays it out: a base-message header, then one block per extension with a three-letter
//! tag (`SA:`, `SRC:`, `DST:`, `AKY:`, ...), the lifetimes last (` LT:`, `CLT:`, `SLT:`,
//! `HLT:`, `ILT:`).
//!
//! Differences from Solaris, on purpose:
//! * times are printed in UTC (`Fri Nov 27 09:13:04 2026 UTC`), as this tool links no
//!   time-zone database;
//! * addresses are never looked up in the name service: without `-n` an unspecified
//!   address is marked `<unspecified>` and a protocol number gets its name from a small
//!   built-in table; with `-n` neither is printed;
//! * Ironswan's SA extension (240) is printed as `IRS:`; extensions Solaris prints as
//!   unknown (X_EREG, X_EDUMP) get a line of their own.
//!
//! The output may hold key material (unless `paranoid`): callers keep it in zeroizing
//! memory.

use std::fmt::Write as _;

use ipsec_crypto::{auth_by_pfkey, encr_by_pfkey};
use ipsec_pfkey::consts::*;
use ipsec_pfkey::wire::{
    Address, AlgDesc, Comb, EProp, Identity, Key, Lifetime, Proposal, Sensitivity, Supported,
};
use ipsec_pfkey::{Diagnostic, Message};

/// How to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrintOpts {
    /// `-n`: no protocol names, no `<unspecified>` notes.
    pub numeric: bool,
    /// `-p`: keys as `X`.
    pub paranoid: bool,
    /// `-v`: raw time values after each time.
    pub verbose: bool,
}

/// The Solaris name of a message type, as `print_sadb_msg` prints it.
pub fn msg_type_text(t: u8) -> String {
    match t {
        SADB_RESERVED => "RESERVED (warning: set to 0)".into(),
        SADB_GETSPI => "GETSPI".into(),
        SADB_UPDATE => "UPDATE".into(),
        SADB_X_UPDATEPAIR => "UPDATE PAIR".into(),
        SADB_ADD => "ADD".into(),
        SADB_DELETE => "DELETE".into(),
        SADB_X_DELPAIR => "DELETE PAIR".into(),
        SADB_X_DELPAIR_STATE => "DELETE PAIR STATE".into(),
        SADB_GET => "GET".into(),
        SADB_ACQUIRE => "ACQUIRE".into(),
        SADB_REGISTER => "REGISTER".into(),
        SADB_EXPIRE => "EXPIRE".into(),
        SADB_FLUSH => "FLUSH".into(),
        SADB_DUMP => "DUMP".into(),
        SADB_X_PROMISC => "X_PROMISC".into(),
        SADB_X_INVERSE_ACQUIRE => "X_INVERSE_ACQUIRE".into(),
        n => format!("Unknown ({n})"),
    }
}

/// The Solaris name of an SA type.
pub fn satype_text(t: u8) -> String {
    match t {
        SADB_SATYPE_UNSPEC => "<unspecified/all>".into(),
        SADB_SATYPE_AH => "AH".into(),
        SADB_SATYPE_ESP => "ESP".into(),
        SADB_SATYPE_RSVP => "RSVP".into(),
        SADB_SATYPE_OSPFV2 => "OSPFv2".into(),
        SADB_SATYPE_RIPV2 => "RIPv2".into(),
        SADB_SATYPE_MIP => "Mobile IP".into(),
        n => format!("<unknown {n}>"),
    }
}

/// The text of an errno value (`strerror`).
pub fn errno_text(errno: u8) -> String {
    let s = std::io::Error::from_raw_os_error(i32::from(errno)).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `Diagnostic code NN:  text.` for a diagnostic number.
pub fn diagnostic_text(code: u16) -> String {
    let text = Diagnostic::from_u16(code).map_or("Unknown diagnostic code", |d| d.text());
    format!("Diagnostic code {code}:  {}.", text.trim_end_matches('.'))
}

/// The state name of `sadb_sa_state`.
pub fn state_text(s: u8) -> String {
    match s {
        SADB_SASTATE_LARVAL => "LARVAL".into(),
        SADB_SASTATE_MATURE => "MATURE".into(),
        SADB_SASTATE_DYING => "DYING".into(),
        SADB_SASTATE_DEAD => "DEAD".into(),
        SADB_X_SASTATE_ACTIVE_ELSEWHERE => "ACTIVE_ELSEWHERE".into(),
        SADB_X_SASTATE_IDLE => "IDLE".into(),
        SADB_X_SASTATE_ACTIVE => "ACTIVE".into(),
        n => format!("<unknown {n}>"),
    }
}

/// The names of the set SA flags, in Solaris' order.
pub fn flag_names(flags: u32) -> Vec<&'static str> {
    const NAMES: &[(u32, &str)] = &[
        (SADB_SAFLAGS_PFS, "PFS"),
        (SADB_SAFLAGS_NOREPLAY, "NOREPLAY"),
        (SADB_X_SAFLAGS_USED, "X_USED"),
        (SADB_X_SAFLAGS_PAIRED, "X_PAIRED"),
        (SADB_X_SAFLAGS_OUTBOUND, "X_OUTBOUND"),
        (SADB_X_SAFLAGS_INBOUND, "X_INBOUND"),
        (SADB_X_SAFLAGS_UNIQUE, "X_UNIQUE"),
        (SADB_X_SAFLAGS_AALG1, "X_AALG1"),
        (SADB_X_SAFLAGS_AALG2, "X_AALG2"),
        (SADB_X_SAFLAGS_EALG1, "X_EALG1"),
        (SADB_X_SAFLAGS_EALG2, "X_EALG2"),
        (SADB_X_SAFLAGS_KM1, "X_KM1"),
        (SADB_X_SAFLAGS_KM2, "X_KM2"),
        (SADB_X_SAFLAGS_KM3, "X_KM3"),
        (SADB_X_SAFLAGS_KM4, "X_KM4"),
        (SADB_X_SAFLAGS_NATT_LOC, "X_NATT_LOC"),
        (SADB_X_SAFLAGS_NATT_REM, "X_NATT_REM"),
        (SADB_X_SAFLAGS_TUNNEL, "X_TUNNEL"),
        (SADB_X_SAFLAGS_NATTED, "X_NATTED"),
        (SADB_X_SAFLAGS_TCPSIG, "X_TCPSIG"),
    ];
    NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The name of an authentication algorithm number (`<none>` for 0).
pub fn auth_name(n: u8) -> String {
    match n {
        SADB_AALG_NONE => "<none>".into(),
        n => auth_by_pfkey(n).map_or_else(|| format!("<unknown {n}>"), |a| a.name.to_string()),
    }
}

/// The name of an encryption algorithm number (`<none>` for 0).
pub fn encr_name(n: u8) -> String {
    match n {
        SADB_EALG_NONE => "<none>".into(),
        n => encr_by_pfkey(n).map_or_else(|| format!("<unknown {n}>"), |e| e.name.to_string()),
    }
}

/// The usual name of an IP protocol number (a small built-in table instead of
/// `getprotobynumber`).
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        4 => "ipip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        103 => "pim",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}

/// A time as C's `ctime` would print it, in UTC: `Fri Nov 27 09:13:04 2026 UTC`.
pub fn time_text(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = ipsec_core::civil::civil_from_days(days);
    let wday = DAYS.get((days % 7) as usize).copied().unwrap_or("?");
    let mon = MONTHS.get((m - 1) as usize).copied().unwrap_or("?");
    format!(
        "{wday} {mon} {d:2} {:02}:{:02}:{:02} {y} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Appends key hex (or `XX` per byte when paranoid) and `/bits` to `o` (written in place, so
/// that no unzeroized copy of the key text is left behind).
pub fn push_key(o: &mut String, k: &Key, paranoid: bool) {
    for b in k.expose() {
        if paranoid {
            o.push_str("XX");
        } else {
            let _ = write!(o, "{b:02x}");
        }
    }
    let _ = write!(o, "/{}", k.bits);
}

/// Prints `m` (its wire size `len`) as Solaris' `print_samsg` does. `now` is the wall
/// clock in seconds since the epoch; `timestamp` adds the `Timestamp:` line monitors print.
pub fn samsg(o: &mut String, m: &Message, len: usize, opts: PrintOpts, now: u64, timestamp: bool) {
    if timestamp {
        time_line(o, "", "Timestamp: ", now, None, opts);
    }
    let _ = writeln!(
        o,
        "Base message (version {PF_KEY_V2}) type {}, SA type {}.",
        msg_type_text(m.msg_type),
        satype_text(m.satype)
    );
    if m.errno != 0 {
        let _ = writeln!(o, "Error {} from PF_KEY.", errno_text(m.errno));
        let _ = writeln!(o, "  {}", diagnostic_text(m.diagnostic));
    }
    let _ = writeln!(
        o,
        "Message length {len} bytes, seq={}, pid={}.",
        m.seq, m.pid
    );
    if let Some(sa) = &m.sa {
        let _ = write!(
            o,
            "SA: SADB_ASSOC spi=0x{:x}, replay window size={}, state={}",
            sa.spi,
            sa.replay,
            state_text(sa.state)
        );
        if sa.auth != SADB_AALG_NONE {
            let _ = write!(o, "\nSA: Authentication algorithm = {}", auth_name(sa.auth));
        }
        if sa.encrypt != SADB_EALG_NONE {
            let _ = write!(o, "\nSA: Encryption algorithm = {}", encr_name(sa.encrypt));
        }
        let _ = write!(o, "\nSA: flags=0x{:x} < ", sa.flags);
        for n in flag_names(sa.flags) {
            let _ = write!(o, "{n} ");
        }
        o.push_str(">\n");
    }
    for (tag, a, t) in [
        ("SRC: ", &m.src, SADB_EXT_ADDRESS_SRC),
        ("DST: ", &m.dst, SADB_EXT_ADDRESS_DST),
        ("INS: ", &m.inner_src, SADB_X_EXT_ADDRESS_INNER_SRC),
    ] {
        if let Some(a) = a {
            address(o, tag, t, a, opts);
        }
    }
    for (tag, k, what) in [
        ("AKY: ", &m.key_auth, "Authentication"),
        ("EKY: ", &m.key_encrypt, "Encryption"),
    ] {
        if let Some(k) = k {
            let _ = write!(o, "{tag}{what} key.\n{tag}");
            push_key(o, k, opts.paranoid);
            o.push('\n');
        }
    }
    if let Some(i) = &m.ident_src {
        ident(o, "SID: ", "Source", i);
    }
    if let Some(i) = &m.ident_dst {
        ident(o, "DID: ", "Destination", i);
    }
    if let Some(s) = &m.sensitivity {
        sens(o, "SNS: ", "Plaintext Sensitivity", s);
    }
    if let Some(p) = &m.proposal {
        proposal(o, "PRP: ", p);
    }
    if let Some(s) = &m.supported_auth {
        supported(o, "SUA: ", "authentication", s, false);
    }
    if let Some(s) = &m.supported_encrypt {
        supported(o, "SUE: ", "encryption", s, true);
    }
    if let Some(r) = &m.spirange {
        let _ = writeln!(o, "SPR: SPI Range, min=0x{:x}, max=0x{:x}", r.min, r.max);
    }
    if let Some(e) = &m.ereg {
        let _ = write!(o, "ERG: Extended registration for SA types:");
        for t in &e.satypes {
            let _ = write!(o, " {}", satype_text(*t));
        }
        o.push('\n');
    }
    if let Some(e) = &m.eprop {
        eprop(o, "EPR: ", e);
    }
    if let Some(k) = &m.kmc {
        let label = match k.proto {
            SADB_X_KMP_IKE => "<Label not found.>",
            SADB_X_KMP_MANUAL => "Manual SA with cookie",
            _ => "<unknown KM protocol>",
        };
        let _ = writeln!(
            o,
            "KMC: Protocol {}, cookie=\"{label}\" (0x{:x}/{})",
            k.proto, k.cookie, k.cookie
        );
    }
    for (tag, a, t) in [
        ("NLC: ", &m.natt_loc, SADB_X_EXT_ADDRESS_NATT_LOC),
        ("NRM: ", &m.natt_rem, SADB_X_EXT_ADDRESS_NATT_REM),
        ("IND: ", &m.inner_dst, SADB_X_EXT_ADDRESS_INNER_DST),
    ] {
        if let Some(a) = a {
            address(o, tag, t, a, opts);
        }
    }
    if let Some(p) = &m.pair {
        let _ = writeln!(o, "OTH: Paired with spi=0x{:x}", p.spi);
    }
    if let Some(r) = &m.replay_value {
        o.push_str("RPL: Replay Value ");
        if r.replay32 == 0 && r.replay64 == 0 {
            o.push_str("<Value not found.>");
        }
        let v = if r.replay32 == 0 {
            r.replay64
        } else {
            u64::from(r.replay32)
        };
        let _ = writeln!(o, " {v}");
    }
    if let Some(e) = &m.edump {
        let _ = writeln!(
            o,
            "EDU: Dump only SAs idle for at least {} seconds.",
            e.timeout
        );
    }
    if let Some(s) = &m.outer_sens {
        sens(o, "OSN: ", "Ciphertext Sensitivity", s);
    }
    if let Some(x) = &m.ironswan_sa {
        let _ = write!(
            o,
            "IRS: Ironswan SA options: replay window size={}, flags=0x{:x} < ",
            x.replay_window, x.flags
        );
        for (f, n) in [
            (IRONSWAN_SA_ESN, "ESN"),
            (IRONSWAN_SA_ALLOW_LEGACY, "ALLOW_LEGACY"),
            (IRONSWAN_SA_NO_COPY_DSCP, "NO_COPY_DSCP"),
            (IRONSWAN_SA_NO_PADDING_CHECK, "NO_PADDING_CHECK"),
            (IRONSWAN_SA_UNIQUE_BINDING, "UNIQUE"),
        ] {
            if x.flags & f != 0 {
                let _ = write!(o, "{n} ");
            }
        }
        o.push_str(">\n");
        if x.flags & IRONSWAN_SA_UNIQUE_BINDING != 0 {
            let _ = writeln!(
                o,
                "IRS: Unique binding sport={}, dport={}, proto={}",
                x.unique_sport, x.unique_dport, x.unique_proto
            );
        }
    }
    if m.lifetime_current.is_some()
        || m.lifetime_hard.is_some()
        || m.lifetime_soft.is_some()
        || m.lifetime_idle.is_some()
    {
        lifetimes(o, m, opts, now);
    }
}

fn address(o: &mut String, tag: &str, t: u16, a: &Address, opts: PrintOpts) {
    let what = match t {
        SADB_EXT_ADDRESS_SRC => "Source address",
        SADB_EXT_ADDRESS_DST => "Destination address",
        SADB_X_EXT_ADDRESS_INNER_SRC => "Inner source address",
        SADB_X_EXT_ADDRESS_INNER_DST => "Inner destination address",
        SADB_X_EXT_ADDRESS_NATT_LOC => "NAT-T local address",
        _ => "NAT-T remote address",
    };
    let _ = write!(o, "{tag}{what} (proto={}", a.proto);
    if !opts.numeric {
        match (a.proto, proto_name(a.proto)) {
            (0, _) => o.push_str("/<unspecified>"),
            (_, Some(n)) => {
                let _ = write!(o, "/{n}");
            }
            (_, None) => o.push_str("/<unknown>"),
        }
    }
    let family = if a.ip().is_ipv4() {
        "AF_INET"
    } else {
        "AF_INET6"
    };
    let _ = write!(o, ")\n{tag}{family}: port {}, {}", a.port(), a.ip());
    if a.prefixlen != 0 {
        let _ = write!(o, "/{}", a.prefixlen);
    }
    if !opts.numeric && a.ip().is_unspecified() {
        o.push_str(" <unspecified>");
    }
    o.push_str(".\n");
}

fn ident(o: &mut String, tag: &str, what: &str, i: &Identity) {
    let (kind, printable) = match i.kind {
        SADB_IDENTTYPE_PREFIX => ("prefix".to_string(), true),
        SADB_IDENTTYPE_FQDN => ("FQDN".to_string(), true),
        SADB_IDENTTYPE_USER_FQDN => ("user-FQDN (mbox)".to_string(), true),
        SADB_X_IDENTTYPE_DN => ("ASN.1 DER Distinguished Name".to_string(), false),
        SADB_X_IDENTTYPE_GN => ("ASN.1 DER Generic Name".to_string(), false),
        SADB_X_IDENTTYPE_KEY_ID => ("Generic key id".to_string(), true),
        SADB_X_IDENTTYPE_ADDR_RANGE => ("Address range".to_string(), true),
        n => (format!("<unknown {n}>"), true),
    };
    let _ = writeln!(o, "{tag}{what} identity, uid={}, type {kind}", i.id);
    if printable {
        let _ = writeln!(o, "{tag}{}", String::from_utf8_lossy(&i.value));
    } else {
        let _ = writeln!(o, "{tag}<cannot print>");
    }
}

fn sens(o: &mut String, tag: &str, what: &str, s: &Sensitivity) {
    let _ = writeln!(
        o,
        "{tag}{what} DPD {}, sens level={}, integ level={}, flags={:x}",
        s.dpd, s.sens_level, s.integ_level, s.flags
    );
    for (i, w) in s.sens_bitmap.iter().enumerate() {
        let _ = writeln!(o, "{tag} {what} BM extended word {i} 0x{w:x}");
    }
    for (i, w) in s.integ_bitmap.iter().enumerate() {
        let _ = writeln!(o, "{tag} Integrity BM extended word {i} 0x{w:x}");
    }
}

fn proposal(o: &mut String, tag: &str, p: &Proposal) {
    let _ = writeln!(o, "{tag}Proposal, replay counter = {}.", p.replay);
    for (i, c) in p.combs.iter().enumerate() {
        comb(o, tag, i + 1, c);
    }
}

fn comb(o: &mut String, tag: &str, n: usize, c: &Comb) {
    let _ = write!(o, "{tag} Combination #{n} ");
    if c.auth != SADB_AALG_NONE {
        let _ = write!(
            o,
            "Authentication = {}  minbits={}, maxbits={}.\n{tag} ",
            auth_name(c.auth),
            c.auth_minbits,
            c.auth_maxbits
        );
    }
    if c.encrypt != SADB_EALG_NONE {
        let _ = write!(
            o,
            "Encryption = {}  minbits={}, maxbits={}, saltbits={}.\n{tag} ",
            encr_name(c.encrypt),
            c.encrypt_minbits,
            c.encrypt_maxbits,
            c.encrypt_saltbits
        );
    }
    let limits = |o: &mut String, alloc: u32, bytes: u64, add: u64, used: u64| {
        if alloc != 0 {
            let _ = write!(o, "alloc={alloc} ");
        }
        if bytes != 0 {
            let _ = write!(o, "bytes={bytes} ");
        }
        if add != 0 {
            let _ = write!(o, "post-add secs={add} ");
        }
        if used != 0 {
            let _ = write!(o, "post-use secs={used}");
        }
    };
    o.push_str("HARD: ");
    limits(
        o,
        c.hard_allocations,
        c.hard_bytes,
        c.hard_addtime,
        c.hard_usetime,
    );
    let _ = write!(o, "\n{tag} SOFT: ");
    limits(
        o,
        c.soft_allocations,
        c.soft_bytes,
        c.soft_addtime,
        c.soft_usetime,
    );
    o.push('\n');
}

fn eprop(o: &mut String, tag: &str, e: &EProp) {
    let _ = writeln!(
        o,
        "{tag}Extended Proposal, replay counter = {}, number of combinations = {}.",
        e.replay,
        e.ecombs.len()
    );
    for (i, c) in e.ecombs.iter().enumerate() {
        let _ = writeln!(o, "{tag} Extended combination #{}:", i + 1);
        let _ = writeln!(
            o,
            "{tag} HARD: alloc={}, bytes={}, post-add secs={}, post-use secs={}",
            c.hard_allocations, c.hard_bytes, c.hard_addtime, c.hard_usetime
        );
        let _ = writeln!(
            o,
            "{tag} SOFT: alloc={}, bytes={}, post-add secs={}, post-use secs={}",
            c.soft_allocations, c.soft_bytes, c.soft_addtime, c.soft_usetime
        );
        for (j, a) in c.algs.iter().enumerate() {
            algdesc(o, tag, j + 1, a);
        }
    }
}

fn algdesc(o: &mut String, tag: &str, n: usize, a: &AlgDesc) {
    let _ = write!(o, "{tag} Alg #{n} ");
    match a.satype {
        SADB_SATYPE_ESP => o.push_str("for ESP "),
        SADB_SATYPE_AH => o.push_str("for AH "),
        t => {
            let _ = write!(o, "for satype={t} ");
        }
    }
    match a.algtype {
        SADB_X_ALGTYPE_CRYPT => {
            let _ = write!(o, "Encryption = {}", encr_name(a.alg));
        }
        SADB_X_ALGTYPE_AUTH => {
            let _ = write!(o, "Authentication = {}", auth_name(a.alg));
        }
        t => {
            let _ = write!(o, "algtype({t}) = alg({})", a.alg);
        }
    }
    let _ = writeln!(
        o,
        "  minbits={}, maxbits={}, saltbits={}",
        a.minbits, a.maxbits, a.saltbits
    );
}

fn supported(o: &mut String, tag: &str, what: &str, s: &Supported, encr: bool) {
    let _ = writeln!(o, "{tag}Supported {what} algorithms.");
    for a in &s.algs {
        let name = if encr {
            encr_name(a.id)
        } else {
            auth_name(a.id)
        };
        let _ = write!(
            o,
            "{tag}{name} minbits={}, maxbits={}, ivlen={}, saltbits={}",
            a.minbits, a.maxbits, a.ivlen, a.saltbits
        );
        if encr {
            let _ = write!(o, ", increment={}", a.increment);
        }
        o.push_str(".\n");
    }
}

/// `{tag}{text}{time}` and, with -v, the raw value on a line of its own.
fn time_line(
    o: &mut String,
    tag: &str,
    text: &str,
    t: u64,
    raw_tag: Option<&str>,
    opts: PrintOpts,
) {
    let _ = writeln!(o, "{tag}{text}{}", time_text(t));
    if let (true, Some(r)) = (opts.verbose, raw_tag) {
        let _ = writeln!(o, "{r}\t(raw time value {t})");
    }
}

fn lifetimes(o: &mut String, m: &Message, opts: PrintOpts, now: u64) {
    o.push_str(" LT: Lifetime information\n");
    let cur = m.lifetime_current.as_ref();
    if let Some(c) = cur {
        let t = "CLT: ";
        let _ = writeln!(o, "{t}Current lifetime information:");
        let _ = writeln!(
            o,
            "{t}{} bytes protected, {} allocations used.",
            c.bytes, c.allocations
        );
        time_line(o, t, "SA added at time: ", c.addtime, Some(t), opts);
        if c.usetime != 0 {
            time_line(o, t, "SA first used at time ", c.usetime, Some(t), opts);
        }
        time_line(o, t, "Time now is ", now, Some(t), opts);
    }
    for (t, word, l) in [
        ("SLT: ", "Soft", &m.lifetime_soft),
        ("HLT: ", "Hard", &m.lifetime_hard),
    ] {
        if let Some(l) = l {
            limit(o, t, word, l, cur, opts, now);
        }
    }
    if let Some(l) = &m.lifetime_idle {
        let t = "ILT: ";
        let _ = writeln!(o, "{t}Idle lifetime information:");
        let _ = writeln!(o, "{t}{} seconds of post-add lifetime.", l.addtime);
        let _ = writeln!(o, "{t}{} seconds of post-use lifetime.", l.usetime);
    }
}

fn limit(
    o: &mut String,
    t: &str,
    word: &str,
    l: &Lifetime,
    cur: Option<&Lifetime>,
    opts: PrintOpts,
    now: u64,
) {
    let _ = writeln!(o, "{t}{word} lifetime information:");
    let _ = writeln!(
        o,
        "{t}{} bytes of lifetime, {} allocations.",
        l.bytes, l.allocations
    );
    let _ = writeln!(o, "{t}{} seconds of post-add lifetime.", l.addtime);
    let _ = writeln!(o, "{t}{} seconds of post-use lifetime.", l.usetime);
    let Some(c) = cur else { return };
    if l.bytes != 0 {
        let _ = writeln!(
            o,
            "{t}{} bytes more can be protected.",
            l.bytes.saturating_sub(c.bytes)
        );
    }
    let add = (l.addtime != 0).then(|| c.addtime.saturating_add(l.addtime));
    let used = (l.usetime != 0 && c.usetime != 0).then(|| c.usetime.saturating_add(l.usetime));
    let Some(at) = [add, used].into_iter().flatten().min() else {
        return;
    };
    if at >= now {
        let _ = writeln!(o, "{t}{word} expiration occurs in {} seconds", at - now);
    } else {
        let _ = writeln!(o, "{t}{word} expiration occurred");
    }
    let _ = writeln!(o, "{t}Time of expiration: {}.", time_text(at));
    if opts.verbose {
        let _ = writeln!(o, "{t}\t(raw time value {at})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec_pfkey::wire::{Pair, SaExt};
    use std::net::SocketAddr;

    fn addr(s: &str) -> Address {
        Address {
            proto: 0,
            prefixlen: 0,
            addr: s.parse::<SocketAddr>().unwrap(),
        }
    }

    fn sample() -> Message {
        let mut m = Message::new(SADB_DUMP, SADB_SATYPE_ESP);
        m.seq = 4;
        m.pid = 77;
        m.sa = Some(SaExt {
            spi: 0x1234,
            replay: 0,
            state: SADB_SASTATE_MATURE,
            auth: auth_by_name_number("hmac-sha1"),
            encrypt: 12,
            flags: SADB_X_SAFLAGS_INBOUND | SADB_X_SAFLAGS_USED,
        });
        m.src = Some(addr("0.0.0.0:0"));
        m.dst = Some(addr("10.0.0.2:0"));
        m.key_auth = Key::new(&[0xab; 20]);
        m.key_encrypt = Key::new(&[0x01; 16]);
        m.pair = Some(Pair { spi: 0x99 });
        m.lifetime_current = Some(Lifetime {
            allocations: 3,
            bytes: 300,
            addtime: 1_000_000_000,
            usetime: 0,
        });
        m.lifetime_hard = Some(Lifetime {
            addtime: 100,
            ..Lifetime::default()
        });
        m
    }

    fn auth_by_name_number(n: &str) -> u8 {
        ipsec_crypto::auth_by_name(n).unwrap().pfkey
    }

    #[test]
    fn solaris_layout() {
        let mut o = String::new();
        let opts = PrintOpts::default();
        samsg(&mut o, &sample(), 200, opts, 1_000_000_050, false);
        let want = [
            "Base message (version 2) type DUMP, SA type ESP.",
            "Message length 200 bytes, seq=4, pid=77.",
            "SA: SADB_ASSOC spi=0x1234, replay window size=0, state=MATURE",
            "SA: Authentication algorithm = hmac-sha1",
            "SA: Encryption algorithm = aes-cbc",
            "SA: flags=0x80004000 < X_USED X_INBOUND >",
            "SRC: Source address (proto=0/<unspecified>)",
            "SRC: AF_INET: port 0, 0.0.0.0 <unspecified>.",
            "DST: Destination address (proto=0/<unspecified>)",
            "DST: AF_INET: port 0, 10.0.0.2.",
            "AKY: Authentication key.",
            "AKY: abababababababababababababababababababab/160",
            "EKY: Encryption key.",
            "EKY: 01010101010101010101010101010101/128",
            "OTH: Paired with spi=0x99",
            " LT: Lifetime information",
            "CLT: Current lifetime information:",
            "CLT: 300 bytes protected, 3 allocations used.",
            "CLT: SA added at time: Sun Sep  9 01:46:40 2001 UTC",
            "CLT: Time now is Sun Sep  9 01:47:30 2001 UTC",
            "HLT: Hard lifetime information:",
            "HLT: 0 bytes of lifetime, 0 allocations.",
            "HLT: 100 seconds of post-add lifetime.",
            "HLT: 0 seconds of post-use lifetime.",
            "HLT: Hard expiration occurs in 50 seconds",
            "HLT: Time of expiration: Sun Sep  9 01:48:20 2001 UTC.",
        ];
        assert_eq!(o.lines().collect::<Vec<_>>(), want, "{o}");
    }

    #[test]
    fn paranoid_numeric_verbose_and_errors() {
        let mut o = String::new();
        let opts = PrintOpts {
            numeric: true,
            paranoid: true,
            verbose: true,
        };
        samsg(&mut o, &sample(), 200, opts, 1_000_000_050, true);
        assert!(
            o.starts_with("Timestamp: Sun Sep  9 01:47:30 2001 UTC\n"),
            "{o}"
        );
        assert!(o.contains("AKY: XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/160\n"));
        assert!(!o.contains("abab"));
        assert!(o.contains("SRC: Source address (proto=0)\nSRC: AF_INET: port 0, 0.0.0.0.\n"));
        assert!(o.contains("CLT: \t(raw time value 1000000000)\n"));

        let mut e = Message::new(SADB_DELETE, SADB_SATYPE_AH);
        e.errno = 3;
        e.diagnostic = Diagnostic::SaNotfound.code();
        let mut o = String::new();
        samsg(&mut o, &e, 16, PrintOpts::default(), 0, false);
        assert!(
            o.contains(
                "type DELETE, SA type AH.\nError No such process from PF_KEY.\n  Diagnostic code "
            ),
            "{o}"
        );
    }

    #[test]
    fn times_match_known_dates() {
        assert_eq!(time_text(0), "Thu Jan  1 00:00:00 1970 UTC");
        assert_eq!(time_text(951_782_400), "Tue Feb 29 00:00:00 2000 UTC");
        assert_eq!(time_text(1_798_761_599), "Thu Dec 31 23:59:59 2026 UTC");
    }
}
