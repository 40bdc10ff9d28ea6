//! Capture files: a small reader and writer for pcap (microsecond and nanosecond, either byte
//! order) and pcapng, and the link layers the offline tool understands.
//!
//! The writer reproduces the input's framing: the pcap global header (snap length raised if
//! needed), and for pcapng every non-packet block verbatim (section headers with the section
//! length cleared to "unknown", interface blocks with the snap length cleared to "none"), packet
//! blocks with their interface, raw timestamp words and options, in the section's byte order.
//! Timestamps are copied as the raw words of the input, so any resolution survives unchanged.
//!
//! Written here rather than taken from a crate: the pcapng blocks must be copied verbatim (with
//! their `if_tsresol` untouched), records are read into reused buffers on the packet path, and a
//! malformed file must give an error, never a panic.

use std::fmt;
use std::io::{self, Read, Write};

/// pcap magic, microsecond timestamps (as read in the file's byte order).
const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
/// pcap magic, nanosecond timestamps.
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// pcapng Section Header Block type.
const SHB: u32 = 0x0a0d_0d0a;
/// pcapng Interface Description Block.
const IDB: u32 = 1;
/// pcapng obsolete Packet Block.
const OPB: u32 = 2;
/// pcapng Simple Packet Block.
const SPB: u32 = 3;
/// pcapng Enhanced Packet Block.
const EPB: u32 = 6;
/// pcapng byte-order magic.
const BOM: u32 = 0x1a2b_3c4d;
/// Largest record or block accepted (a corrupt length must not allocate gigabytes).
pub const MAX_RECORD: usize = 16 << 20;
/// Snap length written when the input's is too small for the output packets.
pub const OUT_SNAPLEN: u32 = 262_144;

/// Errors reading or writing a capture.
#[derive(Debug)]
pub enum CaptureError {
    /// An I/O error.
    Io(io::Error),
    /// The file is not a pcap or pcapng capture, or is corrupt.
    Format(String),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io(e) => write!(f, "{e}"),
            CaptureError::Format(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for CaptureError {}

impl From<io::Error> for CaptureError {
    fn from(e: io::Error) -> Self {
        CaptureError::Io(e)
    }
}

fn bad(msg: impl Into<String>) -> CaptureError {
    CaptureError::Format(msg.into())
}

/// Capture file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap.
    Pcap {
        /// Big-endian file.
        big_endian: bool,
        /// Nanosecond timestamps.
        nanos: bool,
    },
    /// pcapng.
    PcapNg,
}

#[derive(Clone, Copy)]
struct Endian(bool);

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let x = [b[at], b[at + 1]];
        if self.0 {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        }
    }
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.0 {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    }
    fn put_u32(self, v: u32) -> [u8; 4] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

/// Where a packet record came from, with what is needed to write it back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// Kind of record.
    pub kind: RecordKind,
    /// Interface (pcapng; 0 for pcap).
    pub iface: u32,
    /// Timestamp, high word (pcap: seconds; pcapng: upper 32 bits).
    pub ts_hi: u32,
    /// Timestamp, low word (pcap: micro- or nanoseconds; pcapng: lower 32 bits).
    pub ts_lo: u32,
    /// Original length on the wire.
    pub orig_len: u32,
    /// Link type of the record's interface.
    pub linktype: u32,
    /// Options of a pcapng packet block (raw, in the section's byte order, end-of-options
    /// included if present).
    pub options: Vec<u8>,
}

/// Kind of packet record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordKind {
    /// A pcap record.
    #[default]
    Pcap,
    /// A pcapng Enhanced Packet Block (or an obsolete Packet Block, written back as an EPB).
    Epb,
    /// A pcapng Simple Packet Block.
    Spb,
}

/// What [`Reader::next_into`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A packet: its bytes are in the data buffer, its metadata in the meta argument.
    Packet,
    /// A pcapng block that is not a packet (section header, interface description, statistics,
    /// name resolution, ...): the whole raw block is in the data buffer.
    Block,
}

#[derive(Clone, Copy, Debug)]
struct Iface {
    linktype: u16,
    snaplen: u32,
}

enum Kind {
    Pcap {
        endian: Endian,
        linktype: u32,
        header: [u8; 24],
        nanos: bool,
    },
    PcapNg {
        endian: Endian,
        ifaces: Vec<Iface>,
        /// The first section header, read while detecting the format, not yet returned.
        first: Option<Vec<u8>>,
    },
}

/// Reads packets from a pcap or pcapng stream.
pub struct Reader<R: Read> {
    inner: R,
    kind: Kind,
    /// Records read so far (for error messages).
    records: u64,
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, io::Error> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> Reader<R> {
    /// Reads the file header and detects the format.
    pub fn new(mut inner: R) -> Result<Self, CaptureError> {
        let mut head = [0u8; 24];
        let n = read_full(&mut inner, &mut head[..12])?;
        if n < 12 {
            return Err(bad(
                "not a capture file: too short for a pcap or pcapng header",
            ));
        }
        let le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if le == SHB {
            let bom_le = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            let bom_be = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
            let endian = if bom_le == BOM {
                Endian(false)
            } else if bom_be == BOM {
                Endian(true)
            } else {
                return Err(bad("pcapng: bad byte-order magic in the section header"));
            };
            let len = endian.u32(&head, 4) as usize;
            let mut block = head[..12].to_vec();
            read_block_rest(&mut inner, &mut block, len)?;
            let mut r = Reader {
                inner,
                kind: Kind::PcapNg {
                    endian,
                    ifaces: Vec::new(),
                    first: None,
                },
                records: 0,
            };
            r.check_shb(&block)?;
            if let Kind::PcapNg { first, .. } = &mut r.kind {
                *first = Some(block);
            }
            return Ok(r);
        }
        let (endian, nanos) = match (le, be) {
            (PCAP_MAGIC_US, _) => (Endian(false), false),
            (PCAP_MAGIC_NS, _) => (Endian(false), true),
            (_, PCAP_MAGIC_US) => (Endian(true), false),
            (_, PCAP_MAGIC_NS) => (Endian(true), true),
            _ => return Err(bad("not a pcap or pcapng file (unknown magic number)")),
        };
        if read_full(&mut inner, &mut head[12..])? < 12 {
            return Err(bad("pcap: truncated file header"));
        }
        let linktype = endian.u32(&head, 20);
        Ok(Reader {
            inner,
            kind: Kind::Pcap {
                endian,
                linktype,
                header: head,
                nanos,
            },
            records: 0,
        })
    }

    /// The format of the file.
    pub fn format(&self) -> Format {
        match &self.kind {
            Kind::Pcap { endian, nanos, .. } => Format::Pcap {
                big_endian: endian.0,
                nanos: *nanos,
            },
            Kind::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// The pcap global header (pcap files only).
    pub fn pcap_header(&self) -> Option<[u8; 24]> {
        match &self.kind {
            Kind::Pcap { header, .. } => Some(*header),
            Kind::PcapNg { .. } => None,
        }
    }

    fn check_shb(&mut self, block: &[u8]) -> Result<(), CaptureError> {
        if block.len() < 28 {
            return Err(bad("pcapng: section header block too short"));
        }
        let bom_le = u32::from_le_bytes([block[8], block[9], block[10], block[11]]);
        let endian = Endian(bom_le != BOM);
        if endian.u32(block, 8) != BOM {
            return Err(bad("pcapng: bad byte-order magic in a section header"));
        }
        let major = endian.u16(block, 12);
        if major != 1 {
            return Err(bad(format!("pcapng: unsupported version {major}")));
        }
        if let Kind::PcapNg {
            endian: e, ifaces, ..
        } = &mut self.kind
        {
            *e = endian;
            ifaces.clear();
        }
        Ok(())
    }

    /// Reads the next item into `data` and, for packets, `meta`. `Ok(None)` at the end of the
    /// file.
    pub fn next_into(
        &mut self,
        data: &mut Vec<u8>,
        meta: &mut RecordMeta,
    ) -> Result<Option<Item>, CaptureError> {
        Ok(self
            .next_into_slot(data, &mut [], meta)?
            .map(|(item, _)| item))
    }

    /// Like [`next_into`](Self::next_into), but a pcap record that fits in `slot` is read
    /// straight into it (saving a copy on the packet path): then the second value is
    /// `Some(length)` and `data` is left empty. pcapng packets and blocks always go to `data`.
    pub fn next_into_slot(
        &mut self,
        data: &mut Vec<u8>,
        slot: &mut [u8],
        meta: &mut RecordMeta,
    ) -> Result<Option<(Item, Option<usize>)>, CaptureError> {
        data.clear();
        match &mut self.kind {
            Kind::Pcap {
                endian, linktype, ..
            } => {
                let (endian, linktype) = (*endian, *linktype);
                let mut h = [0u8; 16];
                let n = read_full(&mut self.inner, &mut h)?;
                if n == 0 {
                    return Ok(None);
                }
                if n < 16 {
                    return Err(bad(format!(
                        "pcap: record {} has a truncated header",
                        self.records + 1
                    )));
                }
                let incl = endian.u32(&h, 8) as usize;
                if incl > MAX_RECORD {
                    return Err(bad(format!(
                        "pcap: record {} claims {incl} bytes (corrupt file?)",
                        self.records + 1
                    )));
                }
                let in_slot = incl <= slot.len();
                let dst = if in_slot {
                    &mut slot[..incl]
                } else {
                    data.resize(incl, 0);
                    &mut data[..]
                };
                if read_full(&mut self.inner, dst)? < incl {
                    return Err(bad(format!(
                        "pcap: record {} is truncated",
                        self.records + 1
                    )));
                }
                self.records += 1;
                meta.kind = RecordKind::Pcap;
                meta.iface = 0;
                meta.ts_hi = endian.u32(&h, 0);
                meta.ts_lo = endian.u32(&h, 4);
                meta.orig_len = endian.u32(&h, 12);
                meta.linktype = linktype;
                meta.options.clear();
                Ok(Some((Item::Packet, in_slot.then_some(incl))))
            }
            Kind::PcapNg { first, .. } => {
                if let Some(b) = first.take() {
                    *data = b;
                    return Ok(Some((Item::Block, None)));
                }
                Ok(self.next_ng(data, meta)?.map(|i| (i, None)))
            }
        }
    }

    fn next_ng(
        &mut self,
        data: &mut Vec<u8>,
        meta: &mut RecordMeta,
    ) -> Result<Option<Item>, CaptureError> {
        let mut h = [0u8; 12];
        let n = read_full(&mut self.inner, &mut h[..8])?;
        if n == 0 {
            return Ok(None);
        }
        if n < 8 {
            return Err(bad("pcapng: truncated block header"));
        }
        let Kind::PcapNg { endian, .. } = &self.kind else {
            return Err(bad("internal: not pcapng"));
        };
        let mut endian = *endian;
        let raw_type = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if raw_type == SHB {
            // A new section: its byte order may differ.
            if read_full(&mut self.inner, &mut h[8..12])? < 4 {
                return Err(bad("pcapng: truncated section header"));
            }
            let bom_le = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
            endian = Endian(bom_le != BOM);
            data.extend_from_slice(&h);
            let len = endian.u32(&h, 4) as usize;
            read_block_rest(&mut self.inner, data, len)?;
            self.check_shb(data)?;
            return Ok(Some(Item::Block));
        }
        let btype = endian.u32(&h, 0);
        let len = endian.u32(&h, 4) as usize;
        data.extend_from_slice(&h[..8]);
        read_block_rest(&mut self.inner, data, len)?;
        let Kind::PcapNg { ifaces, .. } = &mut self.kind else {
            return Err(bad("internal: not pcapng"));
        };
        let body = &data[8..len - 4];
        match btype {
            IDB => {
                if body.len() < 8 {
                    return Err(bad("pcapng: interface description block too short"));
                }
                ifaces.push(Iface {
                    linktype: endian.u16(body, 0),
                    snaplen: endian.u32(body, 4),
                });
                Ok(Some(Item::Block))
            }
            EPB | OPB => {
                if body.len() < 20 {
                    return Err(bad("pcapng: packet block too short"));
                }
                let iface = if btype == EPB {
                    endian.u32(body, 0)
                } else {
                    u32::from(endian.u16(body, 0))
                };
                let caplen = endian.u32(body, 12) as usize;
                let padded = caplen.div_ceil(4) * 4;
                if 20 + padded > body.len() {
                    return Err(bad(format!(
                        "pcapng: packet block {} claims {caplen} bytes in a {}-byte block",
                        self.records + 1,
                        len
                    )));
                }
                let lt = ifaces
                    .get(iface as usize)
                    .ok_or_else(|| {
                        bad(format!(
                            "pcapng: packet {} refers to interface {iface}, which is not described",
                            self.records + 1
                        ))
                    })?
                    .linktype;
                meta.kind = RecordKind::Epb;
                meta.iface = iface;
                meta.ts_hi = endian.u32(body, 4);
                meta.ts_lo = endian.u32(body, 8);
                meta.orig_len = endian.u32(body, 16);
                meta.linktype = u32::from(lt);
                meta.options.clear();
                meta.options.extend_from_slice(&body[20 + padded..]);
                self.records += 1;
                data.copy_within(8 + 20..8 + 20 + caplen, 0);
                data.truncate(caplen);
                Ok(Some(Item::Packet))
            }
            SPB => {
                if body.len() < 4 {
                    return Err(bad("pcapng: simple packet block too short"));
                }
                let i0 = ifaces.first().copied().ok_or_else(|| {
                    bad("pcapng: simple packet block before any interface description")
                })?;
                let orig = endian.u32(body, 0);
                let mut caplen = (orig as usize).min(body.len() - 4);
                if i0.snaplen != 0 {
                    caplen = caplen.min(i0.snaplen as usize);
                }
                meta.kind = RecordKind::Spb;
                meta.iface = 0;
                meta.ts_hi = 0;
                meta.ts_lo = 0;
                meta.orig_len = orig;
                meta.linktype = u32::from(i0.linktype);
                meta.options.clear();
                self.records += 1;
                data.copy_within(8 + 4..8 + 4 + caplen, 0);
                data.truncate(caplen);
                Ok(Some(Item::Packet))
            }
            _ => Ok(Some(Item::Block)),
        }
    }
}

/// Reads the rest of a pcapng block whose first `data.len()` bytes are already in `data`, and
/// checks the trailing length.
fn read_block_rest<R: Read>(r: &mut R, data: &mut Vec<u8>, len: usize) -> Result<(), CaptureError> {
    let have = data.len();
    if len < 12 || !len.is_multiple_of(4) || len > MAX_RECORD || len < have {
        return Err(bad(format!("pcapng: bad block length {len}")));
    }
    data.resize(len, 0);
    if read_full(r, &mut data[have..])? < len - have {
        return Err(bad("pcapng: truncated block"));
    }
    let tail = [data[len - 4], data[len - 3], data[len - 2], data[len - 1]];
    let first = [data[4], data[5], data[6], data[7]];
    if tail != first {
        return Err(bad(
            "pcapng: block's trailing length differs from its leading length",
        ));
    }
    Ok(())
}

/// Writes a capture in the input's format.
pub struct Writer<W: Write> {
    inner: W,
    format: Format,
    endian: Endian,
    scratch: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// A pcap writer with the input's global header (`header`); the snap length is raised to
    /// [`OUT_SNAPLEN`] if smaller, since encapsulation makes packets longer.
    pub fn pcap(mut inner: W, mut header: [u8; 24]) -> Result<Self, CaptureError> {
        let le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let endian = Endian(!(le == PCAP_MAGIC_US || le == PCAP_MAGIC_NS));
        let nanos = le == PCAP_MAGIC_NS || le.swap_bytes() == PCAP_MAGIC_NS;
        if endian.u32(&header, 16) < OUT_SNAPLEN {
            header[16..20].copy_from_slice(&endian.put_u32(OUT_SNAPLEN));
        }
        inner.write_all(&header)?;
        Ok(Writer {
            inner,
            format: Format::Pcap {
                big_endian: endian.0,
                nanos,
            },
            endian,
            scratch: Vec::new(),
        })
    }

    /// A pcapng writer; the blocks come from [`write_block`](Self::write_block).
    pub fn pcapng(inner: W) -> Self {
        Writer {
            inner,
            format: Format::PcapNg,
            endian: Endian(false),
            scratch: Vec::new(),
        }
    }

    /// A new empty pcap file (microseconds, little-endian) with this link type (for tests and
    /// generators).
    pub fn new_pcap(inner: W, linktype: u32) -> Result<Self, CaptureError> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_US.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&OUT_SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        Self::pcap(inner, h)
    }

    /// A new pcapng file (little-endian) with one section and one interface of this link type
    /// and microsecond timestamps (for tests and generators).
    pub fn new_pcapng(inner: W, linktype: u16) -> Result<Self, CaptureError> {
        let mut w = Self::pcapng(inner);
        let mut shb = Vec::new();
        shb.extend_from_slice(&SHB.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&BOM.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        w.write_block(&shb)?;
        let mut idb = Vec::new();
        idb.extend_from_slice(&IDB.to_le_bytes());
        idb.extend_from_slice(&20u32.to_le_bytes());
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&20u32.to_le_bytes());
        w.write_block(&idb)?;
        Ok(w)
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Copies a non-packet pcapng block. Section headers switch the byte order and get an
    /// unspecified section length; interface descriptions get snap length 0 (no limit).
    pub fn write_block(&mut self, block: &[u8]) -> Result<(), CaptureError> {
        if self.format != Format::PcapNg || block.len() < 12 {
            return Err(bad("internal: block write on a non-pcapng writer"));
        }
        let raw_type = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        if raw_type == SHB {
            let bom_le = u32::from_le_bytes([block[8], block[9], block[10], block[11]]);
            self.endian = Endian(bom_le != BOM);
            if block.len() >= 24 {
                self.scratch.clear();
                self.scratch.extend_from_slice(block);
                self.scratch[16..24].copy_from_slice(&[0xff; 8]);
                self.inner.write_all(&self.scratch)?;
                return Ok(());
            }
        } else if self.endian.u32(block, 0) == IDB && block.len() >= 20 {
            self.scratch.clear();
            self.scratch.extend_from_slice(block);
            self.scratch[12..16].copy_from_slice(&[0; 4]);
            self.inner.write_all(&self.scratch)?;
            return Ok(());
        }
        self.inner.write_all(block)?;
        Ok(())
    }

    /// Writes a packet made of `l2` then `payload`, with the timestamp, interface and options
    /// of `meta`.
    pub fn write_packet(
        &mut self,
        meta: &RecordMeta,
        l2: &[u8],
        payload: &[u8],
    ) -> Result<(), CaptureError> {
        let len = l2.len() + payload.len();
        let len32 = u32::try_from(len).map_err(|_| bad("packet too large for a capture record"))?;
        let e = self.endian;
        match self.format {
            Format::Pcap { .. } => {
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&e.put_u32(meta.ts_hi));
                h[4..8].copy_from_slice(&e.put_u32(meta.ts_lo));
                h[8..12].copy_from_slice(&e.put_u32(len32));
                h[12..16].copy_from_slice(&e.put_u32(len32));
                self.inner.write_all(&h)?;
                self.inner.write_all(l2)?;
                self.inner.write_all(payload)?;
            }
            Format::PcapNg => {
                let pad = (4 - len % 4) % 4;
                let (fixed, opts) = match meta.kind {
                    RecordKind::Spb => (4usize, &[][..]),
                    _ => (20usize, meta.options.as_slice()),
                };
                let total = 8 + fixed + len + pad + opts.len() + 4;
                let total32 = u32::try_from(total).map_err(|_| bad("block too large"))?;
                let mut h = [0u8; 28];
                let btype = if meta.kind == RecordKind::Spb {
                    SPB
                } else {
                    EPB
                };
                h[0..4].copy_from_slice(&e.put_u32(btype));
                h[4..8].copy_from_slice(&e.put_u32(total32));
                if meta.kind == RecordKind::Spb {
                    h[8..12].copy_from_slice(&e.put_u32(len32));
                } else {
                    h[8..12].copy_from_slice(&e.put_u32(meta.iface));
                    h[12..16].copy_from_slice(&e.put_u32(meta.ts_hi));
                    h[16..20].copy_from_slice(&e.put_u32(meta.ts_lo));
                    h[20..24].copy_from_slice(&e.put_u32(len32));
                    h[24..28].copy_from_slice(&e.put_u32(len32));
                }
                self.inner.write_all(&h[..8 + fixed])?;
                self.inner.write_all(l2)?;
                self.inner.write_all(payload)?;
                self.inner.write_all(&[0u8; 3][..pad])?;
                self.inner.write_all(opts)?;
                self.inner.write_all(&e.put_u32(total32))?;
            }
        }
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, CaptureError> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Link types (pcap LINKTYPE_* values).
pub mod linktype {
    /// BSD loopback: 4-byte address family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet.
    pub const ETHERNET: u32 = 1;
    /// DLT_RAW as some systems number it.
    pub const DLT_RAW_12: u32 = 12;
    /// DLT_RAW as OpenBSD numbers it.
    pub const DLT_RAW_14: u32 = 14;
    /// Raw IP (version from the first nibble).
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family, network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4 only.
    pub const IPV4: u32 = 228;
    /// Raw IPv6 only.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// The link type cannot carry a packet of the other IP version (raw IPv4-only or IPv6-only
/// captures), or the link header is too short to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyMismatch;

/// A link layer the tool can strip and rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Raw IP, either version.
    Raw,
    /// Raw IPv4 only.
    RawV4,
    /// Raw IPv6 only.
    RawV6,
    /// Ethernet II, with any number of 802.1Q/802.1ad tags.
    Ethernet,
    /// BSD loopback (NULL) or OpenBSD LOOP: a 4-byte address family.
    Null {
        /// The family is in network byte order (LOOP).
        network_order: bool,
    },
    /// Linux cooked capture v1 (16-byte header) or v2 (20-byte header).
    Sll {
        /// Version 2.
        v2: bool,
    },
}

impl Link {
    /// The link of a pcap link type, or `None` if unsupported.
    pub fn from_linktype(lt: u32) -> Option<Link> {
        use linktype::*;
        // pcap's "network" field carries FCS information in its upper bits.
        if lt & 0xf000_0000 != 0 && lt & 0x0400_0000 != 0 {
            return None;
        }
        Some(match lt & 0x03ff_ffff {
            NULL => Link::Null {
                network_order: false,
            },
            LOOP => Link::Null {
                network_order: true,
            },
            ETHERNET => Link::Ethernet,
            DLT_RAW_12 | DLT_RAW_14 | RAW => Link::Raw,
            IPV4 => Link::RawV4,
            IPV6 => Link::RawV6,
            LINUX_SLL => Link::Sll { v2: false },
            LINUX_SLL2 => Link::Sll { v2: true },
            _ => return None,
        })
    }

    /// A short name for messages.
    pub fn name(lt: u32) -> String {
        use linktype::*;
        match lt & 0x03ff_ffff {
            NULL => "NULL (BSD loopback)".into(),
            ETHERNET => "Ethernet".into(),
            DLT_RAW_12 | DLT_RAW_14 | RAW => "raw IP".into(),
            LOOP => "LOOP".into(),
            LINUX_SLL => "Linux cooked (SLL)".into(),
            IPV4 => "raw IPv4".into(),
            IPV6 => "raw IPv6".into(),
            LINUX_SLL2 => "Linux cooked v2 (SLL2)".into(),
            other => format!("link type {other}"),
        }
    }

    /// Splits a frame: the length of the link header before an IPv4 or IPv6 packet, or `None`
    /// when the frame does not carry IP (ARP, LLDP, ...) or is too short.
    pub fn ip_offset(self, frame: &[u8]) -> Option<usize> {
        let off = match self {
            Link::Raw | Link::RawV4 | Link::RawV6 => 0,
            Link::Ethernet => {
                let mut at = 12;
                loop {
                    let et = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
                    match et {
                        0x8100 | 0x88a8 | 0x9100 => at += 4,
                        0x0800 | 0x86dd => break at + 2,
                        _ => return None,
                    }
                }
            }
            Link::Null { network_order } => {
                let b = frame.get(..4)?;
                let af = if network_order {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
                } else {
                    // Host byte order of the capturing machine: accept either.
                    let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if le < 256 {
                        le
                    } else {
                        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
                    }
                };
                match af {
                    2 | 10 | 24 | 28 | 30 => 4,
                    _ => return None,
                }
            }
            Link::Sll { v2 } => {
                let (at, len) = if v2 { (0, 20) } else { (14, 16) };
                let et = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
                if frame.len() < len || !matches!(et, 0x0800 | 0x86dd) {
                    return None;
                }
                len
            }
        };
        let v = frame.get(off)? >> 4;
        let ok = match self {
            Link::RawV4 => v == 4,
            Link::RawV6 => v == 6,
            _ => v == 4 || v == 6,
        };
        ok.then_some(off)
    }

    /// Rewrites the protocol field of the link header `l2` (as split by
    /// [`ip_offset`](Self::ip_offset)) for a packet of IP version 4 or 6. Fails when the link
    /// type cannot carry that version.
    pub fn set_version(self, l2: &mut [u8], v6: bool) -> Result<(), FamilyMismatch> {
        let et: u16 = if v6 { 0x86dd } else { 0x0800 };
        match self {
            Link::Raw => Ok(()),
            Link::RawV4 => (!v6).then_some(()).ok_or(FamilyMismatch),
            Link::RawV6 => v6.then_some(()).ok_or(FamilyMismatch),
            Link::Ethernet => {
                let n = l2.len();
                if n < 14 {
                    return Err(FamilyMismatch);
                }
                l2[n - 2..].copy_from_slice(&et.to_be_bytes());
                Ok(())
            }
            Link::Sll { v2 } => {
                let at = if v2 { 0 } else { 14 };
                let f = l2.get_mut(at..at + 2).ok_or(FamilyMismatch)?;
                f.copy_from_slice(&et.to_be_bytes());
                Ok(())
            }
            Link::Null { network_order } => {
                let b = l2.get_mut(..4).ok_or(FamilyMismatch)?;
                let cur_le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let is_v6 = |af: u32| matches!(af, 10 | 24 | 28 | 30);
                let le = !network_order && cur_le < 256;
                let cur = if le {
                    cur_le
                } else {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
                };
                if is_v6(cur) == v6 {
                    return Ok(());
                }
                let af: u32 = if v6 { 24 } else { 2 };
                b.copy_from_slice(&if le {
                    af.to_le_bytes()
                } else {
                    af.to_be_bytes()
                });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(mut w: Writer<Vec<u8>>, frames: &[Vec<u8>]) -> Vec<u8> {
        for (i, f) in frames.iter().enumerate() {
            let meta = RecordMeta {
                kind: if w.format() == Format::PcapNg {
                    RecordKind::Epb
                } else {
                    RecordKind::Pcap
                },
                ts_hi: 100 + i as u32,
                ts_lo: 7,
                ..Default::default()
            };
            w.write_packet(&meta, &[], f).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn pcap_and_pcapng_round_trip() {
        let frames = vec![vec![0x45u8; 21], vec![0x60; 40], vec![]];
        for ng in [false, true] {
            let w = if ng {
                Writer::new_pcapng(Vec::new(), 101).unwrap()
            } else {
                Writer::new_pcap(Vec::new(), 101).unwrap()
            };
            let bytes = roundtrip(w, &frames);
            let mut r = Reader::new(bytes.as_slice()).unwrap();
            let mut data = Vec::new();
            let mut meta = RecordMeta::default();
            let mut got = Vec::new();
            let mut blocks = Vec::new();
            while let Some(item) = r.next_into(&mut data, &mut meta).unwrap() {
                match item {
                    Item::Packet => {
                        assert_eq!(meta.linktype, 101);
                        assert_eq!(meta.ts_hi, 100 + got.len() as u32);
                        assert_eq!(meta.ts_lo, 7);
                        got.push(data.clone());
                    }
                    Item::Block => blocks.push(data.clone()),
                }
            }
            assert_eq!(got, frames);
            // Copying the blocks and packets again reproduces the file byte for byte.
            let mut w2 = if ng {
                Writer::pcapng(Vec::new())
            } else {
                Writer::pcap(Vec::new(), r.pcap_header().unwrap()).unwrap()
            };
            for b in &blocks {
                w2.write_block(b).unwrap();
            }
            let again = roundtrip(w2, &frames);
            assert_eq!(again, bytes);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            let _ = Reader::new(junk.as_slice());
        }
        // A valid pcapng start followed by every truncation.
        let good = roundtrip(Writer::new_pcapng(Vec::new(), 1).unwrap(), &[vec![1; 30]]);
        for cut in 0..good.len() {
            if let Ok(mut r) = Reader::new(&good[..cut]) {
                let mut d = Vec::new();
                let mut m = RecordMeta::default();
                while let Ok(Some(_)) = r.next_into(&mut d, &mut m) {}
            }
        }
    }

    #[test]
    fn ethernet_vlan_and_sll() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xdd, 0x60]);
        assert_eq!(Link::Ethernet.ip_offset(&f), Some(18));
        let mut l2 = f[..18].to_vec();
        Link::Ethernet.set_version(&mut l2, false).unwrap();
        assert_eq!(&l2[16..18], &[0x08, 0x00]);
        f[16] = 0x08;
        f[17] = 0x06; // ARP
        assert_eq!(Link::Ethernet.ip_offset(&f), None);
        let mut s = vec![0u8; 16];
        s[14] = 0x08;
        s.push(0x45);
        assert_eq!(Link::Sll { v2: false }.ip_offset(&s), Some(16));
        assert_eq!(Link::RawV6.ip_offset(&[0x45]), None);
        assert!(Link::RawV4.set_version(&mut [], true).is_err());
    }
}
