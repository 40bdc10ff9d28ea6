//! Reading and writing capture files on threads of their own, so that the kernel's copies to
//! and from the page cache overlap with the processing thread's work.
//!
//! [`ReadAhead`] reads a stream in large chunks on a reader thread; [`WriteBehind`] gathers the
//! output in large chunks and writes them on a writer thread. Each passes a fixed set of buffers
//! back and forth over channels (no allocation per chunk once the set exists, and at most that
//! many chunks in flight), and keeps the bytes in order. An I/O error on a thread reaches the
//! caller as that same `io::Error`, from the read, write or [`WriteBehind::finish`] that comes
//! to it; a thread that stopped without saying why is an error too, never a stream that looks
//! complete and is not. Neither thread panics, and neither end waits for the other once that
//! other has stopped.

use std::io::{self, Read, Write};
use std::mem;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::thread::{self, JoinHandle};

/// Bytes per chunk.
pub const CHUNK: usize = 1 << 20;
/// Chunks per direction.
pub const BUFFERS: usize = 4;

/// Reader thread to caller.
enum Msg {
    Data(Vec<u8>),
    Eof,
    Failed(io::Error),
}

fn stopped(what: &str) -> io::Error {
    io::Error::other(format!("the {what} thread stopped unexpectedly"))
}

fn failed_before() -> io::Error {
    io::Error::other("an earlier I/O error stopped the stream")
}

struct ReadLink {
    rx: Receiver<Msg>,
    back: Sender<Vec<u8>>,
}

/// A [`Read`] whose bytes are read ahead, in chunks, by a thread of its own.
///
/// Dropped before the end of the stream, it lets the thread go (the thread stops at its next
/// chunk) rather than wait for it: the thread may be blocked reading a pipe.
pub struct ReadAhead {
    /// `None` once the stream ended or failed.
    link: Option<ReadLink>,
    cur: Vec<u8>,
    pos: usize,
    failed: bool,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts a thread (named `name`) that reads `src` in chunks of `chunk` bytes, with up to
    /// `buffers` chunks read ahead.
    pub fn spawn<R: Read + Send + 'static>(
        name: &str,
        src: R,
        chunk: usize,
        buffers: usize,
    ) -> io::Result<Self> {
        let (chunk, buffers) = (chunk.max(1), buffers.max(1));
        // One message per buffer, plus the end: sending never blocks on a full channel.
        let (tx, rx) = mpsc::sync_channel(buffers + 1);
        let (back, back_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || read_loop(src, &tx, &back_rx, chunk, buffers))?;
        Ok(ReadAhead {
            link: Some(ReadLink { rx, back }),
            cur: Vec::new(),
            pos: 0,
            failed: false,
            thread: Some(thread),
        })
    }

    /// Moves to the next chunk; `Ok(false)` at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.failed {
            return Err(failed_before());
        }
        let Some(link) = &self.link else {
            return Ok(false);
        };
        let done = mem::take(&mut self.cur);
        self.pos = 0;
        if done.capacity() > 0 {
            // The thread may have stopped already; then the buffer is simply freed.
            let _ = link.back.send(done);
        }
        let msg = link.rx.recv();
        match msg {
            Ok(Msg::Data(b)) => {
                self.cur = b;
                Ok(true)
            }
            Ok(Msg::Eof) => {
                self.link = None;
                if let Some(t) = self.thread.take() {
                    // It sent its last message and returns.
                    let _ = t.join();
                }
                Ok(false)
            }
            Ok(Msg::Failed(e)) => {
                self.link = None;
                self.failed = true;
                Err(e)
            }
            Err(_) => {
                self.link = None;
                self.failed = true;
                Err(stopped("reader"))
            }
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let rest = self.cur.get(self.pos..).unwrap_or_default();
            if !rest.is_empty() {
                let n = out.len().min(rest.len());
                out[..n].copy_from_slice(&rest[..n]);
                self.pos += n;
                return Ok(n);
            }
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
    }
}

fn read_loop<R: Read>(
    mut src: R,
    tx: &SyncSender<Msg>,
    back: &Receiver<Vec<u8>>,
    chunk: usize,
    buffers: usize,
) {
    let mut made = 0;
    loop {
        let mut buf = if made < buffers {
            made += 1;
            vec![0u8; chunk]
        } else {
            match back.recv() {
                Ok(b) => b,
                // The caller is gone.
                Err(_) => return,
            }
        };
        // Full-length buffers come back full: this zeroes at most the tail of a short one.
        buf.resize(chunk, 0);
        let mut n = 0;
        let mut end = None;
        while n < chunk {
            match src.read(&mut buf[n..]) {
                Ok(0) => {
                    end = Some(Msg::Eof);
                    break;
                }
                Ok(k) => n = (n + k).min(chunk),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    end = Some(Msg::Failed(e));
                    break;
                }
            }
        }
        buf.truncate(n);
        // The bytes before an error or the end come first, as from a plain reader.
        if n > 0 && tx.send(Msg::Data(buf)).is_err() {
            return;
        }
        if let Some(m) = end {
            let _ = tx.send(m);
            return;
        }
    }
}

struct WriteLink {
    tx: SyncSender<Vec<u8>>,
    back: Receiver<io::Result<Vec<u8>>>,
}

/// A [`Write`] that gathers bytes in chunks and has a thread of its own write them.
///
/// [`flush`](Write::flush) returns once everything written so far has reached the destination
/// (or with the error that stopped it); [`finish`](Self::finish) flushes and ends the thread.
/// Dropped without `finish`, it hands the bytes it holds to the thread and waits for the thread
/// to write them, as a dropped `BufWriter` flushes, ignoring errors.
pub struct WriteBehind {
    /// `None` after `finish` or a failure.
    link: Option<WriteLink>,
    cur: Vec<u8>,
    free: Vec<Vec<u8>>,
    chunk: usize,
    buffers: usize,
    /// Buffers allocated so far.
    made: usize,
    /// Buffers with the thread.
    out: usize,
    failed: bool,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl WriteBehind {
    /// Starts a thread (named `name`) that writes to `dst` chunks of about `chunk` bytes, with up
    /// to `buffers` chunks allocated.
    pub fn spawn<W: Write + Send + 'static>(
        name: &str,
        dst: W,
        chunk: usize,
        buffers: usize,
    ) -> io::Result<Self> {
        let (chunk, buffers) = (chunk.max(1), buffers.max(2));
        // The one being filled stays here: at most buffers - 1 are with the thread.
        let (tx, rx) = mpsc::sync_channel(buffers);
        let (back_tx, back) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || write_loop(dst, &rx, &back_tx))?;
        Ok(WriteBehind {
            link: Some(WriteLink { tx, back }),
            cur: Vec::new(),
            free: Vec::new(),
            chunk,
            buffers,
            made: 0,
            out: 0,
            failed: false,
            thread: Some(thread),
        })
    }

    /// Stops the thread after a failure (it has stopped or stops after its current write) and
    /// returns the error.
    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = true;
        self.link = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        e
    }

    /// The error that stopped the thread: its message, or "stopped" when it sent none.
    fn thread_error(&mut self) -> io::Error {
        let mut err = None;
        if let Some(link) = &self.link {
            while let Ok(m) = link.back.recv() {
                if let Err(e) = m {
                    err = Some(e);
                    break;
                }
            }
        }
        let e = err.unwrap_or_else(|| stopped("writer"));
        self.fail(e)
    }

    /// A buffer back from the thread, waiting for one if `wait`; `Ok(None)` when none is back.
    fn take_back(&mut self, wait: bool) -> io::Result<Option<Vec<u8>>> {
        let Some(link) = &self.link else {
            return Err(failed_before());
        };
        let m = if wait {
            link.back.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            link.back.try_recv()
        };
        match m {
            Ok(Ok(b)) => {
                self.out -= 1;
                Ok(Some(b))
            }
            Ok(Err(e)) => Err(self.fail(e)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(self.fail(stopped("writer"))),
        }
    }

    /// Hands the current chunk to the thread and takes an empty buffer.
    fn send_cur(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(failed_before());
        }
        let next = if let Some(b) = self.free.pop() {
            b
        } else if let Some(b) = self.take_back(false)? {
            b
        } else if self.made < self.buffers {
            self.made += 1;
            Vec::with_capacity(self.chunk)
        } else {
            match self.take_back(true)? {
                Some(b) => b,
                None => return Err(self.fail(stopped("writer"))),
            }
        };
        let full = mem::replace(&mut self.cur, next);
        let Some(link) = &self.link else {
            return Err(failed_before());
        };
        match link.tx.send(full) {
            Ok(()) => {
                self.out += 1;
                Ok(())
            }
            Err(_) => Err(self.thread_error()),
        }
    }

    /// Writes everything, ends the thread and returns the first error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        self.link = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(stopped("writer")),
            None => Err(failed_before()),
        }
    }
}

impl Write for WriteBehind {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(failed_before());
        }
        if self.cur.len() + data.len() > self.chunk && !self.cur.is_empty() {
            self.send_cur()?;
        }
        if self.cur.capacity() == 0 {
            // The first chunk.
            self.made += 1;
            self.cur.reserve(self.chunk.max(data.len()));
        }
        self.cur.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(failed_before());
        }
        if !self.cur.is_empty() {
            self.send_cur()?;
        }
        while self.out > 0 {
            match self.take_back(true)? {
                Some(b) => self.free.push(b),
                None => return Err(self.fail(stopped("writer"))),
            }
        }
        Ok(())
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            if !self.cur.is_empty() {
                let _ = link.tx.send(mem::take(&mut self.cur));
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop<W: Write>(
    mut dst: W,
    rx: &Receiver<Vec<u8>>,
    back: &Sender<io::Result<Vec<u8>>>,
) -> io::Result<()> {
    // Ends when the caller drops its end, having sent everything.
    for mut buf in rx.iter() {
        if let Err(e) = dst.write_all(&buf) {
            let kind = e.kind();
            let msg = e.to_string();
            // The caller gets the error; the join handle a copy (the caller may be gone).
            let _ = back.send(Err(e));
            return Err(io::Error::new(kind, msg));
        }
        buf.clear();
        // The caller may be gone (dropped): the rest is still written.
        let _ = back.send(Ok(buf));
    }
    dst.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::sync::{Arc, Mutex};

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    /// Reads in pieces of `piece` bytes.
    fn read_all(r: &mut impl Read, piece: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; piece];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn read_ahead_gives_the_bytes_in_order() {
        for len in [0, 1, 6, 7, 8, 20, 1000, 100_000] {
            for (chunk, buffers) in [(7, 1), (7, 2), (64, 3), (CHUNK, BUFFERS)] {
                for piece in [1, 5, 7, 16, 4096] {
                    let data = pattern(len);
                    let mut r =
                        ReadAhead::spawn("t", io::Cursor::new(data.clone()), chunk, buffers)
                            .unwrap();
                    assert_eq!(
                        read_all(&mut r, piece).unwrap(),
                        data,
                        "{len} {chunk} {piece}"
                    );
                    // The end stays the end.
                    assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
                }
            }
        }
    }

    /// Gives `ok` bytes (in reads of 3), then fails.
    struct FailingReader {
        data: Vec<u8>,
        pos: usize,
    }

    impl Read for FailingReader {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "disk on fire"));
            }
            let n = out.len().min(3).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_the_bytes_before_it() {
        for ok in [0, 1, 10, 64, 65, 1000] {
            let data = pattern(ok);
            let src = FailingReader {
                data: data.clone(),
                pos: 0,
            };
            let mut r = ReadAhead::spawn("t", src, 64, 2).unwrap();
            let mut got = vec![0u8; ok];
            r.read_exact(&mut got).unwrap();
            assert_eq!(got, data);
            let e = r.read(&mut [0u8; 8]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert_eq!(e.to_string(), "disk on fire");
            // Then errors, not an end of stream.
            assert!(r.read(&mut [0u8; 8]).is_err());
        }
    }

    #[test]
    fn dropping_a_read_ahead_early_does_not_hang() {
        let mut r = ReadAhead::spawn("t", io::repeat(7), 16, 2).unwrap();
        let mut b = [0u8; 40];
        r.read_exact(&mut b).unwrap();
        assert_eq!(b, [7; 40]);
        drop(r);
    }

    /// A shared Vec, failing once it holds `limit` bytes.
    #[derive(Clone)]
    struct Sink {
        data: Arc<Mutex<Vec<u8>>>,
        limit: usize,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let mut d = self.data.lock().unwrap();
            if d.len() >= self.limit {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space"));
            }
            let n = b.len().min(self.limit - d.len());
            d.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink(limit: usize) -> Sink {
        Sink {
            data: Arc::new(Mutex::new(Vec::new())),
            limit,
        }
    }

    #[test]
    fn write_behind_writes_the_bytes_in_order() {
        for len in [0, 1, 7, 100, 10_000] {
            for (chunk, buffers) in [(1, 2), (7, 2), (64, 3), (CHUNK, BUFFERS)] {
                for piece in [1, 3, 7, 200] {
                    let data = pattern(len);
                    let s = sink(usize::MAX);
                    let mut w = WriteBehind::spawn("t", s.clone(), chunk, buffers).unwrap();
                    for p in data.chunks(piece) {
                        w.write_all(p).unwrap();
                    }
                    w.flush().unwrap();
                    assert_eq!(*s.data.lock().unwrap(), data);
                    assert!(w.made <= buffers, "{} buffers made", w.made);
                    w.write_all(b"end").unwrap();
                    w.finish().unwrap();
                    assert!(s.data.lock().unwrap().ends_with(b"end"));
                    assert_eq!(s.data.lock().unwrap().len(), len + 3);
                }
            }
        }
    }

    #[test]
    fn a_write_error_reaches_the_caller() {
        for limit in [0, 5, 64, 1000] {
            let s = sink(limit);
            let mut w = WriteBehind::spawn("t", s.clone(), 64, 2).unwrap();
            let data = pattern(10_000);
            let mut err = None;
            for p in data.chunks(10) {
                if let Err(e) = w.write_all(p) {
                    err = Some(e);
                    break;
                }
            }
            let e = match err {
                Some(e) => e,
                None => w.finish().unwrap_err(),
            };
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{limit}");
            assert_eq!(e.to_string(), "no space");
            assert_eq!(*s.data.lock().unwrap(), data[..limit]);
        }
        // An error found by finish.
        let s = sink(3);
        let mut w = WriteBehind::spawn("t", s, 64, 2).unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(w.finish().unwrap_err().to_string(), "no space");
    }

    #[test]
    fn dropping_a_write_behind_writes_what_it_holds() {
        let s = sink(usize::MAX);
        let mut w = WriteBehind::spawn("t", s.clone(), 64, 2).unwrap();
        let data = pattern(1000);
        w.write_all(&data).unwrap();
        w.write_all(b"x").unwrap();
        drop(w);
        assert_eq!(s.data.lock().unwrap().len(), 1001);
    }
}
