//! The PF_KEY v2 wire format: the `sadb_msg` header view, a zero-copy extension walker, and
//! the owned [`Message`] with `parse` and `emit`.
//!
//! ```text
//!   bytes ──MsgHeader::new_checked──► header fields (zero-copy)
//!         ──Extensions::new─────────► RawExt { ext_type, bytes } ...   (zero-copy walk)
//!         ──Message::parse──────────► Message { header, Option<ext> per type }
//!   Message ──validate(Flow)────────► required/forbidden extensions per type and direction
//!   Message ──emit──────────────────► bytes (canonical order, reserved and padding zeroed)
//! ```
//!
//! Rules enforced by [`Message::parse`], in the order Solaris' keysock applies them:
//!
//! 1. at least the 16-byte header, `sadb_msg_len * 8` equal to the buffer length
//!    (else `EMSGSIZE`); version `PF_KEY_V2` (else `EINVAL`);
//! 2. a known message type (1..=15; 0 only in an error reply) (else `UNKNOWN_MSG`);
//! 3. for each extension: a known type (else `UNKNOWN_EXT`), a length of at least one word
//!    that stays inside the message (else `BAD_EXTLEN`), not a second copy of a type (else
//!    `DUPLICATE_*`), and contents that fit its layout with reserved and padding bytes zero
//!    (else `MALFORMED_*`, `BAD_*_AF`, `PREFIX_INNER_*` or `BAD_EXTLEN`).
//!
//! [`Message::emit`] writes extensions in ascending type order. For every `m`,
//! `emit(m) == Ok(b)` implies `parse(b) == Ok(m)` (emit refuses values parse would refuse).

mod ext;

use core::fmt;

pub(crate) use ext::{duplicate_diag, ne16, ne32};
pub use ext::{
    Address, Alg, AlgDesc, Comb, EComb, EProp, Edump, Ereg, Identity, IronswanSa, Key, KmCookie,
    Lifetime, Pair, Proposal, ReplayValue, SaExt, Sensitivity, SpiRange, Supported,
};

use crate::consts::*;
use crate::diag::Diagnostic;

/// The largest message: `sadb_msg_len` is 16 bits of 8-byte words.
pub const MAX_MSG_LEN: usize = 0xffff * 8;

/// Why a message was refused: the `errno` and diagnostic of the error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PfkeyError {
    /// `sadb_msg_errno` (Linux numbering: `EINVAL`, `EEXIST`, ...).
    pub errno: u8,
    /// `sadb_x_msg_diagnostic`.
    pub diagnostic: Diagnostic,
    /// What exactly was wrong (for logs; not sent on the wire).
    pub what: &'static str,
}

impl PfkeyError {
    /// An error with this errno, diagnostic and description.
    pub const fn new(errno: u8, diagnostic: Diagnostic, what: &'static str) -> Self {
        Self {
            errno,
            diagnostic,
            what,
        }
    }

    /// `EINVAL` with a diagnostic.
    pub const fn invalid(diagnostic: Diagnostic, what: &'static str) -> Self {
        Self::new(EINVAL, diagnostic, what)
    }

    pub(crate) const fn too_big() -> Self {
        Self::new(EMSGSIZE, Diagnostic::None, "message or extension too large")
    }
}

impl fmt::Display for PfkeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "errno {}, {} ({})",
            self.errno, self.diagnostic, self.what
        )
    }
}

impl std::error::Error for PfkeyError {}

/// Field offsets of `sadb_msg` (16 bytes).
pub mod field {
    use core::ops::Range;
    /// `sadb_msg_version`.
    pub const VERSION: usize = 0;
    /// `sadb_msg_type`.
    pub const TYPE: usize = 1;
    /// `sadb_msg_errno`.
    pub const ERRNO: usize = 2;
    /// `sadb_msg_satype`.
    pub const SATYPE: usize = 3;
    /// `sadb_msg_len` (host order, 8-byte words).
    pub const LEN: Range<usize> = 4..6;
    /// `sadb_msg_reserved` / `sadb_x_msg_diagnostic` (host order).
    pub const DIAGNOSTIC: Range<usize> = 6..8;
    /// `sadb_msg_seq` (host order).
    pub const SEQ: Range<usize> = 8..12;
    /// `sadb_msg_pid` (host order).
    pub const PID: Range<usize> = 12..16;
    /// Header size.
    pub const HEADER_LEN: usize = 16;
}

/// A zero-copy view of a `sadb_msg` header.
#[derive(Clone, Copy, Debug)]
pub struct MsgHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MsgHeader<T> {
    /// Wraps a buffer without checking its length; accessors then return 0 past the end.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer of at least 16 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, PfkeyError> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks that the header fits.
    pub fn check_len(&self) -> Result<(), PfkeyError> {
        if self.buffer.as_ref().len() < field::HEADER_LEN {
            Err(PfkeyError::new(
                EMSGSIZE,
                Diagnostic::None,
                "shorter than a sadb_msg",
            ))
        } else {
            Ok(())
        }
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self, i: usize) -> u8 {
        self.buffer.as_ref().get(i).copied().unwrap_or(0)
    }
    /// `sadb_msg_version`.
    pub fn version(&self) -> u8 {
        self.b(field::VERSION)
    }
    /// `sadb_msg_type`.
    pub fn msg_type(&self) -> u8 {
        self.b(field::TYPE)
    }
    /// `sadb_msg_errno`.
    pub fn errno(&self) -> u8 {
        self.b(field::ERRNO)
    }
    /// `sadb_msg_satype`.
    pub fn satype(&self) -> u8 {
        self.b(field::SATYPE)
    }
    /// `sadb_msg_len` in 8-byte words.
    pub fn len_words(&self) -> u16 {
        ne16(self.buffer.as_ref(), field::LEN.start).unwrap_or(0)
    }
    /// `sadb_x_msg_diagnostic`.
    pub fn diagnostic(&self) -> u16 {
        ne16(self.buffer.as_ref(), field::DIAGNOSTIC.start).unwrap_or(0)
    }
    /// `sadb_msg_seq`.
    pub fn seq(&self) -> u32 {
        ne32(self.buffer.as_ref(), field::SEQ.start).unwrap_or(0)
    }
    /// `sadb_msg_pid`.
    pub fn pid(&self) -> u32 {
        ne32(self.buffer.as_ref(), field::PID.start).unwrap_or(0)
    }
}

/// One extension found by [`Extensions`]: its type and its bytes (header included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawExt<'a> {
    /// `sadb_ext_type`.
    pub ext_type: u16,
    /// The whole extension, `sadb_ext_len * 8` bytes.
    pub bytes: &'a [u8],
}

/// A zero-copy walk over the extensions after the header. Yields an error (and then stops)
/// on a zero length or an extension running past the message. Unknown types are yielded;
/// [`Message::parse`] refuses them.
#[derive(Clone, Debug)]
pub struct Extensions<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Extensions<'a> {
    /// Walks the extensions of a whole message (header included in `msg`).
    pub fn new(msg: &'a [u8]) -> Self {
        Self {
            rest: msg.get(field::HEADER_LEN..).unwrap_or(&[]),
            failed: false,
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<RawExt<'a>, PfkeyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let bad = |what| Some(Err(PfkeyError::invalid(Diagnostic::BadExtlen, what)));
        let (Some(words), Some(ext_type)) = (ne16(self.rest, 0), ne16(self.rest, 2)) else {
            self.failed = true;
            return bad("extension header runs past the message");
        };
        if ext_type == SADB_EXT_RESERVED
            || (ext_type > SADB_EXT_MAX && ext_type != SADB_X_EXT_IRONSWAN_SA)
        {
            self.failed = true;
            return Some(Err(PfkeyError::invalid(
                Diagnostic::UnknownExt,
                "unknown extension type",
            )));
        }
        let len = usize::from(words) * 8;
        if len == 0 || len > self.rest.len() {
            self.failed = true;
            return bad("extension length zero or past the end of the message");
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(RawExt { ext_type, bytes }))
    }
}

/// A PF_KEY v2 message: the `sadb_msg` header fields and at most one extension of each type.
///
/// `Debug` never shows key material.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Message {
    /// `sadb_msg_type` (`SADB_*`).
    pub msg_type: u8,
    /// `sadb_msg_errno` (0 = success).
    pub errno: u8,
    /// `sadb_msg_satype` (`SADB_SATYPE_*`).
    pub satype: u8,
    /// `sadb_x_msg_diagnostic` (meaningful when `errno` is set).
    pub diagnostic: u16,
    /// `sadb_msg_seq`.
    pub seq: u32,
    /// `sadb_msg_pid`.
    pub pid: u32,

    pub sa: Option<SaExt>,
    pub lifetime_current: Option<Lifetime>,
    pub lifetime_hard: Option<Lifetime>,
    pub lifetime_soft: Option<Lifetime>,
    pub src: Option<Address>,
    pub dst: Option<Address>,
    /// INNER_SRC (= PROXY).
    pub inner_src: Option<Address>,
    pub key_auth: Option<Key>,
    pub key_encrypt: Option<Key>,
    pub ident_src: Option<Identity>,
    pub ident_dst: Option<Identity>,
    pub sensitivity: Option<Sensitivity>,
    pub proposal: Option<Proposal>,
    pub supported_auth: Option<Supported>,
    pub supported_encrypt: Option<Supported>,
    pub spirange: Option<SpiRange>,
    pub ereg: Option<Ereg>,
    pub eprop: Option<EProp>,
    pub kmc: Option<KmCookie>,
    pub natt_loc: Option<Address>,
    pub natt_rem: Option<Address>,
    pub inner_dst: Option<Address>,
    pub pair: Option<Pair>,
    pub replay_value: Option<ReplayValue>,
    pub edump: Option<Edump>,
    pub lifetime_idle: Option<Lifetime>,
    pub outer_sens: Option<Sensitivity>,
    /// Ironswan's SA options (type 240).
    pub ironswan_sa: Option<IronswanSa>,
}

/// Which way a message travels, for [`Message::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// From a PF_KEY client to the key engine (a request).
    ToKernel,
    /// From the key engine to clients (a reply or a broadcast).
    FromKernel,
}

impl Message {
    /// A message with only a header.
    pub fn new(msg_type: u8, satype: u8) -> Self {
        Self {
            msg_type,
            satype,
            ..Self::default()
        }
    }

    /// The header of a reply to `req`: same type, SA type, sequence and pid; no error.
    pub fn reply_to(req: &Message) -> Self {
        Self {
            msg_type: req.msg_type,
            satype: req.satype,
            seq: req.seq,
            pid: req.pid,
            ..Self::default()
        }
    }

    /// An error reply (base header only) to a message whose header is `hdr`. Out-of-range
    /// message types become `SADB_RESERVED`, as Solaris' keysock does.
    pub fn error_reply(hdr: &[u8], err: &PfkeyError) -> Self {
        let h = MsgHeader::new_unchecked(hdr);
        let t = h.msg_type();
        Self {
            msg_type: if (SADB_GETSPI..=SADB_MAX).contains(&t) {
                t
            } else {
                SADB_RESERVED
            },
            errno: err.errno,
            satype: h.satype(),
            diagnostic: err.diagnostic.code(),
            seq: h.seq(),
            pid: h.pid(),
            ..Self::default()
        }
    }

    /// The diagnostic of an error reply, if it is a known code.
    pub fn diagnostic(&self) -> Option<Diagnostic> {
        Diagnostic::from_u16(self.diagnostic)
    }

    /// Whether any extension is present.
    pub fn has_extensions(&self) -> bool {
        self.ext_types().next().is_some()
    }

    /// The types of the extensions present, in ascending order.
    pub fn ext_types(&self) -> impl Iterator<Item = u16> + '_ {
        let present = [
            (SADB_EXT_SA, self.sa.is_some()),
            (SADB_EXT_LIFETIME_CURRENT, self.lifetime_current.is_some()),
            (SADB_EXT_LIFETIME_HARD, self.lifetime_hard.is_some()),
            (SADB_EXT_LIFETIME_SOFT, self.lifetime_soft.is_some()),
            (SADB_EXT_ADDRESS_SRC, self.src.is_some()),
            (SADB_EXT_ADDRESS_DST, self.dst.is_some()),
            (SADB_X_EXT_ADDRESS_INNER_SRC, self.inner_src.is_some()),
            (SADB_EXT_KEY_AUTH, self.key_auth.is_some()),
            (SADB_EXT_KEY_ENCRYPT, self.key_encrypt.is_some()),
            (SADB_EXT_IDENTITY_SRC, self.ident_src.is_some()),
            (SADB_EXT_IDENTITY_DST, self.ident_dst.is_some()),
            (SADB_EXT_SENSITIVITY, self.sensitivity.is_some()),
            (SADB_EXT_PROPOSAL, self.proposal.is_some()),
            (SADB_EXT_SUPPORTED_AUTH, self.supported_auth.is_some()),
            (SADB_EXT_SUPPORTED_ENCRYPT, self.supported_encrypt.is_some()),
            (SADB_EXT_SPIRANGE, self.spirange.is_some()),
            (SADB_X_EXT_EREG, self.ereg.is_some()),
            (SADB_X_EXT_EPROP, self.eprop.is_some()),
            (SADB_X_EXT_KM_COOKIE, self.kmc.is_some()),
            (SADB_X_EXT_ADDRESS_NATT_LOC, self.natt_loc.is_some()),
            (SADB_X_EXT_ADDRESS_NATT_REM, self.natt_rem.is_some()),
            (SADB_X_EXT_ADDRESS_INNER_DST, self.inner_dst.is_some()),
            (SADB_X_EXT_PAIR, self.pair.is_some()),
            (SADB_X_EXT_REPLAY_VALUE, self.replay_value.is_some()),
            (SADB_X_EXT_EDUMP, self.edump.is_some()),
            (SADB_X_EXT_LIFETIME_IDLE, self.lifetime_idle.is_some()),
            (SADB_X_EXT_OUTER_SENS, self.outer_sens.is_some()),
            (SADB_X_EXT_IRONSWAN_SA, self.ironswan_sa.is_some()),
        ];
        present.into_iter().filter(|(_, p)| *p).map(|(t, _)| t)
    }

    /// Parses a whole message (see the module docs for the rules).
    pub fn parse(buf: &[u8]) -> Result<Self, PfkeyError> {
        let h = MsgHeader::new_checked(buf)?;
        if usize::from(h.len_words()) * 8 != buf.len() {
            return Err(PfkeyError::new(
                EMSGSIZE,
                Diagnostic::None,
                "sadb_msg_len does not match the message size",
            ));
        }
        if h.version() != PF_KEY_V2 {
            return Err(PfkeyError::invalid(Diagnostic::None, "not PF_KEY_V2"));
        }
        let t = h.msg_type();
        if t > SADB_MAX || (t == SADB_RESERVED && h.errno() == 0) {
            return Err(PfkeyError::invalid(
                Diagnostic::UnknownMsg,
                "unknown message type",
            ));
        }
        let mut m = Self {
            msg_type: t,
            errno: h.errno(),
            satype: h.satype(),
            diagnostic: h.diagnostic(),
            seq: h.seq(),
            pid: h.pid(),
            ..Self::default()
        };
        for raw in Extensions::new(buf) {
            let RawExt {
                ext_type: et,
                bytes: b,
            } = raw?;
            m.put_ext(et, b)?;
        }
        Ok(m)
    }

    fn put_ext(&mut self, et: u16, b: &[u8]) -> Result<(), PfkeyError> {
        fn set<T>(
            slot: &mut Option<T>,
            et: u16,
            v: impl FnOnce() -> Result<T, PfkeyError>,
        ) -> Result<(), PfkeyError> {
            if slot.is_some() {
                return Err(PfkeyError::invalid(
                    duplicate_diag(et),
                    "duplicate extension",
                ));
            }
            *slot = Some(v()?);
            Ok(())
        }
        match et {
            SADB_EXT_SA => set(&mut self.sa, et, || SaExt::parse(et, b)),
            SADB_EXT_LIFETIME_CURRENT => {
                set(&mut self.lifetime_current, et, || Lifetime::parse(et, b))
            }
            SADB_EXT_LIFETIME_HARD => set(&mut self.lifetime_hard, et, || Lifetime::parse(et, b)),
            SADB_EXT_LIFETIME_SOFT => set(&mut self.lifetime_soft, et, || Lifetime::parse(et, b)),
            SADB_X_EXT_LIFETIME_IDLE => set(&mut self.lifetime_idle, et, || Lifetime::parse(et, b)),
            SADB_EXT_ADDRESS_SRC => set(&mut self.src, et, || Address::parse(et, b)),
            SADB_EXT_ADDRESS_DST => set(&mut self.dst, et, || Address::parse(et, b)),
            SADB_X_EXT_ADDRESS_INNER_SRC => set(&mut self.inner_src, et, || Address::parse(et, b)),
            SADB_X_EXT_ADDRESS_INNER_DST => set(&mut self.inner_dst, et, || Address::parse(et, b)),
            SADB_X_EXT_ADDRESS_NATT_LOC => set(&mut self.natt_loc, et, || Address::parse(et, b)),
            SADB_X_EXT_ADDRESS_NATT_REM => set(&mut self.natt_rem, et, || Address::parse(et, b)),
            SADB_EXT_KEY_AUTH => set(&mut self.key_auth, et, || Key::parse(et, b)),
            SADB_EXT_KEY_ENCRYPT => set(&mut self.key_encrypt, et, || Key::parse(et, b)),
            SADB_EXT_IDENTITY_SRC => set(&mut self.ident_src, et, || Identity::parse(et, b)),
            SADB_EXT_IDENTITY_DST => set(&mut self.ident_dst, et, || Identity::parse(et, b)),
            SADB_EXT_SENSITIVITY => set(&mut self.sensitivity, et, || Sensitivity::parse(et, b)),
            SADB_X_EXT_OUTER_SENS => set(&mut self.outer_sens, et, || Sensitivity::parse(et, b)),
            SADB_EXT_PROPOSAL => set(&mut self.proposal, et, || Proposal::parse(et, b)),
            SADB_X_EXT_EPROP => set(&mut self.eprop, et, || EProp::parse(et, b)),
            SADB_EXT_SUPPORTED_AUTH => {
                set(&mut self.supported_auth, et, || Supported::parse(et, b))
            }
            SADB_EXT_SUPPORTED_ENCRYPT => {
                set(&mut self.supported_encrypt, et, || Supported::parse(et, b))
            }
            SADB_EXT_SPIRANGE => set(&mut self.spirange, et, || SpiRange::parse(et, b)),
            SADB_X_EXT_EREG => set(&mut self.ereg, et, || Ereg::parse(et, b)),
            SADB_X_EXT_KM_COOKIE => set(&mut self.kmc, et, || KmCookie::parse(et, b)),
            SADB_X_EXT_PAIR => set(&mut self.pair, et, || Pair::parse(et, b)),
            SADB_X_EXT_REPLAY_VALUE => {
                set(&mut self.replay_value, et, || ReplayValue::parse(et, b))
            }
            SADB_X_EXT_EDUMP => set(&mut self.edump, et, || Edump::parse(et, b)),
            SADB_X_EXT_IRONSWAN_SA => set(&mut self.ironswan_sa, et, || IronswanSa::parse(et, b)),
            _ => Err(PfkeyError::invalid(
                Diagnostic::UnknownExt,
                "unknown extension type",
            )),
        }
    }

    /// Writes the message: header, then the extensions in ascending type order, every
    /// reserved and padding byte zero. Fails (`EMSGSIZE`) when the message would exceed
    /// [`MAX_MSG_LEN`] or an extension its 16-bit length, and (`EINVAL`) on values the
    /// parser would refuse (unknown message type, zero-bit or all-zero key, NUL inside an
    /// identity, inverted SPI range, ...).
    pub fn emit(&self) -> Result<Vec<u8>, PfkeyError> {
        if self.msg_type > SADB_MAX || (self.msg_type == SADB_RESERVED && self.errno == 0) {
            return Err(PfkeyError::invalid(
                Diagnostic::UnknownMsg,
                "unknown message type",
            ));
        }
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&[PF_KEY_V2, self.msg_type, self.errno, self.satype]);
        out.extend_from_slice(&[0, 0]); // length, filled in below
        out.extend_from_slice(&self.diagnostic.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&self.pid.to_ne_bytes());
        if let Some(e) = &self.sa {
            e.emit(&mut out)?;
        }
        for (t, l) in [
            (SADB_EXT_LIFETIME_CURRENT, &self.lifetime_current),
            (SADB_EXT_LIFETIME_HARD, &self.lifetime_hard),
            (SADB_EXT_LIFETIME_SOFT, &self.lifetime_soft),
        ] {
            if let Some(l) = l {
                l.emit(t, &mut out)?;
            }
        }
        for (t, a) in [
            (SADB_EXT_ADDRESS_SRC, &self.src),
            (SADB_EXT_ADDRESS_DST, &self.dst),
            (SADB_X_EXT_ADDRESS_INNER_SRC, &self.inner_src),
        ] {
            if let Some(a) = a {
                a.emit(t, &mut out)?;
            }
        }
        if let Some(k) = &self.key_auth {
            k.emit(SADB_EXT_KEY_AUTH, &mut out)?;
        }
        if let Some(k) = &self.key_encrypt {
            k.emit(SADB_EXT_KEY_ENCRYPT, &mut out)?;
        }
        if let Some(i) = &self.ident_src {
            i.emit(SADB_EXT_IDENTITY_SRC, &mut out)?;
        }
        if let Some(i) = &self.ident_dst {
            i.emit(SADB_EXT_IDENTITY_DST, &mut out)?;
        }
        if let Some(s) = &self.sensitivity {
            s.emit(SADB_EXT_SENSITIVITY, &mut out)?;
        }
        if let Some(p) = &self.proposal {
            p.emit(&mut out)?;
        }
        if let Some(s) = &self.supported_auth {
            s.emit(SADB_EXT_SUPPORTED_AUTH, &mut out)?;
        }
        if let Some(s) = &self.supported_encrypt {
            s.emit(SADB_EXT_SUPPORTED_ENCRYPT, &mut out)?;
        }
        if let Some(r) = &self.spirange {
            r.emit(&mut out)?;
        }
        if let Some(e) = &self.ereg {
            e.emit(&mut out)?;
        }
        if let Some(e) = &self.eprop {
            e.emit(&mut out)?;
        }
        if let Some(k) = &self.kmc {
            k.emit(&mut out)?;
        }
        for (t, a) in [
            (SADB_X_EXT_ADDRESS_NATT_LOC, &self.natt_loc),
            (SADB_X_EXT_ADDRESS_NATT_REM, &self.natt_rem),
            (SADB_X_EXT_ADDRESS_INNER_DST, &self.inner_dst),
        ] {
            if let Some(a) = a {
                a.emit(t, &mut out)?;
            }
        }
        if let Some(p) = &self.pair {
            p.emit(&mut out)?;
        }
        if let Some(r) = &self.replay_value {
            r.emit(&mut out)?;
        }
        if let Some(e) = &self.edump {
            e.emit(&mut out)?;
        }
        if let Some(l) = &self.lifetime_idle {
            l.emit(SADB_X_EXT_LIFETIME_IDLE, &mut out)?;
        }
        if let Some(s) = &self.outer_sens {
            s.emit(SADB_X_EXT_OUTER_SENS, &mut out)?;
        }
        if let Some(x) = &self.ironswan_sa {
            x.emit(&mut out)?;
        }
        let words = u16::try_from(out.len() / 8).map_err(|_| PfkeyError::too_big())?;
        if let Some(l) = out.get_mut(field::LEN) {
            l.copy_from_slice(&words.to_ne_bytes());
        }
        Ok(out)
    }

    /// Checks which extensions a message of this type must and may carry when travelling
    /// `flow`. For requests (`ToKernel`):
    ///
    /// | type | required (diagnostic when absent) | refused |
    /// |---|---|---|
    /// | GETSPI | SRC (18), DST (19), SPIRANGE (23) | |
    /// | ADD, UPDATE, X_UPDATEPAIR | SRC (18), DST (19), SA (20) | LIFETIME_CURRENT (82, `EOPNOTSUPP`) |
    /// | DELETE, GET, X_DELPAIR | SA (20), DST (19) | |
    /// | X_DELPAIR_STATE | SA (20), SRC (18), DST (19) | |
    /// | ACQUIRE without errno | SRC (18), DST (19) | |
    /// | ACQUIRE with errno | | any extension (7) |
    /// | REGISTER, SA type 0 | X_EREG (5) | anything else (7) |
    /// | REGISTER, SA type set; FLUSH | | any extension (7) |
    /// | DUMP | | anything but X_EDUMP (7) |
    /// | X_INVERSE_ACQUIRE | SRC (18), DST (19); INNER_SRC and INNER_DST together (58/59) | |
    ///
    /// Key extensions outside ADD and UPDATE are refused (36/37), proposals outside ACQUIRE
    /// (38), supported-algorithm lists always (39). Other unexpected extensions are ignored,
    /// as Solaris does.
    ///
    /// For replies and broadcasts (`FromKernel`): an error reply carries no extension;
    /// GETSPI, ADD, UPDATE, X_UPDATEPAIR, DELETE, X_DELPAIR and GET carry SA and DST; DUMP
    /// carries SA and DST or nothing (the end marker); EXPIRE carries SA, LIFETIME_CURRENT,
    /// one of HARD/SOFT/IDLE, and DST; REGISTER a supported-algorithms list; ACQUIRE and
    /// X_INVERSE_ACQUIRE SRC, DST and a proposal (or X_EPROP).
    pub fn validate(&self, flow: Flow) -> Result<(), PfkeyError> {
        match flow {
            Flow::ToKernel => self.validate_request(),
            Flow::FromKernel => self.validate_reply(),
        }
    }

    fn validate_request(&self) -> Result<(), PfkeyError> {
        use Diagnostic as D;
        let need = |p: bool, d: Diagnostic, what| {
            if p {
                Ok(())
            } else {
                Err(PfkeyError::invalid(d, what))
            }
        };
        let no_ext = |p: bool| {
            if p {
                Err(PfkeyError::invalid(
                    D::NoExt,
                    "this message takes no such extension",
                ))
            } else {
                Ok(())
            }
        };
        let t = self.msg_type;
        if self.supported_auth.is_some() || self.supported_encrypt.is_some() {
            return Err(PfkeyError::invalid(
                D::SuppPresent,
                "supported-algorithm list in a request",
            ));
        }
        if t != SADB_ACQUIRE && (self.proposal.is_some() || self.eprop.is_some()) {
            return Err(PfkeyError::invalid(
                D::PropPresent,
                "proposal outside ACQUIRE",
            ));
        }
        let keys_ok = matches!(t, SADB_ADD | SADB_UPDATE);
        if !keys_ok && self.key_auth.is_some() {
            return Err(PfkeyError::invalid(
                D::AkeyPresent,
                "authentication key not allowed here",
            ));
        }
        if !keys_ok && self.key_encrypt.is_some() {
            return Err(PfkeyError::invalid(
                D::EkeyPresent,
                "encryption key not allowed here",
            ));
        }
        match t {
            SADB_GETSPI => {
                need(self.src.is_some(), D::MissingSrc, "GETSPI needs SRC")?;
                need(self.dst.is_some(), D::MissingDst, "GETSPI needs DST")?;
                need(
                    self.spirange.is_some(),
                    D::MissingRange,
                    "GETSPI needs SPIRANGE",
                )?;
            }
            SADB_ADD | SADB_UPDATE | SADB_X_UPDATEPAIR => {
                need(self.src.is_some(), D::MissingSrc, "needs SRC")?;
                need(self.dst.is_some(), D::MissingDst, "needs DST")?;
                need(self.sa.is_some(), D::MissingSa, "needs SA")?;
                if self.lifetime_current.is_some() {
                    return Err(PfkeyError::new(
                        EOPNOTSUPP,
                        D::MissingLifetime,
                        "current lifetime in a request",
                    ));
                }
            }
            SADB_DELETE | SADB_GET | SADB_X_DELPAIR => {
                need(self.sa.is_some(), D::MissingSa, "needs SA")?;
                need(self.dst.is_some(), D::MissingDst, "needs DST")?;
            }
            SADB_X_DELPAIR_STATE => {
                need(self.sa.is_some(), D::MissingSa, "needs SA")?;
                need(self.src.is_some(), D::MissingSrc, "needs SRC")?;
                need(self.dst.is_some(), D::MissingDst, "needs DST")?;
            }
            SADB_ACQUIRE => {
                if self.errno != 0 {
                    no_ext(self.has_extensions())?;
                } else {
                    need(self.src.is_some(), D::MissingSrc, "ACQUIRE needs SRC")?;
                    need(self.dst.is_some(), D::MissingDst, "ACQUIRE needs DST")?;
                }
            }
            SADB_REGISTER => {
                if self.satype == SADB_SATYPE_UNSPEC {
                    need(
                        self.ereg.is_some(),
                        D::SatypeNeeded,
                        "REGISTER of SA type 0 needs X_EREG",
                    )?;
                    no_ext(self.ext_types().any(|e| e != SADB_X_EXT_EREG))?;
                } else {
                    no_ext(self.has_extensions())?;
                }
            }
            SADB_FLUSH => no_ext(self.has_extensions())?,
            SADB_DUMP => no_ext(self.ext_types().any(|e| e != SADB_X_EXT_EDUMP))?,
            SADB_X_INVERSE_ACQUIRE => {
                need(
                    self.src.is_some(),
                    D::MissingSrc,
                    "INVERSE_ACQUIRE needs SRC",
                )?;
                need(
                    self.dst.is_some(),
                    D::MissingDst,
                    "INVERSE_ACQUIRE needs DST",
                )?;
                if self.inner_src.is_some() != self.inner_dst.is_some() {
                    let d = if self.inner_src.is_some() {
                        D::MissingInnerDst
                    } else {
                        D::MissingInnerSrc
                    };
                    return Err(PfkeyError::invalid(d, "inner addresses come in pairs"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_reply(&self) -> Result<(), PfkeyError> {
        let bad = |what| Err(PfkeyError::invalid(Diagnostic::None, what));
        if self.errno != 0 {
            return if self.has_extensions() {
                bad("error reply with extensions")
            } else {
                Ok(())
            };
        }
        let sa_dst = self.sa.is_some() && self.dst.is_some();
        let limit = self.lifetime_hard.is_some()
            || self.lifetime_soft.is_some()
            || self.lifetime_idle.is_some();
        match self.msg_type {
            SADB_GETSPI | SADB_ADD | SADB_UPDATE | SADB_X_UPDATEPAIR | SADB_DELETE
            | SADB_X_DELPAIR | SADB_GET
                if !sa_dst =>
            {
                bad("reply lacks SA or DST")
            }
            SADB_DUMP if self.has_extensions() && !sa_dst => bad("dump record lacks SA or DST"),
            SADB_EXPIRE if !(sa_dst && self.lifetime_current.is_some() && limit) => {
                bad("EXPIRE lacks SA, DST or lifetimes")
            }
            SADB_REGISTER if self.supported_auth.is_none() && self.supported_encrypt.is_none() => {
                bad("REGISTER reply lacks a supported-algorithm list")
            }
            SADB_ACQUIRE | SADB_X_INVERSE_ACQUIRE
                if self.src.is_none()
                    || self.dst.is_none()
                    || (self.proposal.is_none() && self.eprop.is_none()) =>
            {
                bad("ACQUIRE lacks SRC, DST or a proposal")
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Message {
    /// One line: type, SA type, errno/diagnostic, sequence, pid, then the main extensions
    /// (keys as their bit count only).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = msg_type_name(self.msg_type).unwrap_or("SADB_?");
        write!(
            f,
            "{name} {} seq={} pid={}",
            satype_name(self.satype),
            self.seq,
            self.pid
        )?;
        if self.errno != 0 {
            write!(f, " errno={}", self.errno)?;
            match self.diagnostic() {
                Some(d) => write!(f, " diag={} ({})", d.code(), d.c_name())?,
                None => write!(f, " diag={}", self.diagnostic)?,
            }
        }
        if let Some(sa) = &self.sa {
            write!(
                f,
                " spi=0x{:x} state={} auth={} encr={} replay={} flags=0x{:x}",
                sa.spi, sa.state, sa.auth, sa.encrypt, sa.replay, sa.flags
            )?;
        }
        for (n, a) in [
            ("src", &self.src),
            ("dst", &self.dst),
            ("isrc", &self.inner_src),
            ("idst", &self.inner_dst),
            ("nat_loc", &self.natt_loc),
            ("nat_rem", &self.natt_rem),
        ] {
            if let Some(a) = a {
                write!(f, " {n}={}", a.addr)?;
                if a.proto != 0 {
                    write!(f, "/p{}", a.proto)?;
                }
                if a.prefixlen != 0 {
                    write!(f, "/{}", a.prefixlen)?;
                }
            }
        }
        if let Some(k) = &self.key_auth {
            write!(f, " authkey=<{} bits>", k.bits)?;
        }
        if let Some(k) = &self.key_encrypt {
            write!(f, " encrkey=<{} bits>", k.bits)?;
        }
        if let Some(r) = &self.spirange {
            write!(f, " spirange=0x{:x}-0x{:x}", r.min, r.max)?;
        }
        if let Some(p) = &self.pair {
            write!(f, " pair=0x{:x}", p.spi)?;
        }
        for (n, l) in [
            ("cur", &self.lifetime_current),
            ("hard", &self.lifetime_hard),
            ("soft", &self.lifetime_soft),
            ("idle", &self.lifetime_idle),
        ] {
            if let Some(l) = l {
                write!(
                    f,
                    " {n}=({} pkts, {} bytes, add {}, use {})",
                    l.allocations, l.bytes, l.addtime, l.usetime
                )?;
            }
        }
        if let Some(p) = &self.proposal {
            write!(f, " proposal({} combs)", p.combs.len())?;
        }
        if let Some(p) = &self.eprop {
            write!(f, " eprop({} ecombs)", p.ecombs.len())?;
        }
        if let Some(s) = &self.supported_auth {
            write!(f, " supported_auth({})", s.algs.len())?;
        }
        if let Some(s) = &self.supported_encrypt {
            write!(f, " supported_encr({})", s.algs.len())?;
        }
        Ok(())
    }
}
