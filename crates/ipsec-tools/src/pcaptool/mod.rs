//! `ipsecpcap`: encrypt, decrypt and verify capture files offline with manually keyed SAs.
//!
//! The packets of a pcap or pcapng file go through the same [`Engine`] as live traffic, in
//! batches and in reused buffers. Each packet gets one report line and the run a summary; the
//! outcome says whether every packet was processed (see [`Outcome`]).
//!
//! The engine work runs on the calling thread. With [`Options::threads`] above 1, the output
//! capture is written by a thread of its own and, given a third thread (or no output), the
//! input is read by another (see the `iothread` module), so the kernel's page-cache copies
//! overlap with the processing; the bytes written, the report and the outcome are the same
//! either way.

pub mod inspect;
mod iothread;
mod report;
pub mod sa_files;
pub mod select;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ipsec_core::frag::Reassembler;
use ipsec_core::{DropReason, Engine, InboundOk, PacketBuf, Proto, ReplayError, SaConfig, Sadb};

use crate::capture::{CaptureError, Item, Link, Reader, RecordMeta, Writer};
use inspect::{FragKey, SecHdrs};
use report::{Label, Report, Verdicts};
use select::{Bundle, Candidate, Selector};

/// The three operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Apply outbound ESP/AH to every packet an SA matches.
    Encrypt,
    /// Inbound processing; the decapsulated packets are written.
    Decrypt,
    /// Inbound processing with replay and ICV verdicts per packet; nothing is written.
    Verify,
}

impl Op {
    /// Command name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Verify => "verify",
        }
    }
}

/// What to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Operation.
    pub op: Op,
    /// Input capture.
    pub input: PathBuf,
    /// Output capture (encrypt and decrypt).
    pub output: Option<PathBuf>,
    /// No per-packet lines.
    pub quiet: bool,
    /// Packets the operation does not apply to (no SA on encrypt, not ESP/AH on decrypt and
    /// verify, frames without IP) are copied unchanged either way; with this flag they do not
    /// make the run fail.
    pub pass_unmatched: bool,
    /// Packets per engine batch.
    pub batch: usize,
    /// Threads: 1 reads, processes and writes on the calling thread; 2 adds an I/O thread (the
    /// writer when there is an output, else the reader); 3 or more, both. See
    /// [`default_threads`].
    pub threads: usize,
}

/// The default for [`Options::threads`]: one per CPU available to the process, at most 3. An
/// I/O thread pays off only with a core of its own: on 2 cores a reader thread next to the
/// writer thread slows the run down (the three compete for the cores, and every input byte
/// then crosses between cores), while a writer thread alone, or a reader thread alone when
/// nothing is written, speeds it up.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(3))
}

/// An SA with where it was defined (for messages).
#[derive(Clone, Debug)]
pub struct SaSource {
    /// The SA.
    pub cfg: SaConfig,
    /// `file:line`.
    pub origin: String,
}

/// Errors that stop the run (exit status 2).
#[derive(Debug)]
pub enum ToolError {
    /// Could not open, read or write a file, or the capture is malformed.
    Capture(String),
    /// An SA was refused.
    Sa(String),
    /// The capture uses a link type the tool does not handle.
    LinkType(String),
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::Capture(s) | ToolError::Sa(s) | ToolError::LinkType(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ToolError {}

/// How the run went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Packets read.
    pub packets: u64,
    /// True when some packet failed (or was unmatched without `--pass-unmatched`).
    pub failed: bool,
}

/// The final state of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// To be processed by the engine.
    Process,
    /// Processed successfully.
    Ok,
    /// Copied unchanged (no SA / not IP / not IPsec).
    Passed(&'static str),
    /// Dropped.
    Drop(&'static str),
    /// A fragment waiting for the rest of its datagram.
    Held,
}

const NO_SA: &str = "no SA (passed)";
const NOT_IP: &str = "not IP (passed)";
const NOT_IPSEC: &str = "not ipsec (passed)";
const TRUNCATED: &str = "capture_truncated";
const LINK_FAMILY: &str = "link_family_mismatch";
const TOO_BIG: &str = "too_big_for_buffer";

/// Largest IP packet (with link header) a buffer holds.
const MAX_PACKET: usize = 65_535 + 64;
/// Capacity of a buffer made by `PacketBuf::with_mtu(MAX_PACKET)`.
const BUF_CAPACITY: usize =
    ipsec_core::buf::DEFAULT_HEADROOM + MAX_PACKET + ipsec_core::buf::DEFAULT_TAILROOM;

struct Slot {
    /// The record, unless it was read straight into the packet buffer (`in_buf`).
    data: Vec<u8>,
    in_buf: bool,
    meta: RecordMeta,
    number: u64,
    link: Link,
    l2: Vec<u8>,
    state: State,
    hdrs: SecHdrs,
    /// Full (ESN) sequence numbers for the report, per header in `hdrs`.
    seqs: [u64; 2],
    bundle: Bundle,
    /// Earlier fragments merged into this record's datagram.
    reassembled: Vec<u64>,
    /// The merge failed: `reassembled` share this record's drop reason.
    merged_failed: bool,
    verdicts: Option<Verdicts>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            data: Vec::with_capacity(2048),
            in_buf: false,
            meta: RecordMeta::default(),
            number: 0,
            link: Link::Raw,
            l2: Vec::with_capacity(32),
            state: State::Process,
            hdrs: SecHdrs::default(),
            seqs: [0; 2],
            bundle: Bundle::default(),
            reassembled: Vec::new(),
            merged_failed: false,
            verdicts: None,
        }
    }

    fn label(&self) -> Label {
        match self.state {
            State::Ok => Label::Ok,
            State::Passed(l) => Label::Passed(l),
            State::Drop(l) => Label::Drop(l),
            State::Held => Label::Held,
            State::Process => Label::Drop("internal_unprocessed"),
        }
    }
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> ToolError {
    ToolError::Capture(format!("{what} {}: {e}", path.display()))
}

/// The input: read on the calling thread or by a reader thread.
enum Source {
    Direct(BufReader<File>),
    Thread(iothread::ReadAhead),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Direct(r) => r.read(buf),
            Source::Thread(r) => r.read(buf),
        }
    }
}

/// The output: written on the calling thread or by a writer thread.
enum Sink {
    Direct(BufWriter<File>),
    Thread(iothread::WriteBehind),
}

impl Sink {
    /// Writes everything (and ends the writer thread).
    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Direct(mut w) => w.flush(),
            Sink::Thread(w) => w.finish(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Direct(w) => w.write(buf),
            Sink::Thread(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Direct(w) => w.write_all(buf),
            Sink::Thread(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Direct(w) => w.flush(),
            Sink::Thread(w) => w.flush(),
        }
    }
}

fn thread_err(what: &str, e: io::Error) -> ToolError {
    ToolError::Capture(format!(
        "cannot start the {what} thread: {e} (--threads 1 does without)"
    ))
}

/// Runs `opts` with `sas`, writing the report to `out`.
pub fn run(opts: &Options, sas: Vec<SaSource>, out: &mut dyn Write) -> Result<Outcome, ToolError> {
    let writes = opts.output.is_some() && matches!(opts.op, Op::Encrypt | Op::Decrypt);
    let write_thread = writes && opts.threads >= 2;
    let read_thread = opts.threads >= 3 || (opts.threads == 2 && !writes);
    let file = File::open(&opts.input).map_err(|e| io_err("cannot open", &opts.input, e))?;
    let source = if read_thread {
        let r =
            iothread::ReadAhead::spawn("ipsecpcap-read", file, iothread::CHUNK, iothread::BUFFERS)
                .map_err(|e| thread_err("reader", e))?;
        Source::Thread(r)
    } else {
        Source::Direct(BufReader::with_capacity(1 << 20, file))
    };
    let reader = Reader::new(source).map_err(|e| io_err("cannot read", &opts.input, e))?;
    let writer = match (&opts.output, opts.op) {
        (Some(path), Op::Encrypt | Op::Decrypt) => {
            let f = File::create(path).map_err(|e| io_err("cannot create", path, e))?;
            let w = if write_thread {
                let w = iothread::WriteBehind::spawn(
                    "ipsecpcap-write",
                    f,
                    iothread::CHUNK,
                    iothread::BUFFERS,
                )
                .map_err(|e| thread_err("writer", e))?;
                Sink::Thread(w)
            } else {
                Sink::Direct(BufWriter::with_capacity(1 << 20, f))
            };
            Some(match reader.pcap_header() {
                Some(h) => Writer::pcap(w, h).map_err(|e| io_err("cannot write", path, e))?,
                None => Writer::pcapng(w),
            })
        }
        _ => None,
    };
    let mut sadb = Sadb::new();
    let mut cands = Vec::with_capacity(sas.len());
    for s in sas {
        let id = sadb
            .add(s.cfg.clone(), 0)
            .map_err(|e| ToolError::Sa(format!("{}: SA refused: {e}", s.origin)))?;
        if opts.op == Op::Encrypt && s.cfg.replay_value != 0 {
            // `replay_value` on an outbound SA sets its counter (the next packet gets +1).
            if let Some(sa) = sadb.get_mut(id) {
                sa.set_seq_out(s.cfg.replay_value);
            }
        }
        cands.push(Candidate { id, cfg: s.cfg });
    }
    let mut t = Tool {
        opts,
        sadb,
        engine: Engine::new(),
        selector: Selector::new(cands.clone()),
        cands,
        reassembler: Reassembler::default(),
        held: HashMap::new(),
        report: Report::new(opts.op, opts.quiet),
        results_in: Vec::new(),
        results_out: Vec::new(),
    };
    let res = t.main_loop(reader, writer, out);
    let packets = t.report.packets();
    res?;
    t.finish(out)
        .map_err(|e| ToolError::Capture(format!("cannot write the report: {e}")))?;
    Ok(Outcome {
        packets,
        failed: t.report.failed(opts.pass_unmatched),
    })
}

struct Tool<'a> {
    opts: &'a Options,
    sadb: Sadb,
    engine: Engine,
    selector: Selector,
    cands: Vec<Candidate>,
    reassembler: Reassembler,
    held: HashMap<FragKey, Vec<u64>>,
    report: Report,
    results_in: Vec<Result<InboundOk, DropReason>>,
    results_out: Vec<Result<(), DropReason>>,
}

type OutWriter = Writer<Sink>;

fn report_err(e: io::Error) -> ToolError {
    ToolError::Capture(format!("cannot write the report: {e}"))
}

impl Tool<'_> {
    fn main_loop<R: Read>(
        &mut self,
        mut reader: Reader<R>,
        mut writer: Option<OutWriter>,
        out: &mut dyn Write,
    ) -> Result<(), ToolError> {
        let batch = self.opts.batch.clamp(1, 4096);
        let mut slots: Vec<Slot> = (0..batch).map(|_| Slot::new()).collect();
        let mut bufs: Vec<PacketBuf> = (0..batch)
            .map(|_| PacketBuf::with_mtu(MAX_PACKET))
            .collect();
        self.results_in = vec![Err(DropReason::NotIpsec); batch];
        self.results_out = vec![Ok(()); batch];
        let mut block = Vec::new();
        let mut number = 0u64;
        let mut eof = false;
        while !eof {
            let mut n = 0;
            let mut pending_block = false;
            while n < batch {
                let s = &mut slots[n];
                let b = &mut bufs[n];
                if b.headroom() + b.len() + b.tailroom() < BUF_CAPACITY {
                    // Reassembly hands back a datagram in a buffer of its own size.
                    *b = PacketBuf::with_mtu(MAX_PACKET);
                }
                match reader
                    .next_into_slot(&mut s.data, b.read_slot(), &mut s.meta)
                    .map_err(|e| cap_err(&self.opts.input, e))?
                {
                    None => {
                        eof = true;
                        break;
                    }
                    Some((Item::Block, _)) => {
                        std::mem::swap(&mut block, &mut s.data);
                        pending_block = true;
                        break;
                    }
                    Some((Item::Packet, in_buf)) => {
                        s.in_buf = in_buf.is_some();
                        b.set_len(in_buf.unwrap_or(0));
                        number += 1;
                        s.number = number;
                        n += 1;
                    }
                }
            }
            self.process(&mut slots[..n], &mut bufs[..n])?;
            for (s, b) in slots[..n].iter().zip(bufs.iter()) {
                if let Some(w) = writer.as_mut() {
                    write_slot(w, s, b).map_err(|e| cap_err(self.out_path(), e))?;
                }
                self.report
                    .packet(
                        out,
                        s.number,
                        &s.hdrs,
                        &s.seqs,
                        s.label(),
                        &s.reassembled,
                        s.merged_failed,
                        s.verdicts,
                    )
                    .map_err(report_err)?;
            }
            if pending_block {
                if let Some(w) = writer.as_mut() {
                    w.write_block(&block)
                        .map_err(|e| cap_err(self.out_path(), e))?;
                }
            }
        }
        // Fragments whose datagram never completed.
        let mut left: Vec<u64> = self.held.drain().flat_map(|(_, v)| v).collect();
        left.sort_unstable();
        for n in left {
            self.report
                .late_drop(
                    out,
                    n,
                    DropReason::ExpiredFrags.name(),
                    "datagram incomplete",
                )
                .map_err(report_err)?;
        }
        if let Some(w) = writer {
            w.finish()
                .and_then(|s| s.finish().map_err(CaptureError::Io))
                .map_err(|e| cap_err(self.out_path(), e))?;
        }
        Ok(())
    }

    fn out_path(&self) -> &Path {
        self.opts.output.as_deref().unwrap_or(Path::new("-"))
    }

    fn process(&mut self, slots: &mut [Slot], bufs: &mut [PacketBuf]) -> Result<(), ToolError> {
        for (s, b) in slots.iter_mut().zip(bufs.iter_mut()) {
            self.prepare(s, b)?;
        }
        match self.opts.op {
            Op::Encrypt => self.encrypt(slots, bufs),
            Op::Decrypt => self.decrypt(slots, bufs),
            Op::Verify => {
                for (s, b) in slots.iter_mut().zip(bufs.iter_mut()) {
                    self.verify_one(s, b);
                }
            }
        }
        Ok(())
    }

    /// Splits the link layer and copies the IP packet into the buffer.
    fn prepare(&mut self, s: &mut Slot, buf: &mut PacketBuf) -> Result<(), ToolError> {
        s.hdrs = SecHdrs::default();
        s.seqs = [0; 2];
        s.bundle = Bundle::default();
        s.reassembled.clear();
        s.merged_failed = false;
        s.verdicts = None;
        s.link = Link::from_linktype(s.meta.linktype).ok_or_else(|| {
            ToolError::LinkType(format!(
                "{}: packet {} has link type {} ({}), which ipsecpcap does not handle \
                 (supported: Ethernet 1, raw IP 101/12/14, IPv4 228, IPv6 229, NULL 0, \
                 LOOP 108, Linux SLL 113 and SLL2 276)",
                self.opts.input.display(),
                s.number,
                s.meta.linktype,
                Link::name(s.meta.linktype)
            ))
        })?;
        s.l2.clear();
        let frame = if s.in_buf { buf.data() } else { &s.data[..] };
        if (frame.len() as u64) < u64::from(s.meta.orig_len) {
            s.state = State::Drop(TRUNCATED);
            return Ok(());
        }
        let Some(off) = s.link.ip_offset(frame) else {
            s.state = State::Passed(NOT_IP);
            return Ok(());
        };
        s.l2.extend_from_slice(&frame[..off]);
        s.state = if s.in_buf {
            // The record was read into the buffer: drop the link header in place.
            match buf.pull_front(off) {
                Ok(()) => State::Process,
                Err(_) => State::Drop(TOO_BIG),
            }
        } else {
            match buf.set_packet(&s.data[off..]) {
                Ok(()) => State::Process,
                Err(_) => State::Drop(TOO_BIG),
            }
        };
        Ok(())
    }

    fn encrypt(&mut self, slots: &mut [Slot], bufs: &mut [PacketBuf]) {
        for (s, b) in slots.iter_mut().zip(bufs.iter()) {
            if s.state != State::Process {
                continue;
            }
            match inspect::flow(b.data()) {
                None => s.state = State::Drop(DropReason::MalformedPacket.name()),
                Some(f) => {
                    s.bundle = self.selector.select(&f);
                    if s.bundle.is_empty() {
                        s.hdrs.src = Some(f.src);
                        s.hdrs.dst = Some(f.dst);
                        s.state = State::Passed(NO_SA);
                    }
                }
            }
        }
        // Runs of consecutive packets with the same bundle go through the engine together.
        let mut i = 0;
        while i < slots.len() {
            let Some((ids, k)) = slots[i]
                .bundle
                .as_array()
                .filter(|_| slots[i].state == State::Process)
            else {
                i += 1;
                continue;
            };
            let b = slots[i].bundle;
            let mut j = i + 1;
            while j < slots.len() && slots[j].state == State::Process && slots[j].bundle == b {
                j += 1;
            }
            let results = &mut self.results_out[..j - i];
            self.engine
                .outbound_batch(&mut self.sadb, &ids[..k], &mut bufs[i..j], results, 0);
            for ((s, buf), r) in slots[i..j]
                .iter_mut()
                .zip(bufs[i..j].iter())
                .zip(results.iter())
            {
                s.state = match r {
                    Ok(()) => State::Ok,
                    Err(e) => State::Drop(e.name()),
                };
                if s.state != State::Ok {
                    continue;
                }
                s.hdrs = inspect::sec_hdrs(buf.data());
                for (n, h) in s.hdrs.iter().enumerate() {
                    let seq_out = ids[..k]
                        .iter()
                        .filter_map(|id| self.sadb.get(*id))
                        .find(|sa| sa.proto() == h.proto && sa.spi() == h.spi)
                        .map_or(u64::from(h.seq), |sa| sa.seq_out());
                    s.seqs[n] = widen_below(seq_out, h.seq);
                }
                let v6 = buf.data().first().is_some_and(|b| b >> 4 == 6);
                if s.link.set_version(&mut s.l2, v6).is_err() {
                    s.state = State::Drop(LINK_FAMILY);
                }
            }
            i = j;
        }
    }

    /// Feeds fragments of ESP, AH or UDP to the reassembler; returns false when the record is
    /// done with (held or dropped).
    fn reassemble(&mut self, s: &mut Slot, buf: &mut PacketBuf) -> bool {
        let Some(key) = inspect::frag_key(buf.data()) else {
            return true;
        };
        if !matches!(key.proto, 17 | 50 | 51) {
            return true;
        }
        match self.reassembler.push(buf, 0) {
            Ok(false) => {
                self.held.entry(key).or_default().push(s.number);
                s.state = State::Held;
                false
            }
            Ok(true) => {
                if let Some(v) = self.held.remove(&key) {
                    s.reassembled = v;
                }
                true
            }
            Err(r) => {
                s.state = State::Drop(r.name());
                if let Some(v) = self.held.remove(&key) {
                    s.reassembled = v;
                    s.merged_failed = true;
                }
                false
            }
        }
    }

    /// Reassembly, the headers for the report and the full sequence numbers, before inbound.
    fn inbound_prepare(&mut self, s: &mut Slot, buf: &mut PacketBuf) {
        if s.state != State::Process || !self.reassemble(s, buf) {
            return;
        }
        s.hdrs = inspect::sec_hdrs(buf.data());
        if s.hdrs.is_empty() {
            s.state = State::Passed(NOT_IPSEC);
            return;
        }
        let (src, dst) = (s.hdrs.src, s.hdrs.dst);
        for (n, h) in s.hdrs.iter().enumerate() {
            s.seqs[n] = u64::from(h.seq);
            let sa = dst
                .and_then(|d| self.sadb.lookup(h.proto, d, h.spi, src))
                .and_then(|id| self.sadb.get(id));
            if let Some(sa) = sa.filter(|sa| sa.config().esn) {
                if let Ok(full) = sa.replay().infer(h.seq) {
                    s.seqs[n] = full;
                }
            }
        }
    }

    fn decrypt(&mut self, slots: &mut [Slot], bufs: &mut [PacketBuf]) {
        for (s, b) in slots.iter_mut().zip(bufs.iter_mut()) {
            self.inbound_prepare(s, b);
        }
        let mut i = 0;
        while i < slots.len() {
            if slots[i].state != State::Process {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < slots.len() && slots[j].state == State::Process {
                j += 1;
            }
            let results = &mut self.results_in[..j - i];
            self.engine
                .inbound_batch(&mut self.sadb, &mut bufs[i..j], results, 0);
            for ((s, buf), r) in slots[i..j]
                .iter_mut()
                .zip(bufs[i..j].iter())
                .zip(results.iter())
            {
                s.state = match r {
                    Ok(_) => {
                        let v6 = buf.data().first().is_some_and(|b| b >> 4 == 6);
                        if s.link.set_version(&mut s.l2, v6).is_err() {
                            State::Drop(LINK_FAMILY)
                        } else {
                            State::Ok
                        }
                    }
                    Err(e) => State::Drop(e.name()),
                };
            }
            i = j;
        }
    }

    fn verify_one(&mut self, s: &mut Slot, buf: &mut PacketBuf) {
        self.inbound_prepare(s, buf);
        if s.state != State::Process {
            return;
        }
        let outer = s.hdrs.hdrs[0];
        let sa_id = match (outer, s.hdrs.dst) {
            (Some(h), Some(d)) => self.sadb.lookup(h.proto, d, h.spi, s.hdrs.src),
            _ => None,
        };
        let mut v = Verdicts::default();
        if let (Some(h), Some(sa)) = (outer, sa_id.and_then(|id| self.sadb.get(id))) {
            let w = sa.replay();
            v.replay = Some(if w.size() == 0 {
                "off"
            } else {
                match w.check(h.seq) {
                    Ok(full) if full > w.top() => "new",
                    Ok(_) => "in-window",
                    Err(ReplayError::Duplicate) => "replay",
                    Err(ReplayError::TooOld) => "too-old",
                    Err(ReplayError::Exhausted) => "exhausted",
                }
            });
        }
        let refused = matches!(v.replay, Some("replay" | "too-old" | "exhausted"));
        let copy = refused.then(|| buf.data().to_vec());
        let r = self.engine.inbound(&mut self.sadb, buf, 0);
        v.icv = Some(icv_verdict(&r));
        if let (Some(pkt), Err(_)) = (copy, &r) {
            // The window refused the packet before its ICV: check the ICV with a copy of the
            // SAs that has no window (and the same sequence-number high bits).
            v.icv = Some(self.shadow_icv(&pkt));
        }
        if let Some(sa) = sa_id.and_then(|id| self.sadb.get(id)) {
            let aead = sa.encr().is_some_and(|e| e.is_aead());
            if sa.integ().is_none() && !aead {
                v.icv = Some("none");
            }
        }
        if sa_id.is_none() {
            v.icv = Some("unchecked");
        }
        s.verdicts = Some(v);
        s.state = match r {
            Ok(_) => State::Ok,
            Err(e) => State::Drop(e.name()),
        };
    }

    fn shadow_icv(&mut self, pkt: &[u8]) -> &'static str {
        let mut shadow = Sadb::new();
        for c in &self.cands {
            let mut cfg = c.cfg.clone();
            cfg.replay_window = 0;
            cfg.replay_value = self.sadb.get(c.id).map_or(0, |sa| sa.replay().top());
            if shadow.add(cfg, 0).is_err() {
                return "unchecked";
            }
        }
        let mut b = PacketBuf::from_packet(pkt);
        let r = self.engine.inbound(&mut shadow, &mut b, 0);
        icv_verdict(&r)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.report
            .summary(out, &self.sadb, &self.cands, self.opts.pass_unmatched)
    }
}

/// The ICV verdict implied by an inbound result.
fn icv_verdict(r: &Result<InboundOk, DropReason>) -> &'static str {
    use DropReason::*;
    match r {
        Ok(_) => "good",
        Err(EspBadAuth | AhBadAuth) => "bad",
        // Checks that come after a good ICV.
        Err(
            EspBadPadding | EspBadPadlen | EspBadNextHeader | InnerMismatch | EspDummy | EcnDrop
            | EspReplay | AhReplay,
        ) => "good",
        Err(_) => "unchecked",
    }
}

/// The largest value not above `top` whose low 32 bits are `low` (the full sequence number
/// of a packet sent at or before the counter reached `top`).
fn widen_below(top: u64, low: u32) -> u64 {
    let cand = (top & !0xffff_ffff) | u64::from(low);
    if cand > top {
        cand.wrapping_sub(1 << 32)
    } else {
        cand
    }
}

fn cap_err(path: &Path, e: CaptureError) -> ToolError {
    ToolError::Capture(format!("{}: {e}", path.display()))
}

fn write_slot(w: &mut OutWriter, s: &Slot, buf: &PacketBuf) -> Result<(), CaptureError> {
    match s.state {
        State::Ok => w.write_packet(&s.meta, &s.l2, buf.data()),
        // Copied unchanged: the link header (empty for non-IP frames, which stay whole in
        // the buffer or the data) and the rest.
        State::Passed(_) if s.in_buf => w.write_packet(&s.meta, &s.l2, buf.data()),
        State::Passed(_) => w.write_packet(&s.meta, &[], &s.data),
        State::Process | State::Drop(_) | State::Held => Ok(()),
    }
}

/// Proto names for the report.
pub(crate) fn proto_label(p: Proto, natt: bool) -> &'static str {
    match (p, natt) {
        (Proto::Esp, true) => "esp-udp",
        (Proto::Esp, false) => "esp",
        (Proto::Ah, _) => "ah",
    }
}
