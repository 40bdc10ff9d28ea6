//! The data plane's crypto workers: persistent threads that run the AEAD seal and open jobs
//! of a batch (`ipsec_core::engine::CryptoJob`) while the SADB lock is free.
//!
//! The data-plane thread keeps everything that has an order: under the lock it decides
//! policy, takes sequence numbers and does the cheap inbound checks in packet order
//! (`Engine::outbound_split`, `Engine::inbound_prepare`), then hands the batch's jobs to
//! [`CryptoPool::run`], which cuts them into contiguous chunks, one per thread (the caller
//! runs the first chunk itself), and returns each packet to its slot. Inbound results are
//! committed under the lock again in packet order and everything is emitted in the order it
//! was read, so the wire order of an SA is the order of its sequence numbers, as with one
//! thread. The threads are started once (not per batch) and stop when the pool is dropped.
//!
//! The number of threads is `--workers` at start; the control request `workers N` changes
//! it while the daemon runs ([`request`]; the data plane rebuilds its pool between batches),
//! so that a benchmark can compare settings on the same daemons, run by run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use ipsec_core::engine::{CryptoDone, CryptoJob};
use ipsec_core::PacketBuf;

/// Jobs of one chunk: the packet's index in the batch, the packet, its job.
type Chunk = Vec<(usize, PacketBuf, CryptoJob)>;
/// A chunk after its jobs ran.
type DoneChunk = Vec<(usize, PacketBuf, CryptoDone)>;

/// The number of crypto threads asked for (the data-plane thread included; 1: none).
static WANTED: AtomicUsize = AtomicUsize::new(1);

/// Asks the data plane for `n` crypto threads (the data-plane thread included), from 1 to
/// [`MAX_THREADS`].
pub fn request(n: usize) -> Result<(), String> {
    if !(1..=MAX_THREADS).contains(&n) {
        return Err(format!("workers {n}: expected 1 to {MAX_THREADS}"));
    }
    WANTED.store(n, Ordering::Relaxed);
    Ok(())
}

/// The number of crypto threads asked for.
pub fn wanted() -> usize {
    WANTED.load(Ordering::Relaxed)
}

/// The most crypto threads a data plane runs.
pub const MAX_THREADS: usize = 64;

/// Below this many jobs in a batch the caller runs them all: waking a thread costs more.
const MIN_PARALLEL: usize = 4;

struct Worker {
    tx: Option<mpsc::Sender<Chunk>>,
    thread: Option<JoinHandle<()>>,
}

/// Persistent crypto threads.
pub struct CryptoPool {
    workers: Vec<Worker>,
    done: mpsc::Receiver<DoneChunk>,
}

fn run_chunk(chunk: Chunk) -> DoneChunk {
    chunk
        .into_iter()
        .map(|(i, mut b, j)| {
            let d = j.run(&mut b);
            (i, b, d)
        })
        .collect()
}

impl CryptoPool {
    /// A pool with `threads` threads besides the caller's.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (done_tx, done) = mpsc::channel::<DoneChunk>();
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let (tx, rx) = mpsc::channel::<Chunk>();
            let done_tx = done_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("crypto{n}"))
                .spawn(move || {
                    while let Ok(chunk) = rx.recv() {
                        if done_tx.send(run_chunk(chunk)).is_err() {
                            break;
                        }
                    }
                })?;
            workers.push(Worker {
                tx: Some(tx),
                thread: Some(thread),
            });
        }
        Ok(Self { workers, done })
    }

    /// Threads taking part in a batch, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `jobs` (each with the index of its packet in `items`, ascending) on the packets
    /// `buf` finds in `items`, spread over the threads; answers each job's outcome with its
    /// index, in the same order, and how many of them ran on the workers. Every packet is
    /// back in its slot on return.
    pub fn run<T>(
        &self,
        items: &mut [T],
        jobs: Vec<(usize, CryptoJob)>,
        buf: fn(&mut T) -> Option<&mut PacketBuf>,
    ) -> (Vec<(usize, CryptoDone)>, usize) {
        let mut chunk: Chunk = Vec::with_capacity(jobs.len());
        for (i, j) in jobs {
            if let Some(b) = items.get_mut(i).and_then(buf) {
                chunk.push((i, std::mem::replace(b, PacketBuf::new(0, 0)), j));
            }
        }
        let n = chunk.len();
        let parts = if n < MIN_PARALLEL {
            1
        } else {
            self.threads().min(n)
        };
        let per = n.div_ceil(parts.max(1)).max(1);
        // The caller keeps the first chunk; the others go to the workers.
        let mut rest = chunk.split_off(per.min(n));
        let mut sent = 0;
        for w in &self.workers {
            if rest.is_empty() {
                break;
            }
            let tail = rest.split_off(per.min(rest.len()));
            let part = std::mem::replace(&mut rest, tail);
            let Some(tx) = &w.tx else {
                chunk.extend(part);
                continue;
            };
            match tx.send(part) {
                Ok(()) => sent += 1,
                // A worker that is gone (it cannot be, short of a panic): run it here.
                Err(mpsc::SendError(part)) => chunk.extend(part),
            }
        }
        chunk.append(&mut rest);
        let mut out = run_chunk(chunk);
        let here = out.len();
        for _ in 0..sent {
            match self.done.recv() {
                Ok(d) => out.extend(d),
                Err(_) => break,
            }
        }
        let elsewhere = out.len() - here;
        out.sort_unstable_by_key(|(i, _, _)| *i);
        let done = out
            .into_iter()
            .map(|(i, b, d)| {
                if let Some(slot) = items.get_mut(i).and_then(buf) {
                    *slot = b;
                }
                (i, d)
            })
            .collect();
        (done, elsewhere)
    }
}

impl Drop for CryptoPool {
    fn drop(&mut self) {
        for w in &mut self.workers {
            // Closing the channel ends the thread's loop.
            w.tx = None;
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ipsec_core::sa::{KeyMaterial, Proto, SaConfig};
    use ipsec_core::{Engine, Sadb};

    /// Jobs spread over the threads come back to their packets in order, and the packets
    /// are what the one-phase engine makes.
    #[test]
    fn pool_runs_jobs_back_into_their_slots() {
        let src = "10.0.0.1".parse().unwrap();
        let dst = "10.0.0.2".parse().unwrap();
        let mut c = SaConfig::new(Proto::Esp, 0x4444, Some(src), dst);
        c.encr_alg = Some(ipsec_crypto::EncrAlg::AesGcm16);
        c.encr_key = KeyMaterial::new(&[5u8; 20]);
        let (mut a, mut b) = (Sadb::new(), Sadb::new());
        let ia = a.add(c.clone(), 0).unwrap();
        let ib = b.add(c, 0).unwrap();
        let (mut ea, mut eb) = (Engine::new(), Engine::new());
        let pool = CryptoPool::new(2).unwrap();
        for n in [1usize, 3, 4, 7, 64] {
            let mut want = Vec::new();
            let mut items: Vec<Option<PacketBuf>> = Vec::new();
            let mut jobs = Vec::new();
            for k in 0..n {
                let mut p = vec![0x45u8, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
                p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
                p.extend((0..8 + k * 13).map(|x| x as u8));
                let tl = p.len() as u16;
                p[2..4].copy_from_slice(&tl.to_be_bytes());
                let mut pa = PacketBuf::from_packet(&p);
                ea.outbound(&mut a, &[ia], &mut pa, 1).unwrap();
                want.push(pa.data().to_vec());
                let mut pb = PacketBuf::from_packet(&p);
                let j = eb.outbound_split(&mut b, &[ib], &mut pb, 1).unwrap();
                jobs.push((k, j.unwrap()));
                items.push(Some(pb));
            }
            let (done, elsewhere) = pool.run(&mut items, jobs, Option::as_mut);
            assert_eq!(done.len(), n);
            if n >= MIN_PARALLEL {
                assert!(
                    elsewhere > 0 && elsewhere < n,
                    "{elsewhere} of {n} on the workers"
                );
            }
            assert!(done
                .iter()
                .enumerate()
                .all(|(k, (i, d))| *i == k && d.is_ok()));
            let got: Vec<Vec<u8>> = items
                .iter()
                .map(|b| b.as_ref().unwrap().data().to_vec())
                .collect();
            assert_eq!(got, want, "{n} packets");
        }
    }
}
