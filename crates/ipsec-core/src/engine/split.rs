//! The engine split in three phases, so that a data plane can run the crypto of a batch on
//! several threads while the SADB stays behind one lock, and still put every packet on the
//! wire exactly as the one-phase path ([`Engine::outbound`], [`Engine::inbound`]) would.
//!
//! - **Outbound.** [`Engine::outbound_split`] runs the whole outbound path under the lock
//!   (sequence number taken, lifetimes charged, headers written) except the AEAD seal of an
//!   ESP SA, which it hands back as a [`CryptoJob`]. The seal is the last step that touches
//!   the bytes it covers (headers written after it do not read them), so running the job
//!   later gives the same bytes. The job is taken only where that holds: one SA, an AEAD
//!   without a separate integrity transform, and not IPv6 ESP in UDP (whose UDP checksum
//!   covers the ciphertext). Everything else is sealed in place as before.
//! - **Inbound.** [`Engine::inbound_prepare`] looks at a packet under the lock without
//!   changing anything: the ESP SA (ESP in UDP on port 4500 included), the cheap replay
//!   check and the lifetime check, and hands back the AEAD open as a [`CryptoJob`]. Once the
//!   job has run (in place, on any thread), [`Engine::inbound_opened`] runs the ordinary
//!   inbound path under the lock again with the open replaced by the job's outcome: the
//!   replay window moves, counters and lifetimes are charged, in the order the caller gives,
//!   as in the one-phase path. If the SA was keyed again or the packet took another path in
//!   between, the job's outcome does not fit and the packet is dropped
//!   (`esp_crypto_failed`): its bytes were already decrypted.
//!
//! A [`CryptoJob`] holds a shared handle on the SA's key schedule ([`SaCrypto`]), the IV,
//! the AAD and the byte range, and nothing that needs the SADB.

use super::{count, esp_aad, Engine, InboundOk, ESP_HDR, NATT_PORT, UDP_HDR};
use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::hdr::{self, IPPROTO_ESP, IPPROTO_UDP};
use crate::sa::{Proto, Sa, SaCrypto};
use crate::sadb::{SaId, Sadb};
use ipsec_crypto::{CryptoError, EspEncr};

/// AEAD work taken out of the engine: seal (outbound) or open (inbound) a byte range of one
/// packet with one SA's key schedule. Runs on `&` data, on any thread, with [`CryptoJob::run`].
#[derive(Debug)]
pub struct CryptoJob {
    key: SaCrypto,
    open: bool,
    seq: u64,
    iv: [u8; 16],
    iv_len: u8,
    aad: [u8; 12],
    aad_len: u8,
    start: usize,
    end: usize,
}

/// The outcome of a [`CryptoJob`], to hand back to the engine (inbound) or to check
/// (outbound).
#[derive(Debug)]
pub struct CryptoDone {
    key: SaCrypto,
    seq: u64,
    len: usize,
    result: Result<(), CryptoError>,
}

impl CryptoDone {
    /// Whether the seal or open succeeded (for an open: the ICV verified).
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl CryptoJob {
    #[allow(clippy::too_many_arguments)]
    fn new(
        sa: &Sa,
        open: bool,
        seq: u64,
        iv: &[u8],
        aad: &[u8],
        start: usize,
        end: usize,
    ) -> Option<Self> {
        let key = sa.crypto()?;
        let mut j = Self {
            key,
            open,
            seq,
            iv: [0; 16],
            iv_len: u8::try_from(iv.len()).ok()?,
            aad: [0; 12],
            aad_len: u8::try_from(aad.len()).ok()?,
            start,
            end,
        };
        j.iv.get_mut(..iv.len())?.copy_from_slice(iv);
        j.aad.get_mut(..aad.len())?.copy_from_slice(aad);
        Some(j)
    }

    /// Runs the seal or open in place on `buf` (the buffer the job was made for).
    pub fn run(self, buf: &mut PacketBuf) -> CryptoDone {
        let result = match (
            self.key.0.encr.as_ref(),
            buf.data_mut().get_mut(self.start..self.end),
        ) {
            (Some(e), Some(data)) => {
                let iv = &self.iv[..usize::from(self.iv_len)];
                let aad = &self.aad[..usize::from(self.aad_len)];
                if self.open {
                    e.open(iv, aad, data)
                } else {
                    e.seal(iv, aad, data)
                }
            }
            _ => Err(CryptoError::BadLength),
        };
        CryptoDone {
            key: self.key,
            seq: self.seq,
            len: self.end - self.start,
            result,
        }
    }
}

/// Where the outbound path puts the seal it defers (when `on`).
#[derive(Debug, Default)]
pub(super) struct SealSink {
    pub(super) on: bool,
    pub(super) job: Option<CryptoJob>,
}

impl SealSink {
    /// Seals `data` (at `start..end` of the packet) now, or, when deferring, records the job.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn seal(
        &mut self,
        sa: &Sa,
        e: &EspEncr,
        seq: u64,
        iv: &[u8],
        aad: &[u8],
        data: &mut [u8],
        start: usize,
    ) -> Result<(), CryptoError> {
        if self.on {
            if let Some(j) = CryptoJob::new(sa, false, seq, iv, aad, start, start + data.len()) {
                self.job = Some(j);
                return Ok(());
            }
        }
        e.seal(iv, aad, data)
    }
}

/// The ESP open at the point where the inbound path decrypts: the outcome of the job run
/// for this packet when there is one (it must be for this SA's key schedule, this sequence
/// number and this many bytes), else the open itself.
#[inline(always)]
pub(super) fn open_or_done(
    pre: &mut Option<CryptoDone>,
    sa: &Sa,
    e: &EspEncr,
    seq: u64,
    iv: &[u8],
    aad: &[u8],
    data: &mut [u8],
) -> Result<(), CryptoError> {
    match pre.take() {
        None => e.open(iv, aad, data),
        Some(d) => {
            if d.len != data.len() || !sa.crypto().is_some_and(|k| k.same(&d.key)) {
                // Already decrypted with another key schedule or for another packet
                // (reported as `esp_crypto_failed`).
                return Err(CryptoError::NotAllowedHere);
            }
            if d.seq != seq {
                // An ESN SA whose window moved in between infers other high-order bits for
                // this packet now: the AAD differs, so the one-phase open would fail the
                // ICV (a packet cannot authenticate under both). Only a genuine packet
                // more than 2^32 minus the window ahead could tell the two apart.
                return Err(CryptoError::AuthFailed);
            }
            d.result
        }
    }
}

impl Engine {
    /// Outbound with the AEAD seal deferred where that gives the same bytes (see the module
    /// documentation): `Ok(Some(job))` means the packet is complete once `job` has run on
    /// it; `Ok(None)` that it is complete now.
    pub fn outbound_split(
        &mut self,
        sadb: &mut Sadb,
        bundle: &[SaId],
        buf: &mut PacketBuf,
        now: u64,
    ) -> Result<Option<CryptoJob>, DropReason> {
        self.seal_sink.on = bundle.len() == 1;
        self.seal_sink.job = None;
        let r = self.outbound(sadb, bundle, buf, now);
        self.seal_sink.on = false;
        let job = self.seal_sink.job.take();
        r.map(|()| job)
    }

    /// The AEAD open of an inbound ESP packet (alone or in UDP on port 4500) as a job, when
    /// the packet's SA is an AEAD ESP SA that would accept its sequence number and length
    /// now; `None` otherwise (the packet then goes through [`Engine::inbound`] as it is).
    /// Changes nothing: neither the packet nor the SADB.
    pub fn inbound_prepare(&self, sadb: &Sadb, buf: &PacketBuf) -> Option<CryptoJob> {
        let all = buf.data();
        let tl = hdr::total_len(all).ok()?;
        let p = all.get(..tl)?;
        let h = hdr::parse(p).ok()?;
        if h.fragment {
            return None;
        }
        let esp = match h.proto {
            IPPROTO_ESP => h.l4_off,
            IPPROTO_UDP => {
                let u = p.get(h.l4_off..h.l4_off + UDP_HDR)?;
                let sport = u16::from_be_bytes([u[0], u[1]]);
                let dport = u16::from_be_bytes([u[2], u[3]]);
                if dport != NATT_PORT && sport != NATT_PORT {
                    return None;
                }
                h.l4_off + UDP_HDR
            }
            _ => return None,
        };
        let eh = p.get(esp..esp + ESP_HDR)?;
        let spi = u32::from_be_bytes([eh[0], eh[1], eh[2], eh[3]]);
        let seq_lo = u32::from_be_bytes([eh[4], eh[5], eh[6], eh[7]]);
        if spi == 0 {
            return None;
        }
        let id = sadb.lookup_ref(Proto::Esp, &h.dst, spi, Some(&h.src))?;
        let sa = sadb.get(id)?;
        if !sa.state().usable() || sa.integ().is_some() {
            return None;
        }
        let e = sa.encr()?;
        let (iv_len, icv) = (e.iv_len(), e.icv_len());
        if icv == 0 {
            return None;
        }
        let body = esp + ESP_HDR + iv_len;
        let ct_len = tl
            .checked_sub(body + icv)
            .filter(|l| *l >= 2 && l % e.block_len().max(1) == 0)?;
        let seq = sa.replay.check(seq_lo).ok()?;
        if sa.hard_limit_reached(ct_len) {
            return None;
        }
        let (aad, aad_len) = esp_aad(spi, seq, sa.config().esn);
        let iv = p.get(esp + ESP_HDR..body)?;
        CryptoJob::new(
            sa,
            true,
            seq,
            iv,
            &aad[..aad_len],
            body,
            body + ct_len + icv,
        )
    }

    /// [`Engine::inbound`] for a packet whose open job (from [`Engine::inbound_prepare`])
    /// has run: the same checks, window update, counters and result, with the open replaced
    /// by `done`.
    pub fn inbound_opened(
        &mut self,
        sadb: &mut Sadb,
        buf: &mut PacketBuf,
        now: u64,
        done: CryptoDone,
    ) -> Result<InboundOk, DropReason> {
        self.opened = Some(done);
        let r = self.inbound(sadb, buf, now);
        match (self.opened.take(), r) {
            // Not used: the packet took a path without that open, on decrypted bytes.
            (Some(_), Ok(ok)) => Err(count(sadb, ok.sas[0], DropReason::EspCryptoFailed)),
            (_, r) => r,
        }
    }
}
