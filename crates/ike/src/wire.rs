//! The IKEv2 message codec: the header (RFC 7296 §3.1), the generic payload header (§3.2)
//! and every payload of §3.3–§3.16 plus the Encrypted Fragment payload (RFC 7383 §2.5).
//!
//! Parsing is zero-copy: a [`Message`] borrows the datagram, and variable-length fields
//! are slices of it. The same types are emitted ([`Message::emit`], [`emit_chain`]), so a
//! value built from owned buffers serializes the way a parsed one does. Lengths, counts,
//! the Next Payload chain and the "last substructure" markers are computed on emission and
//! checked on parsing; reserved fields are sent as zero and ignored on receipt (§2.5), and
//! the critical bit is sent as zero for every known payload type (§3.2).
//!
//! ```text
//!  datagram --> Message::parse --> Header + [Payload] (SK/SKF body still encrypted)
//!                                        |
//!  SK plaintext (see crate::sk) --> parse_chain(first, bytes) --> [Payload]
//! ```
//!
//! Parsing never panics: every read goes through a bounded cursor (`Reader`), and each error
//! names the structure and byte offset ([`ParseError`]). An unknown payload type is
//! skipped when its critical bit is clear and fails the whole message when it is set.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::consts::{payload as pt, ts as tst};
use crate::error::{EmitError, ParseError};

/// Length of the fixed IKE header.
pub const HEADER_LEN: usize = 28;
/// Length of the generic payload header.
pub const PAYLOAD_HEADER_LEN: usize = 4;

/// A bounded cursor over untrusted bytes; every read checks the remaining length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the message, for error reports.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Truncated {
            what,
            offset: self.offset(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(ParseError::Truncated {
            what,
            offset: self.offset(),
        })?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        Ok(self.take(1, what)?.first().copied().unwrap_or(0))
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ParseError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A sub-reader over the next `n` bytes.
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Self, ParseError> {
        let base = self.offset();
        Ok(Self::new(self.take(n, what)?, base))
    }
}

fn invalid(what: &'static str, offset: usize) -> ParseError {
    ParseError::Invalid { what, offset }
}

fn bad_len(what: &'static str, offset: usize) -> ParseError {
    ParseError::BadLength { what, offset }
}

/// Appends a big-endian u16 length computed from `len`.
fn len16(len: usize, what: &'static str) -> Result<[u8; 2], EmitError> {
    u16::try_from(len)
        .map(u16::to_be_bytes)
        .map_err(|_| EmitError::TooLong(what))
}

/// Overwrites the two bytes at `at` with the length of `out[start..]`.
fn patch_len(out: &mut [u8], at: usize, start: usize, what: &'static str) -> Result<(), EmitError> {
    let n = len16(out.len().saturating_sub(start), what)?;
    if let Some(s) = out.get_mut(at..at.saturating_add(2)) {
        s.copy_from_slice(&n);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Header
// ------------------------------------------------------------------------------------------

/// The IKE header (RFC 7296 §3.1) without the fields the codec computes (Next Payload,
/// Length) and the major version (always 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// IKE SA Initiator's SPI.
    pub spi_i: [u8; 8],
    /// IKE SA Responder's SPI (zero in the first IKE_SA_INIT request).
    pub spi_r: [u8; 8],
    /// Minor version (sent as 0; ignored on receipt).
    pub minor: u8,
    /// Exchange type (see [`crate::consts::exchange`]).
    pub exchange: u8,
    /// Flags (see [`crate::consts::flags`]); unknown bits are kept as received.
    pub flags: u8,
    /// Message ID.
    pub message_id: u32,
}

impl Header {
    /// Whether the Response flag is set.
    #[must_use]
    pub fn is_response(&self) -> bool {
        self.flags & crate::consts::flags::RESPONSE != 0
    }

    /// Whether the Initiator flag is set.
    #[must_use]
    pub fn is_initiator(&self) -> bool {
        self.flags & crate::consts::flags::INITIATOR != 0
    }

    /// Parses the 28-byte header; returns it, the Next Payload field and the Length field.
    ///
    /// # Errors
    /// [`ParseError::IkeV1`] for major version 1 (checked before anything else that could
    /// fail, so an ISAKMP packet is always recognized as one),
    /// [`ParseError::UnsupportedMajorVersion`] above 2, and truncation or bad lengths.
    pub fn parse(buf: &[u8]) -> Result<(Self, u8, u32), ParseError> {
        // The version byte sits at offset 17 in both IKEv1 and IKEv2.
        if let Some(v) = buf.get(17) {
            match v >> 4 {
                1 => return Err(ParseError::IkeV1),
                2 => {}
                m => return Err(ParseError::UnsupportedMajorVersion(m)),
            }
        }
        Self::parse_any_version(buf)
    }

    /// Reads the header fields whatever the major version (the minor version is kept,
    /// the major dropped): enough to address an error notification such as
    /// INVALID_MAJOR_VERSION to the sender. Returns the header, Next Payload and Length.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] for fewer than 28 bytes.
    pub fn parse_any_version(buf: &[u8]) -> Result<(Self, u8, u32), ParseError> {
        let mut r = Reader::new(buf, 0);
        let mut spi_i = [0u8; 8];
        spi_i.copy_from_slice(r.take(8, "IKE header")?);
        let mut spi_r = [0u8; 8];
        spi_r.copy_from_slice(r.take(8, "IKE header")?);
        let next = r.u8("IKE header")?;
        let version = r.u8("IKE header")?;
        let exchange = r.u8("IKE header")?;
        let flags = r.u8("IKE header")?;
        let message_id = r.u32("IKE header")?;
        let length = r.u32("IKE header")?;
        Ok((
            Self {
                spi_i,
                spi_r,
                minor: version & 0x0f,
                exchange,
                flags,
                message_id,
            },
            next,
            length,
        ))
    }

    /// Writes the header with the given Next Payload and Length fields.
    pub fn emit(&self, next: u8, length: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i);
        out.extend_from_slice(&self.spi_r);
        out.push(next);
        out.push(0x20 | (self.minor & 0x0f));
        out.push(self.exchange);
        out.push(self.flags);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
    }
}

// ------------------------------------------------------------------------------------------
// Payload bodies
// ------------------------------------------------------------------------------------------

/// A transform attribute (RFC 7296 §3.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attribute<'a> {
    /// Type/Value form (AF bit set): a 2-byte value.
    Tv {
        /// Attribute type (15 bits).
        ty: u16,
        /// The value.
        value: u16,
    },
    /// Type/Length/Value form (AF bit clear).
    Tlv {
        /// Attribute type (15 bits).
        ty: u16,
        /// The value.
        value: &'a [u8],
    },
}

/// A transform substructure (RFC 7296 §3.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transform<'a> {
    /// Transform type (see [`crate::consts::transform`]).
    pub ty: u8,
    /// Transform ID.
    pub id: u16,
    /// Attributes (in practice only Key Length).
    pub attributes: Vec<Attribute<'a>>,
}

impl Transform<'_> {
    /// The Key Length attribute, in bits, if present.
    #[must_use]
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Tv { ty, value } if *ty == crate::consts::transform::ATTR_KEY_LENGTH => {
                Some(*value)
            }
            _ => None,
        })
    }
}

/// A proposal substructure (RFC 7296 §3.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proposal<'a> {
    /// Proposal number (1 for the first; the responder echoes the chosen one).
    pub num: u8,
    /// Protocol ID (see [`crate::consts::protocol`]).
    pub protocol: u8,
    /// SPI (empty for an initial IKE SA negotiation, 8 bytes for IKE rekey, 4 for AH/ESP).
    pub spi: &'a [u8],
    /// Transforms.
    pub transforms: Vec<Transform<'a>>,
}

/// An identification payload body (RFC 7296 §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Id<'a> {
    /// ID type (see [`crate::consts::id`]).
    pub id_type: u8,
    /// The identification data (the reserved bytes are not part of it).
    pub data: &'a [u8],
}

/// A certificate or certificate request payload body (RFC 7296 §3.6, §3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertData<'a> {
    /// Certificate encoding.
    pub encoding: u8,
    /// Certificate data, or for CERTREQ the certification authority hashes.
    pub data: &'a [u8],
}

/// An authentication payload body (RFC 7296 §3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Auth<'a> {
    /// Authentication method (see [`crate::consts::auth`]).
    pub method: u8,
    /// Authentication data.
    pub data: &'a [u8],
}

/// A notify payload body (RFC 7296 §3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Notify<'a> {
    /// Protocol ID (0 when the SPI field is empty).
    pub protocol: u8,
    /// SPI (empty, or the SA the notification is about).
    pub spi: &'a [u8],
    /// Notify message type (see [`crate::consts::notify`]).
    pub ty: u16,
    /// Notification data.
    pub data: &'a [u8],
}

/// A delete payload body (RFC 7296 §3.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Delete<'a> {
    /// Protocol ID.
    pub protocol: u8,
    /// SPI size: 0 for IKE (the SA the message travels in), 4 for AH/ESP.
    pub spi_size: u8,
    /// The SPIs, concatenated (a multiple of `spi_size` bytes; empty when `spi_size` is 0).
    pub spis: &'a [u8],
}

impl<'a> Delete<'a> {
    /// The SPIs one by one.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let n = usize::from(self.spi_size).max(1);
        let spis = if self.spi_size == 0 {
            &[][..]
        } else {
            self.spis
        };
        spis.chunks_exact(n)
    }
}

/// A traffic selector (RFC 7296 §3.13.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol (0 = any).
    pub ip_protocol: u8,
    /// First port of the range.
    pub start_port: u16,
    /// Last port of the range.
    pub end_port: u16,
    /// First address (its family gives the TS type).
    pub start: IpAddr,
    /// Last address (same family as `start`).
    pub end: IpAddr,
}

/// A configuration attribute (RFC 7296 §3.15.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CpAttribute<'a> {
    /// Attribute type (15 bits; the reserved top bit is ignored).
    pub ty: u16,
    /// Value (may be empty, e.g. in a request).
    pub value: &'a [u8],
}

/// A configuration payload body (RFC 7296 §3.15).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cp<'a> {
    /// CFG type (1 request, 2 reply, 3 set, 4 ack).
    pub cfg_type: u8,
    /// Attributes.
    pub attributes: Vec<CpAttribute<'a>>,
}

/// An EAP payload body (RFC 7296 §3.16): one EAP message (RFC 3748 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Eap<'a> {
    /// Code (1 request, 2 response, 3 success, 4 failure).
    pub code: u8,
    /// Identifier.
    pub identifier: u8,
    /// Type and type data (present for requests and responses; empty for success/failure).
    pub data: &'a [u8],
}

/// The Encrypted and Authenticated payload (RFC 7296 §3.14), still protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Encrypted<'a> {
    /// Type of the first payload inside.
    pub first: u8,
    /// IV, ciphertext (with padding) and integrity checksum data.
    pub body: &'a [u8],
}

/// The Encrypted and Authenticated Fragment payload (RFC 7383 §2.5), still protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EncryptedFragment<'a> {
    /// Type of the first inner payload (in fragment 1 only; 0 in the others).
    pub first: u8,
    /// Fragment number, 1-based.
    pub number: u16,
    /// Total number of fragments.
    pub total: u16,
    /// IV, ciphertext and integrity checksum data.
    pub body: &'a [u8],
}

/// One payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Payload<'a> {
    /// Security Association: proposals.
    Sa(Vec<Proposal<'a>>),
    /// Key Exchange.
    Ke {
        /// Diffie-Hellman group number.
        group: u16,
        /// Public value.
        data: &'a [u8],
    },
    /// Identification - Initiator.
    IdI(Id<'a>),
    /// Identification - Responder.
    IdR(Id<'a>),
    /// Certificate.
    Cert(CertData<'a>),
    /// Certificate Request.
    CertReq(CertData<'a>),
    /// Authentication.
    Auth(Auth<'a>),
    /// Nonce data.
    Nonce(&'a [u8]),
    /// Notify.
    Notify(Notify<'a>),
    /// Delete.
    Delete(Delete<'a>),
    /// Vendor ID.
    VendorId(&'a [u8]),
    /// Traffic Selector - Initiator.
    TsI(Vec<TrafficSelector>),
    /// Traffic Selector - Responder.
    TsR(Vec<TrafficSelector>),
    /// Encrypted and Authenticated (must be last).
    Sk(Encrypted<'a>),
    /// Configuration.
    Cp(Cp<'a>),
    /// Extensible Authentication.
    Eap(Eap<'a>),
    /// Encrypted and Authenticated Fragment (must be last).
    Skf(EncryptedFragment<'a>),
    /// A payload type this implementation does not know, received without the critical
    /// bit (skipped by the state machine, RFC 7296 §2.5). Never emitted with the bit set.
    Unknown {
        /// Payload type.
        ty: u8,
        /// Body.
        body: &'a [u8],
    },
}

impl Payload<'_> {
    /// The payload type number.
    #[must_use]
    pub fn ty(&self) -> u8 {
        match self {
            Self::Sa(_) => pt::SA,
            Self::Ke { .. } => pt::KE,
            Self::IdI(_) => pt::IDI,
            Self::IdR(_) => pt::IDR,
            Self::Cert(_) => pt::CERT,
            Self::CertReq(_) => pt::CERTREQ,
            Self::Auth(_) => pt::AUTH,
            Self::Nonce(_) => pt::NONCE,
            Self::Notify(_) => pt::NOTIFY,
            Self::Delete(_) => pt::DELETE,
            Self::VendorId(_) => pt::VENDOR_ID,
            Self::TsI(_) => pt::TSI,
            Self::TsR(_) => pt::TSR,
            Self::Sk(_) => pt::SK,
            Self::Cp(_) => pt::CP,
            Self::Eap(_) => pt::EAP,
            Self::Skf(_) => pt::SKF,
            Self::Unknown { ty, .. } => *ty,
        }
    }

    /// Whether this is an SK or SKF payload.
    #[must_use]
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Self::Sk(_) | Self::Skf(_))
    }
}

/// Whether `ty` is a payload type this codec parses.
#[must_use]
pub fn is_known_payload(ty: u8) -> bool {
    (pt::SA..=pt::EAP).contains(&ty) || ty == pt::SKF
}

fn parse_attributes<'a>(mut r: Reader<'a>) -> Result<Vec<Attribute<'a>>, ParseError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        let t = r.u16("transform attribute")?;
        let ty = t & 0x7fff;
        if t & 0x8000 != 0 {
            v.push(Attribute::Tv {
                ty,
                value: r.u16("transform attribute")?,
            });
        } else {
            let n = r.u16("transform attribute")?;
            v.push(Attribute::Tlv {
                ty,
                value: r.take(usize::from(n), "transform attribute value")?,
            });
        }
    }
    Ok(v)
}

fn parse_transforms<'a>(mut r: Reader<'a>, count: u8) -> Result<Vec<Transform<'a>>, ParseError> {
    let mut v = Vec::new();
    loop {
        let at = r.offset();
        let last = r.u8("transform")?;
        let _reserved = r.u8("transform")?;
        let len = usize::from(r.u16("transform")?);
        let body_len = len
            .checked_sub(8)
            .ok_or_else(|| bad_len("transform length (below 8)", at))?;
        let ty = r.u8("transform")?;
        let _reserved2 = r.u8("transform")?;
        let id = r.u16("transform")?;
        let attrs = r.sub(body_len, "transform attributes")?;
        v.push(Transform {
            ty,
            id,
            attributes: parse_attributes(attrs)?,
        });
        match last {
            0 => break,
            3 => {}
            _ => return Err(invalid("transform Last Substruc (expected 0 or 3)", at)),
        }
    }
    if !r.is_empty() {
        return Err(bad_len(
            "proposal length (bytes after the last transform)",
            r.offset(),
        ));
    }
    if v.len() != usize::from(count) {
        return Err(invalid(
            "proposal # of Transforms (disagrees with the transforms)",
            r.base,
        ));
    }
    Ok(v)
}

fn parse_sa<'a>(mut r: Reader<'a>) -> Result<Vec<Proposal<'a>>, ParseError> {
    let mut v = Vec::new();
    loop {
        let at = r.offset();
        let last = r.u8("proposal")?;
        let _reserved = r.u8("proposal")?;
        let len = usize::from(r.u16("proposal")?);
        let body_len = len
            .checked_sub(8)
            .ok_or_else(|| bad_len("proposal length (below 8)", at))?;
        let num = r.u8("proposal")?;
        let protocol = r.u8("proposal")?;
        let spi_size = r.u8("proposal")?;
        let count = r.u8("proposal")?;
        let mut body = r.sub(body_len, "proposal")?;
        let spi = body.take(usize::from(spi_size), "proposal SPI")?;
        v.push(Proposal {
            num,
            protocol,
            spi,
            transforms: parse_transforms(body, count)?,
        });
        match last {
            0 => break,
            2 => {}
            _ => return Err(invalid("proposal Last Substruc (expected 0 or 2)", at)),
        }
    }
    if !r.is_empty() {
        return Err(bad_len(
            "SA payload length (bytes after the last proposal)",
            r.offset(),
        ));
    }
    Ok(v)
}

fn parse_ts(mut r: Reader<'_>) -> Result<Vec<TrafficSelector>, ParseError> {
    let count = r.u8("TS payload")?;
    r.take(3, "TS payload")?;
    let mut v = Vec::new();
    for _ in 0..count {
        let at = r.offset();
        let ty = r.u8("traffic selector")?;
        let ip_protocol = r.u8("traffic selector")?;
        let len = usize::from(r.u16("traffic selector")?);
        let alen = match ty {
            tst::IPV4_ADDR_RANGE => 4,
            tst::IPV6_ADDR_RANGE => 16,
            _ => return Err(invalid("TS Type (expected 7 or 8)", at)),
        };
        if len != 8 + 2 * alen {
            return Err(bad_len("traffic selector Selector Length", at));
        }
        let start_port = r.u16("traffic selector")?;
        let end_port = r.u16("traffic selector")?;
        let a = r.take(alen, "traffic selector address")?;
        let b = r.take(alen, "traffic selector address")?;
        v.push(TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            start: ip_from(a),
            end: ip_from(b),
        });
    }
    if count == 0 {
        return Err(invalid("TS payload Number of TSs (zero)", r.base));
    }
    if !r.is_empty() {
        return Err(bad_len(
            "TS payload length (bytes after the selectors)",
            r.offset(),
        ));
    }
    Ok(v)
}

fn ip_from(b: &[u8]) -> IpAddr {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        IpAddr::V4(Ipv4Addr::from(a))
    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

fn parse_cp(mut r: Reader<'_>) -> Result<Cp<'_>, ParseError> {
    let cfg_type = r.u8("CP payload")?;
    r.take(3, "CP payload")?;
    let mut attributes = Vec::new();
    while !r.is_empty() {
        let ty = r.u16("configuration attribute")? & 0x7fff;
        let n = r.u16("configuration attribute")?;
        attributes.push(CpAttribute {
            ty,
            value: r.take(usize::from(n), "configuration attribute value")?,
        });
    }
    Ok(Cp {
        cfg_type,
        attributes,
    })
}

fn parse_eap(mut r: Reader<'_>) -> Result<Eap<'_>, ParseError> {
    let at = r.offset();
    let code = r.u8("EAP message")?;
    let identifier = r.u8("EAP message")?;
    let len = usize::from(r.u16("EAP message")?);
    if len != r.remaining().saturating_add(4) {
        return Err(bad_len(
            "EAP message Length (disagrees with the payload)",
            at,
        ));
    }
    let data = r.rest();
    match code {
        1 | 2 if data.is_empty() => Err(invalid("EAP request/response without a Type", at)),
        3 | 4 if !data.is_empty() => Err(invalid("EAP success/failure with data", at)),
        1..=4 => Ok(Eap {
            code,
            identifier,
            data,
        }),
        _ => Err(invalid("EAP Code (expected 1 to 4)", at)),
    }
}

/// Parses the body of one payload of type `ty` (a known type).
fn parse_body<'a>(ty: u8, next: u8, mut r: Reader<'a>) -> Result<Payload<'a>, ParseError> {
    let at = r.offset();
    Ok(match ty {
        pt::SA => Payload::Sa(parse_sa(r)?),
        pt::KE => {
            let group = r.u16("KE payload")?;
            r.take(2, "KE payload")?;
            Payload::Ke {
                group,
                data: r.rest(),
            }
        }
        pt::IDI | pt::IDR => {
            let id_type = r.u8("ID payload")?;
            r.take(3, "ID payload")?;
            let id = Id {
                id_type,
                data: r.rest(),
            };
            if ty == pt::IDI {
                Payload::IdI(id)
            } else {
                Payload::IdR(id)
            }
        }
        pt::CERT | pt::CERTREQ => {
            let c = CertData {
                encoding: r.u8("certificate payload")?,
                data: r.rest(),
            };
            if ty == pt::CERT {
                Payload::Cert(c)
            } else {
                Payload::CertReq(c)
            }
        }
        pt::AUTH => {
            let method = r.u8("AUTH payload")?;
            r.take(3, "AUTH payload")?;
            Payload::Auth(Auth {
                method,
                data: r.rest(),
            })
        }
        pt::NONCE => Payload::Nonce(r.rest()),
        pt::NOTIFY => {
            let protocol = r.u8("Notify payload")?;
            let spi_size = r.u8("Notify payload")?;
            let nty = r.u16("Notify payload")?;
            let spi = r.take(usize::from(spi_size), "Notify SPI")?;
            Payload::Notify(Notify {
                protocol,
                spi,
                ty: nty,
                data: r.rest(),
            })
        }
        pt::DELETE => {
            let protocol = r.u8("Delete payload")?;
            let spi_size = r.u8("Delete payload")?;
            let n = usize::from(r.u16("Delete payload")?);
            let spis = r.rest();
            if spis.len() != n.saturating_mul(usize::from(spi_size)) || (spi_size == 0 && n != 0) {
                return Err(bad_len(
                    "Delete payload SPIs (disagree with Num of SPIs)",
                    at,
                ));
            }
            Payload::Delete(Delete {
                protocol,
                spi_size,
                spis,
            })
        }
        pt::VENDOR_ID => Payload::VendorId(r.rest()),
        pt::TSI => Payload::TsI(parse_ts(r)?),
        pt::TSR => Payload::TsR(parse_ts(r)?),
        pt::SK => Payload::Sk(Encrypted {
            first: next,
            body: r.rest(),
        }),
        pt::CP => Payload::Cp(parse_cp(r)?),
        pt::EAP => Payload::Eap(parse_eap(r)?),
        pt::SKF => {
            let number = r.u16("Encrypted Fragment payload")?;
            let total = r.u16("Encrypted Fragment payload")?;
            if number == 0 || total == 0 || number > total {
                return Err(invalid(
                    "fragment numbers (expected 1 <= Fragment Number <= Total Fragments)",
                    at,
                ));
            }
            if number != 1 && next != 0 {
                return Err(invalid(
                    "Next Payload of a fragment other than the first (expected 0)",
                    at,
                ));
            }
            Payload::Skf(EncryptedFragment {
                first: next,
                number,
                total,
                body: r.rest(),
            })
        }
        _ => return Err(invalid("payload type", at)),
    })
}

/// Parses a payload chain starting with type `first` over all of `buf` (`base` is the
/// offset of `buf` in the message, for error reports). Used for the payloads after the
/// IKE header and for the decrypted content of an SK payload.
///
/// # Errors
/// Any [`ParseError`]; bytes left after the payload whose Next Payload is 0 are an error.
pub fn parse_chain(first: u8, buf: &[u8], base: usize) -> Result<Vec<Payload<'_>>, ParseError> {
    let mut r = Reader::new(buf, base);
    let mut v = Vec::new();
    let mut ty = first;
    while ty != pt::NONE {
        let at = r.offset();
        let next = r.u8("generic payload header")?;
        let crit = r.u8("generic payload header")? & 0x80 != 0;
        let len = usize::from(r.u16("generic payload header")?);
        let body_len = len
            .checked_sub(PAYLOAD_HEADER_LEN)
            .ok_or_else(|| bad_len("Payload Length (below 4)", at))?;
        let body = r.sub(body_len, "payload")?;
        let p = if is_known_payload(ty) {
            parse_body(ty, next, body)?
        } else if crit {
            return Err(ParseError::UnsupportedCritical {
                payload_type: ty,
                offset: at,
            });
        } else {
            Payload::Unknown { ty, body: body.buf }
        };
        let encrypted = p.is_encrypted();
        v.push(p);
        if encrypted {
            // SK/SKF: Next Payload names the first inner payload; nothing may follow.
            if !r.is_empty() {
                return Err(ParseError::MisplacedEncrypted { offset: at });
            }
            return Ok(v);
        }
        ty = next;
    }
    if !r.is_empty() {
        return Err(bad_len(
            "message length (bytes after the last payload)",
            r.offset(),
        ));
    }
    Ok(v)
}

fn emit_attributes(attrs: &[Attribute<'_>], out: &mut Vec<u8>) -> Result<(), EmitError> {
    for a in attrs {
        match a {
            Attribute::Tv { ty, value } => {
                if *ty > 0x7fff {
                    return Err(EmitError::Invalid("attribute type above 0x7fff"));
                }
                out.extend_from_slice(&(ty | 0x8000).to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            Attribute::Tlv { ty, value } => {
                if *ty > 0x7fff {
                    return Err(EmitError::Invalid("attribute type above 0x7fff"));
                }
                out.extend_from_slice(&ty.to_be_bytes());
                out.extend_from_slice(&len16(value.len(), "transform attribute")?);
                out.extend_from_slice(value);
            }
        }
    }
    Ok(())
}

fn emit_sa(props: &[Proposal<'_>], out: &mut Vec<u8>) -> Result<(), EmitError> {
    if props.is_empty() {
        return Err(EmitError::Invalid("SA payload without proposals"));
    }
    for (i, p) in props.iter().enumerate() {
        let start = out.len();
        out.push(if i + 1 == props.len() { 0 } else { 2 });
        out.push(0);
        out.extend_from_slice(&[0, 0]);
        out.push(p.num);
        out.push(p.protocol);
        out.push(u8::try_from(p.spi.len()).map_err(|_| EmitError::TooLong("proposal SPI"))?);
        if p.transforms.is_empty() {
            return Err(EmitError::Invalid("proposal without transforms"));
        }
        out.push(u8::try_from(p.transforms.len()).map_err(|_| EmitError::TooMany("transforms"))?);
        out.extend_from_slice(p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            let ts = out.len();
            out.push(if j + 1 == p.transforms.len() { 0 } else { 3 });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            out.push(t.ty);
            out.push(0);
            out.extend_from_slice(&t.id.to_be_bytes());
            emit_attributes(&t.attributes, out)?;
            patch_len(out, ts + 2, ts, "transform")?;
        }
        patch_len(out, start + 2, start, "proposal")?;
    }
    Ok(())
}

fn emit_ts(sel: &[TrafficSelector], out: &mut Vec<u8>) -> Result<(), EmitError> {
    if sel.is_empty() {
        return Err(EmitError::Invalid("TS payload without selectors"));
    }
    out.push(u8::try_from(sel.len()).map_err(|_| EmitError::TooMany("traffic selectors"))?);
    out.extend_from_slice(&[0, 0, 0]);
    for s in sel {
        match (s.start, s.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                out.extend_from_slice(&[tst::IPV4_ADDR_RANGE, s.ip_protocol, 0, 16]);
                out.extend_from_slice(&s.start_port.to_be_bytes());
                out.extend_from_slice(&s.end_port.to_be_bytes());
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&b.octets());
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                out.extend_from_slice(&[tst::IPV6_ADDR_RANGE, s.ip_protocol, 0, 40]);
                out.extend_from_slice(&s.start_port.to_be_bytes());
                out.extend_from_slice(&s.end_port.to_be_bytes());
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&b.octets());
            }
            _ => return Err(EmitError::Invalid("traffic selector with mixed families")),
        }
    }
    Ok(())
}

/// Writes one payload body (without the generic header).
fn emit_body(p: &Payload<'_>, out: &mut Vec<u8>) -> Result<(), EmitError> {
    match p {
        Payload::Sa(props) => emit_sa(props, out)?,
        Payload::Ke { group, data } => {
            out.extend_from_slice(&group.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(data);
        }
        Payload::IdI(id) | Payload::IdR(id) => {
            out.extend_from_slice(&[id.id_type, 0, 0, 0]);
            out.extend_from_slice(id.data);
        }
        Payload::Cert(c) | Payload::CertReq(c) => {
            out.push(c.encoding);
            out.extend_from_slice(c.data);
        }
        Payload::Auth(a) => {
            out.extend_from_slice(&[a.method, 0, 0, 0]);
            out.extend_from_slice(a.data);
        }
        Payload::Nonce(d) | Payload::VendorId(d) => out.extend_from_slice(d),
        Payload::Notify(n) => {
            out.push(n.protocol);
            out.push(u8::try_from(n.spi.len()).map_err(|_| EmitError::TooLong("notify SPI"))?);
            out.extend_from_slice(&n.ty.to_be_bytes());
            out.extend_from_slice(n.spi);
            out.extend_from_slice(n.data);
        }
        Payload::Delete(d) => {
            let count = if d.spi_size == 0 {
                if !d.spis.is_empty() {
                    return Err(EmitError::Invalid("Delete with SPI size 0 and SPIs"));
                }
                0
            } else {
                let size = usize::from(d.spi_size);
                if d.spis.len() % size != 0 {
                    return Err(EmitError::Invalid("Delete SPIs not a multiple of the size"));
                }
                u16::try_from(d.spis.len() / size).map_err(|_| EmitError::TooMany("SPIs"))?
            };
            out.push(d.protocol);
            out.push(d.spi_size);
            out.extend_from_slice(&count.to_be_bytes());
            out.extend_from_slice(d.spis);
        }
        Payload::TsI(s) | Payload::TsR(s) => emit_ts(s, out)?,
        Payload::Sk(e) => out.extend_from_slice(e.body),
        Payload::Cp(cp) => {
            out.extend_from_slice(&[cp.cfg_type, 0, 0, 0]);
            for a in &cp.attributes {
                if a.ty > 0x7fff {
                    return Err(EmitError::Invalid(
                        "configuration attribute type above 0x7fff",
                    ));
                }
                out.extend_from_slice(&a.ty.to_be_bytes());
                out.extend_from_slice(&len16(a.value.len(), "configuration attribute")?);
                out.extend_from_slice(a.value);
            }
        }
        Payload::Eap(e) => {
            let valid = match e.code {
                1 | 2 => !e.data.is_empty(),
                3 | 4 => e.data.is_empty(),
                _ => false,
            };
            if !valid {
                return Err(EmitError::Invalid("EAP code and data"));
            }
            out.push(e.code);
            out.push(e.identifier);
            out.extend_from_slice(&len16(e.data.len().saturating_add(4), "EAP message")?);
            out.extend_from_slice(e.data);
        }
        Payload::Skf(f) => {
            if f.number == 0 || f.number > f.total || (f.number != 1 && f.first != 0) {
                return Err(EmitError::Invalid("fragment numbering"));
            }
            out.extend_from_slice(&f.number.to_be_bytes());
            out.extend_from_slice(&f.total.to_be_bytes());
            out.extend_from_slice(f.body);
        }
        Payload::Unknown { ty, body } => {
            if is_known_payload(*ty) || *ty == pt::NONE {
                return Err(EmitError::Invalid("Unknown payload with a known type"));
            }
            out.extend_from_slice(body);
        }
    }
    Ok(())
}

/// Appends the payload chain to `out` and returns the type of its first payload (the
/// value for the preceding Next Payload field; 0 for an empty chain).
///
/// # Errors
/// [`EmitError`] for a value the wire format cannot carry, including an SK or SKF payload
/// anywhere but last.
pub fn emit_chain(payloads: &[Payload<'_>], out: &mut Vec<u8>) -> Result<u8, EmitError> {
    for (i, p) in payloads.iter().enumerate() {
        let last = i + 1 == payloads.len();
        let next = match p {
            Payload::Sk(e) if last => e.first,
            Payload::Skf(f) if last => f.first,
            Payload::Sk(_) | Payload::Skf(_) => {
                return Err(EmitError::Invalid("encrypted payload that is not last"))
            }
            _ => payloads.get(i + 1).map_or(pt::NONE, Payload::ty),
        };
        let start = out.len();
        out.extend_from_slice(&[next, 0, 0, 0]);
        emit_body(p, out)?;
        patch_len(out, start + 2, start, "payload")?;
    }
    Ok(payloads.first().map_or(pt::NONE, Payload::ty))
}

/// An IKE message: the header and its payloads (an SK/SKF payload, if any, last and
/// still encrypted).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message<'a> {
    /// The header.
    pub header: Header,
    /// The payloads in order.
    pub payloads: Vec<Payload<'a>>,
}

impl<'a> Message<'a> {
    /// Parses a whole datagram (after any non-ESP marker).
    ///
    /// # Errors
    /// [`ParseError`]; the header's Length must equal `buf.len()`.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        let (header, next, length) = Header::parse(buf)?;
        if usize::try_from(length).ok() != Some(buf.len()) {
            return Err(bad_len(
                "IKE header Length (disagrees with the datagram)",
                24,
            ));
        }
        let body = buf.get(HEADER_LEN..).unwrap_or(&[]);
        let payloads = parse_chain(next, body, HEADER_LEN)?;
        Ok(Self { header, payloads })
    }

    /// Serializes the message.
    ///
    /// # Errors
    /// [`EmitError`] as for [`emit_chain`].
    pub fn emit(&self) -> Result<Vec<u8>, EmitError> {
        let mut out = Vec::with_capacity(256);
        self.header.emit(0, 0, &mut out);
        let first = emit_chain(&self.payloads, &mut out)?;
        let len = u32::try_from(out.len()).map_err(|_| EmitError::TooLong("message"))?;
        out[16] = first;
        out[24..28].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    }

    /// The first payload of type `ty`.
    #[must_use]
    pub fn find(&self, ty: u8) -> Option<&Payload<'a>> {
        self.payloads.iter().find(|p| p.ty() == ty)
    }
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::consts::{exchange, flags};
    use crate::fuzz_support::every_payload;

    fn header() -> Header {
        Header {
            spi_i: [0xa1; 8],
            spi_r: [0; 8],
            minor: 0,
            exchange: exchange::IKE_SA_INIT,
            flags: flags::INITIATOR,
            message_id: 0,
        }
    }

    fn msg(payloads: Vec<Payload<'static>>) -> Vec<u8> {
        Message {
            header: header(),
            payloads,
        }
        .emit()
        .unwrap()
    }

    #[test]
    fn ke_and_nonce_bytes() {
        let b = msg(vec![
            Payload::Ke {
                group: 19,
                data: &[7; 4],
            },
            Payload::Nonce(&[8; 16]),
        ]);
        let mut want = Vec::new();
        want.extend_from_slice(&[0xa1; 8]);
        want.extend_from_slice(&[0; 8]);
        // next = KE, version 2.0, IKE_SA_INIT, I flag, message ID 0, length 28+12+20
        want.extend_from_slice(&[34, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 60]);
        want.extend_from_slice(&[40, 0, 0, 12, 0, 19, 0, 0, 7, 7, 7, 7]);
        want.extend_from_slice(&[0, 0, 0, 20]);
        want.extend_from_slice(&[8; 16]);
        assert_eq!(b, want);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.header, header());
        assert_eq!(m.payloads.len(), 2);
        assert!(matches!(
            m.find(pt::KE),
            Some(Payload::Ke { group: 19, .. })
        ));
    }

    #[test]
    fn every_payload_round_trips() {
        let p = every_payload();
        let b = msg(p.clone());
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.payloads, p);
        assert_eq!(m.emit().unwrap(), b);
    }

    #[test]
    fn ikev1_is_its_own_error() {
        let mut b = msg(vec![Payload::Nonce(&[1; 16])]);
        b[17] = 0x10; // major 1, minor 0
        assert_eq!(Message::parse(&b), Err(ParseError::IkeV1));
        assert_eq!(ParseError::IkeV1.notify(), None);
        // Even a truncated ISAKMP header is recognised as IKEv1.
        assert_eq!(Message::parse(&b[..20]), Err(ParseError::IkeV1));
        b[17] = 0x30;
        let e = Message::parse(&b).unwrap_err();
        assert_eq!(e, ParseError::UnsupportedMajorVersion(3));
        assert_eq!(
            e.notify(),
            Some(crate::consts::notify::INVALID_MAJOR_VERSION)
        );
        b[17] = 0x2f; // minor versions are ignored
        assert!(Message::parse(&b).is_ok());
    }

    #[test]
    fn unknown_payloads_and_the_critical_bit() {
        let mut b = msg(vec![
            Payload::Unknown {
                ty: 250,
                body: &[1, 2, 3],
            },
            Payload::Nonce(&[1; 16]),
        ]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(
            m.payloads[0],
            Payload::Unknown {
                ty: 250,
                body: &[1, 2, 3]
            }
        );
        b[HEADER_LEN + 1] = 0x80; // critical
        let e = Message::parse(&b).unwrap_err();
        assert_eq!(
            e,
            ParseError::UnsupportedCritical {
                payload_type: 250,
                offset: HEADER_LEN
            }
        );
        assert_eq!(
            e.notify(),
            Some(crate::consts::notify::UNSUPPORTED_CRITICAL_PAYLOAD)
        );
        // The critical bit and reserved bits of a known payload are ignored.
        let mut b = msg(vec![Payload::Nonce(&[1; 16])]);
        b[HEADER_LEN + 1] = 0xff;
        assert_eq!(
            Message::parse(&b).unwrap().payloads,
            vec![Payload::Nonce(&[1; 16])]
        );
        // Unknown payloads are never emitted with a known type.
        let bad = Message {
            header: header(),
            payloads: vec![Payload::Unknown {
                ty: pt::SA,
                body: &[],
            }],
        };
        assert!(bad.emit().is_err());
    }

    #[test]
    fn lengths_are_checked() {
        let b = msg(vec![Payload::Nonce(&[1; 16]), Payload::VendorId(b"v")]);
        // Header length larger and smaller than the datagram.
        let mut x = b.clone();
        x[27] += 1;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::BadLength { .. })
        ));
        let mut x = b.clone();
        x.push(0);
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::BadLength { .. })
        ));
        // Payload length running past the end, and below 4.
        let mut x = b.clone();
        x[HEADER_LEN + 3] = 200;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::Truncated { .. })
        ));
        let mut x = b.clone();
        x[HEADER_LEN + 3] = 3;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::BadLength { .. })
        ));
        // Next Payload 0 with bytes left over.
        let mut x = b.clone();
        x[HEADER_LEN] = 0;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::BadLength { .. })
        ));
        // Every truncation fails cleanly.
        for n in 0..b.len() {
            assert!(Message::parse(&b[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn substructure_rules() {
        let p = every_payload();
        let b = msg(vec![p[0].clone()]); // SA with two proposals
        let sa = HEADER_LEN + 4;
        // Proposal "last" marker must be 0 or 2.
        let mut x = b.clone();
        x[sa] = 1;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::Invalid { .. })
        ));
        // The first proposal claiming to be last leaves bytes behind.
        let mut x = b.clone();
        x[sa] = 0;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::BadLength { .. })
        ));
        // Number of transforms disagreeing with the transforms.
        let mut x = b.clone();
        x[sa + 7] = 2;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::Invalid { .. })
        ));
        // Transform "last" marker must be 0 or 3.
        let mut x = b.clone();
        x[sa + 8] = 2;
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::Invalid { .. })
        ));
    }

    #[test]
    fn delete_ts_eap_skf_rules() {
        let del = |size: u8, n: u16, spis: &[u8]| {
            let mut b = msg(vec![Payload::VendorId(b"")]);
            b[16] = pt::DELETE;
            b.truncate(HEADER_LEN);
            let len = 8 + spis.len();
            b.extend_from_slice(&[0, 0, 0, len as u8, 3, size]);
            b.extend_from_slice(&n.to_be_bytes());
            b.extend_from_slice(spis);
            let total = b.len() as u32;
            b[24..28].copy_from_slice(&total.to_be_bytes());
            b
        };
        assert!(Message::parse(&del(4, 2, &[0; 8])).is_ok());
        assert!(Message::parse(&del(4, 3, &[0; 8])).is_err());
        assert!(Message::parse(&del(0, 1, &[])).is_err());
        assert!(Message::parse(&del(4, 1, &[0; 6])).is_err());

        let ts = |sel: Vec<TrafficSelector>| {
            Message {
                header: header(),
                payloads: vec![Payload::TsI(sel)],
            }
            .emit()
        };
        assert!(ts(vec![]).is_err());
        let mixed = TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 0,
            start: IpAddr::V4(Ipv4Addr::LOCALHOST),
            end: IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        assert!(ts(vec![mixed]).is_err());
        let mut good = ts(vec![TrafficSelector {
            end: IpAddr::V4(Ipv4Addr::BROADCAST),
            ..mixed
        }])
        .unwrap();
        good[HEADER_LEN + 8] = 9; // TS type 9 is unknown
        assert!(matches!(
            Message::parse(&good),
            Err(ParseError::Invalid { .. })
        ));

        let eap = |code, data: &'static [u8]| {
            Message {
                header: header(),
                payloads: vec![Payload::Eap(Eap {
                    code,
                    identifier: 1,
                    data,
                })],
            }
            .emit()
        };
        assert!(eap(1, &[]).is_err());
        assert!(eap(3, &[1]).is_err());
        assert!(eap(5, &[1]).is_err());
        let mut b = eap(2, &[1, 2]).unwrap();
        b[HEADER_LEN + 7] += 1; // EAP length disagrees with the payload
        assert!(matches!(
            Message::parse(&b),
            Err(ParseError::BadLength { .. })
        ));

        let skf = |first, number, total| Message {
            header: header(),
            payloads: vec![Payload::Skf(EncryptedFragment {
                first,
                number,
                total,
                body: &[0; 8],
            })],
        };
        assert!(skf(pt::IDI, 1, 2).emit().is_ok());
        assert!(skf(0, 2, 2).emit().is_ok());
        assert!(skf(pt::IDI, 2, 2).emit().is_err());
        assert!(skf(0, 3, 2).emit().is_err());
        assert!(skf(0, 0, 2).emit().is_err());
        let mut b = skf(0, 2, 2).emit().unwrap();
        b[HEADER_LEN + 5] = 3; // number 3 of 2
        assert!(matches!(
            Message::parse(&b),
            Err(ParseError::Invalid { .. })
        ));
    }

    #[test]
    fn encrypted_payload_must_be_last() {
        let sk = Payload::Sk(Encrypted {
            first: pt::IDI,
            body: &[0; 20],
        });
        let b = msg(vec![Payload::Nonce(&[1; 16]), sk.clone()]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.payloads[1], sk);
        // Something after the SK payload.
        let mut x = b.clone();
        x.extend_from_slice(&[0, 0, 0, 4]);
        let n = x.len() as u32;
        x[24..28].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(
            Message::parse(&x),
            Err(ParseError::MisplacedEncrypted { .. })
        ));
        let bad = Message {
            header: header(),
            payloads: vec![sk, Payload::Nonce(&[1; 16])],
        };
        assert!(bad.emit().is_err());
    }

    #[test]
    fn errors_name_what_and_where() {
        let b = msg(vec![Payload::Nonce(&[1; 16])]);
        let e = Message::parse(&b[..HEADER_LEN + 2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IKE header Length (disagrees with the datagram) at byte 24"
        );
        let mut x = b[..HEADER_LEN + 2].to_vec();
        x[27] = (HEADER_LEN + 2) as u8;
        let e = Message::parse(&x).unwrap_err();
        assert_eq!(e.to_string(), "truncated generic payload header at byte 30");
    }
}
