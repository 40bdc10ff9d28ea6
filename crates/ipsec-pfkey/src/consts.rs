//! PF_KEY v2 numbers, verbatim from illumos `net/pfkeyv2.h` (RFC 2367 plus the Solaris
//! `SADB_X_*` additions), the two Ironswan additions, and the Linux `errno` and address-family
//! values used on the wire.
//!
//! The names keep the C spelling so that they can be found next to the header.

#![allow(missing_docs)]

/// `PF_KEY_V2`: the only `sadb_msg_version` accepted.
pub const PF_KEY_V2: u8 = 2;

// Message types (`sadb_msg_type`).
pub const SADB_RESERVED: u8 = 0;
pub const SADB_GETSPI: u8 = 1;
pub const SADB_UPDATE: u8 = 2;
pub const SADB_ADD: u8 = 3;
pub const SADB_DELETE: u8 = 4;
pub const SADB_GET: u8 = 5;
pub const SADB_ACQUIRE: u8 = 6;
pub const SADB_REGISTER: u8 = 7;
pub const SADB_EXPIRE: u8 = 8;
pub const SADB_FLUSH: u8 = 9;
pub const SADB_DUMP: u8 = 10;
pub const SADB_X_PROMISC: u8 = 11;
pub const SADB_X_INVERSE_ACQUIRE: u8 = 12;
pub const SADB_X_UPDATEPAIR: u8 = 13;
pub const SADB_X_DELPAIR: u8 = 14;
pub const SADB_X_DELPAIR_STATE: u8 = 15;
pub const SADB_MAX: u8 = 15;

// SA types (`sadb_msg_satype`).
pub const SADB_SATYPE_UNSPEC: u8 = 0;
pub const SADB_SATYPE_AH: u8 = 2;
pub const SADB_SATYPE_ESP: u8 = 3;
pub const SADB_SATYPE_RSVP: u8 = 5;
pub const SADB_SATYPE_OSPFV2: u8 = 6;
pub const SADB_SATYPE_RIPV2: u8 = 7;
pub const SADB_SATYPE_MIP: u8 = 8;
pub const SADB_SATYPE_MAX: u8 = 8;

// Extension types (`sadb_ext_type`).
pub const SADB_EXT_RESERVED: u16 = 0;
pub const SADB_EXT_SA: u16 = 1;
pub const SADB_EXT_LIFETIME_CURRENT: u16 = 2;
pub const SADB_EXT_LIFETIME_HARD: u16 = 3;
pub const SADB_EXT_LIFETIME_SOFT: u16 = 4;
pub const SADB_EXT_ADDRESS_SRC: u16 = 5;
pub const SADB_EXT_ADDRESS_DST: u16 = 6;
pub const SADB_EXT_ADDRESS_PROXY: u16 = 7;
pub const SADB_X_EXT_ADDRESS_INNER_SRC: u16 = SADB_EXT_ADDRESS_PROXY;
pub const SADB_EXT_KEY_AUTH: u16 = 8;
pub const SADB_EXT_KEY_ENCRYPT: u16 = 9;
pub const SADB_EXT_IDENTITY_SRC: u16 = 10;
pub const SADB_EXT_IDENTITY_DST: u16 = 11;
pub const SADB_EXT_SENSITIVITY: u16 = 12;
pub const SADB_EXT_PROPOSAL: u16 = 13;
pub const SADB_EXT_SUPPORTED_AUTH: u16 = 14;
pub const SADB_EXT_SUPPORTED_ENCRYPT: u16 = 15;
pub const SADB_EXT_SPIRANGE: u16 = 16;
pub const SADB_X_EXT_EREG: u16 = 17;
pub const SADB_X_EXT_EPROP: u16 = 18;
pub const SADB_X_EXT_KM_COOKIE: u16 = 19;
pub const SADB_X_EXT_ADDRESS_NATT_LOC: u16 = 20;
pub const SADB_X_EXT_ADDRESS_NATT_REM: u16 = 21;
pub const SADB_X_EXT_ADDRESS_INNER_DST: u16 = 22;
pub const SADB_X_EXT_PAIR: u16 = 23;
pub const SADB_X_EXT_REPLAY_VALUE: u16 = 24;
pub const SADB_X_EXT_EDUMP: u16 = 25;
pub const SADB_X_EXT_LIFETIME_IDLE: u16 = 26;
pub const SADB_X_EXT_OUTER_SENS: u16 = 27;
pub const SADB_EXT_MAX: u16 = 27;

/// Ironswan: extended SA options (replay windows above 255, ESN, legacy-algorithm opt-in,
/// DSCP copy, padding check, unique-SA binding). Far above the Solaris range (27, and
/// whatever illumos adds next) so the two can grow independently; see the crate docs.
pub const SADB_X_EXT_IRONSWAN_SA: u16 = 240;

// SA flags (`sadb_sa_flags`).
pub const SADB_SAFLAGS_PFS: u32 = 0x1;
pub const SADB_SAFLAGS_NOREPLAY: u32 = 0x2;
pub const SADB_X_SAFLAGS_USED: u32 = 0x8000_0000;
pub const SADB_X_SAFLAGS_UNIQUE: u32 = 0x4000_0000;
pub const SADB_X_SAFLAGS_AALG1: u32 = 0x2000_0000;
pub const SADB_X_SAFLAGS_AALG2: u32 = 0x1000_0000;
pub const SADB_X_SAFLAGS_EALG1: u32 = 0x0800_0000;
pub const SADB_X_SAFLAGS_EALG2: u32 = 0x0400_0000;
pub const SADB_X_SAFLAGS_KM1: u32 = 0x0200_0000;
pub const SADB_X_SAFLAGS_KM2: u32 = 0x0100_0000;
pub const SADB_X_SAFLAGS_KM3: u32 = 0x0080_0000;
pub const SADB_X_SAFLAGS_KM4: u32 = 0x0040_0000;
pub const SADB_X_SAFLAGS_KRES1: u32 = 0x0020_0000;
pub const SADB_X_SAFLAGS_NATT_LOC: u32 = 0x0010_0000;
pub const SADB_X_SAFLAGS_NATT_REM: u32 = 0x0008_0000;
pub const SADB_X_SAFLAGS_KRES2: u32 = 0x0004_0000;
pub const SADB_X_SAFLAGS_TUNNEL: u32 = 0x0002_0000;
pub const SADB_X_SAFLAGS_PAIRED: u32 = 0x0001_0000;
pub const SADB_X_SAFLAGS_OUTBOUND: u32 = 0x8000;
pub const SADB_X_SAFLAGS_INBOUND: u32 = 0x4000;
pub const SADB_X_SAFLAGS_TCPSIG: u32 = 0x2000;
pub const SADB_X_SAFLAGS_NATTED: u32 = 0x1000;

// SA states (`sadb_sa_state`).
pub const SADB_SASTATE_LARVAL: u8 = 0;
pub const SADB_SASTATE_MATURE: u8 = 1;
pub const SADB_SASTATE_DYING: u8 = 2;
pub const SADB_SASTATE_DEAD: u8 = 3;
pub const SADB_X_SASTATE_ACTIVE_ELSEWHERE: u8 = 4;
pub const SADB_X_SASTATE_IDLE: u8 = 5;
pub const SADB_X_SASTATE_ACTIVE: u8 = 6;
pub const SADB_SASTATE_MAX: u8 = 6;

// Algorithm numbers Solaris defines (the others come from ipsec-crypto's table).
pub const SADB_AALG_NONE: u8 = 0;
pub const SADB_EALG_NONE: u8 = 0;
pub const SADB_EALG_NULL: u8 = 11;

// Identity types (`sadb_ident_type`).
pub const SADB_IDENTTYPE_RESERVED: u16 = 0;
pub const SADB_IDENTTYPE_PREFIX: u16 = 1;
pub const SADB_IDENTTYPE_FQDN: u16 = 2;
pub const SADB_IDENTTYPE_USER_FQDN: u16 = 3;
pub const SADB_X_IDENTTYPE_DN: u16 = 4;
pub const SADB_X_IDENTTYPE_GN: u16 = 5;
pub const SADB_X_IDENTTYPE_KEY_ID: u16 = 6;
pub const SADB_X_IDENTTYPE_ADDR_RANGE: u16 = 7;
pub const SADB_IDENTTYPE_MAX: u16 = 7;

// Sensitivity flags (`sadb_x_sens_flags`).
pub const SADB_X_SENS_IMPLICIT: u32 = 0x1;
pub const SADB_X_SENS_UNLABELED: u32 = 0x2;

// Algorithm types of `sadb_x_algdesc_algtype`.
pub const SADB_X_ALGTYPE_NONE: u8 = 0;
pub const SADB_X_ALGTYPE_AUTH: u8 = 1;
pub const SADB_X_ALGTYPE_CRYPT: u8 = 2;
pub const SADB_X_ALGTYPE_COMPRESS: u8 = 3;

// Key management protocols (`sadb_x_kmc_proto`).
pub const SADB_X_KMP_MANUAL: u32 = 0;
pub const SADB_X_KMP_IKE: u32 = 1;
pub const SADB_X_KMP_KINK: u32 = 2;

// Flags of the Ironswan SA extension (`SADB_X_EXT_IRONSWAN_SA`).
/// 64-bit extended sequence numbers (RFC 4303 §2.2.1).
pub const IRONSWAN_SA_ESN: u32 = 0x1;
/// Permit RFC 8221 MUST NOT algorithms.
pub const IRONSWAN_SA_ALLOW_LEGACY: u32 = 0x2;
/// Do not copy the inner DSCP to the outer header in tunnel mode.
pub const IRONSWAN_SA_NO_COPY_DSCP: u32 = 0x4;
/// Do not check ESP padding bytes.
pub const IRONSWAN_SA_NO_PADDING_CHECK: u32 = 0x8;
/// The unique-SA binding fields of the extension are valid.
pub const IRONSWAN_SA_UNIQUE_BINDING: u32 = 0x10;
/// Every flag the extension defines.
pub const IRONSWAN_SA_ALL_FLAGS: u32 = 0x1f;

// Address families in `sa_family` (Linux values, 16-bit, host byte order).
/// `AF_INET` on Linux (and Solaris).
pub const AF_INET: u16 = 2;
/// `AF_INET6` on Linux (Solaris uses 26; Ironswan peers are Linux programs).
pub const AF_INET6: u16 = 10;

// errno values in `sadb_msg_errno` (Linux numbering).
pub const ESRCH: u8 = 3;
pub const ENOENT: u8 = 2;
pub const ENOMEM: u8 = 12;
pub const EEXIST: u8 = 17;
pub const EBUSY: u8 = 16;
pub const EINVAL: u8 = 22;
pub const EMSGSIZE: u8 = 90;
pub const EPROTOTYPE: u8 = 91;
pub const EOPNOTSUPP: u8 = 95;

/// The name of a message type (`SADB_ADD`, ...), or `None` for numbers outside 0..=15.
pub fn msg_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        SADB_RESERVED => "SADB_RESERVED",
        SADB_GETSPI => "SADB_GETSPI",
        SADB_UPDATE => "SADB_UPDATE",
        SADB_ADD => "SADB_ADD",
        SADB_DELETE => "SADB_DELETE",
        SADB_GET => "SADB_GET",
        SADB_ACQUIRE => "SADB_ACQUIRE",
        SADB_REGISTER => "SADB_REGISTER",
        SADB_EXPIRE => "SADB_EXPIRE",
        SADB_FLUSH => "SADB_FLUSH",
        SADB_DUMP => "SADB_DUMP",
        SADB_X_PROMISC => "SADB_X_PROMISC",
        SADB_X_INVERSE_ACQUIRE => "SADB_X_INVERSE_ACQUIRE",
        SADB_X_UPDATEPAIR => "SADB_X_UPDATEPAIR",
        SADB_X_DELPAIR => "SADB_X_DELPAIR",
        SADB_X_DELPAIR_STATE => "SADB_X_DELPAIR_STATE",
        _ => return None,
    })
}

/// The name of an SA type (`ah`, `esp`, ...).
pub fn satype_name(t: u8) -> &'static str {
    match t {
        SADB_SATYPE_UNSPEC => "unspec",
        SADB_SATYPE_AH => "ah",
        SADB_SATYPE_ESP => "esp",
        SADB_SATYPE_RSVP => "rsvp",
        SADB_SATYPE_OSPFV2 => "ospfv2",
        SADB_SATYPE_RIPV2 => "ripv2",
        SADB_SATYPE_MIP => "mip",
        _ => "?",
    }
}
