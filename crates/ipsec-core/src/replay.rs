//! Anti-replay window with Extended Sequence Numbers (RFC 4303 §3.4.3 and Appendix A).
//!
//! The window is a ring bitmap in the style of RFC 6479: bit `s mod N` records sequence number `s`,
//! where `N` is a power of two at least one 64-bit word larger than the window, so advancing the
//! window clears whole words and never shifts. Processing is split in two, as RFC 4303 requires:
//! [`ReplayWindow::check`] is the cheap test done before the ICV (and, with ESN, infers the high
//! 32 bits that go into the ICV), and [`ReplayWindow::commit`] updates the window only after the
//! ICV verified, re-checking in case a duplicate was accepted meanwhile.

/// Largest supported window, in packets (Linux's limit; Solaris stops at 255).
pub const MAX_REPLAY_WINDOW: u32 = 4096;

/// Why [`ReplayWindow::check`] or [`ReplayWindow::commit`] refused a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Sequence number already received.
    Duplicate,
    /// Sequence number left of the window (or the reserved value 0).
    TooOld,
    /// The 64-bit sequence space would wrap.
    Exhausted,
}

/// Per-SA reorder statistics (beyond Solaris: helps size the window).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Packets that advanced the right edge of the window.
    pub in_order: u64,
    /// Packets accepted behind the right edge (arrived late but inside the window).
    pub late: u64,
    /// Largest distance behind the right edge seen for an accepted packet.
    pub max_depth: u64,
}

/// The receive-side anti-replay state of one SA.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    size: u32,
    esn: bool,
    /// Highest sequence number accepted so far (0 = none).
    top: u64,
    bits: Box<[u64]>,
    stats: ReorderStats,
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("esn", &self.esn)
            .field("top", &self.top)
            .field("stats", &self.stats)
            .finish()
    }
}

impl ReplayWindow {
    /// A window of `size` packets (0 disables replay protection; values above
    /// [`MAX_REPLAY_WINDOW`] are clamped by the caller's validation, here to the maximum).
    pub fn new(size: u32, esn: bool) -> Self {
        let size = size.min(MAX_REPLAY_WINDOW);
        let words = if size == 0 {
            0
        } else {
            (size.div_ceil(64) as usize + 1).next_power_of_two()
        };
        Self {
            size,
            esn,
            top: 0,
            bits: vec![0u64; words].into_boxed_slice(),
            stats: ReorderStats::default(),
        }
    }

    /// Window size in packets (0 = replay protection off).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether extended sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Highest sequence number accepted so far.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Reorder statistics.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Sets the highest-received value (PF_KEY `replay_value`); clears the bitmap.
    pub fn set_top(&mut self, top: u64) {
        self.top = if self.esn { top } else { top & 0xffff_ffff };
        self.bits.iter_mut().for_each(|w| *w = 0);
    }

    fn nbits(&self) -> u64 {
        (self.bits.len() as u64) * 64
    }

    fn bit(&self, seq: u64) -> bool {
        let idx = seq & (self.nbits().wrapping_sub(1));
        self.bits
            .get((idx >> 6) as usize)
            .is_some_and(|w| w & (1u64 << (idx & 63)) != 0)
    }

    fn set_bit(&mut self, seq: u64) {
        let idx = seq & (self.nbits().wrapping_sub(1));
        if let Some(w) = self.bits.get_mut((idx >> 6) as usize) {
            *w |= 1u64 << (idx & 63);
        }
    }

    /// Infers the full 64-bit sequence number from the 32 bits on the wire (RFC 4303 Appendix A2.1).
    #[inline]
    pub fn infer(&self, low: u32) -> Result<u64, ReplayError> {
        if !self.esn {
            return if low == 0 {
                Err(ReplayError::TooOld)
            } else {
                Ok(u64::from(low))
            };
        }
        // The inference needs a window; with replay protection off use the RFC's minimum.
        let w = if self.size == 0 { 32 } else { self.size };
        let th = (self.top >> 32) as u32;
        let tl = self.top as u32;
        let bottom = tl.wrapping_sub(w - 1);
        let sh = if tl >= w - 1 {
            // Case A: the window lies within one 2^32 block.
            if low >= bottom {
                Some(th)
            } else {
                th.checked_add(1)
            }
        } else if low >= bottom {
            // Case B: the window spans two blocks; `low` is in the lower one.
            th.checked_sub(1)
        } else {
            Some(th)
        };
        match sh {
            Some(sh) => {
                let s = (u64::from(sh) << 32) | u64::from(low);
                if s == 0 {
                    Err(ReplayError::TooOld)
                } else {
                    Ok(s)
                }
            }
            None if low >= bottom && tl < w - 1 => Err(ReplayError::TooOld),
            None => Err(ReplayError::Exhausted),
        }
    }

    /// The check before the ICV: infers the full sequence number and rejects packets that are
    /// certainly replays or too old. Changes nothing.
    #[inline]
    pub fn check(&self, low: u32) -> Result<u64, ReplayError> {
        let s = self.infer(low)?;
        if self.size == 0 || s > self.top {
            return Ok(s);
        }
        if self.top - s >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        if self.bit(s) {
            return Err(ReplayError::Duplicate);
        }
        Ok(s)
    }

    /// Records `seq` as received; call only after the ICV verified. Fails (and changes nothing)
    /// if `seq` became a replay or fell out of the window since [`check`](Self::check).
    #[inline]
    pub fn commit(&mut self, seq: u64) -> Result<(), ReplayError> {
        if self.size == 0 {
            if seq > self.top {
                self.top = seq;
            }
            return Ok(());
        }
        if seq > self.top {
            let words = self.bits.len() as u64;
            let old_w = self.top >> 6;
            let new_w = seq >> 6;
            if new_w - old_w >= words {
                self.bits.iter_mut().for_each(|w| *w = 0);
            } else {
                let mask = words - 1;
                for w in (old_w + 1)..=new_w {
                    if let Some(word) = self.bits.get_mut((w & mask) as usize) {
                        *word = 0;
                    }
                }
            }
            self.set_bit(seq);
            self.top = seq;
            self.stats.in_order += 1;
            return Ok(());
        }
        let depth = self.top - seq;
        if depth >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        if self.bit(seq) {
            return Err(ReplayError::Duplicate);
        }
        self.set_bit(seq);
        self.stats.late += 1;
        self.stats.max_depth = self.stats.max_depth.max(depth);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, low: u32) -> Result<u64, ReplayError> {
        let s = w.check(low)?;
        w.commit(s)?;
        Ok(s)
    }

    /// The anti-replay script of FD.io VPP's template_ipsec.py, re-expressed (non-ESN, window 64).
    #[test]
    fn vpp_style_script_non_esn() {
        let mut w = ReplayWindow::new(64, false);
        for s in 1..=33u32 {
            assert_eq!(accept(&mut w, s), Ok(u64::from(s)));
        }
        for s in 1..=33u32 {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate));
        }
        // Eight copies of 35 in one burst: one accepted, seven duplicates.
        let mut ok = 0;
        for _ in 0..8 {
            if accept(&mut w, 35).is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 1);
        // Jump to 257 (case A); 200 is still inside a 64 window.
        assert_eq!(accept(&mut w, 257), Ok(257));
        assert_eq!(accept(&mut w, 200), Ok(200));
        // A forged packet at 350 passes the cheap check but, failing its ICV, is never committed:
        for _ in 0..17 {
            assert_eq!(w.check(350), Ok(350));
        }
        assert_eq!(w.top(), 257);
        assert_eq!(accept(&mut w, 234), Ok(234));
        // 17 is far out of the window.
        assert_eq!(w.check(17), Err(ReplayError::TooOld));
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
    }

    #[test]
    fn esn_wrap_inference() {
        let mut w = ReplayWindow::new(64, true);
        w.set_top(0xffff_fff0);
        assert_eq!(accept(&mut w, 0xffff_fffd), Ok(0xffff_fffd));
        // Low value after the top: next 2^32 block.
        assert_eq!(accept(&mut w, 5), Ok(0x1_0000_0005));
        // Case B: window spans the wrap; a late packet from the previous block.
        assert_eq!(accept(&mut w, 0xffff_fffe), Ok(0xffff_fffe));
        assert_eq!(w.check(0xffff_fffd), Err(ReplayError::Duplicate));
        // Far behind the window: RFC 4303 A2.1 reads it as the far future of this block (the
        // ICV, computed with those high bits, then fails); it never maps into the window.
        assert_eq!(w.check(0xffff_ff00), Ok(0x1_ffff_ff00));
        // Move far ahead and check 0x2_..._ jumps.
        assert_eq!(accept(&mut w, 0x0000_0999), Ok(0x1_0000_0999));
        w.set_top(0x1_ffff_fff0);
        assert_eq!(accept(&mut w, 0x444), Ok(0x2_0000_0444));
    }

    #[test]
    fn esn_zero_is_valid_after_wrap_but_not_at_start() {
        let mut w = ReplayWindow::new(32, true);
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        w.set_top(0xffff_ffff);
        assert_eq!(accept(&mut w, 0), Ok(0x1_0000_0000));
    }

    #[test]
    fn window_zero_accepts_duplicates() {
        let mut w = ReplayWindow::new(0, false);
        assert_eq!(accept(&mut w, 5), Ok(5));
        assert_eq!(accept(&mut w, 5), Ok(5));
        assert_eq!(accept(&mut w, 1), Ok(1));
    }

    #[test]
    fn big_window_edges() {
        for size in [32u32, 64, 100, 128, 1000, 1024, 4096] {
            let mut w = ReplayWindow::new(size, false);
            let top = 100_000u32;
            assert!(accept(&mut w, top).is_ok());
            let oldest = top - size + 1;
            assert_eq!(accept(&mut w, oldest), Ok(u64::from(oldest)), "size {size}");
            assert_eq!(w.check(oldest - 1), Err(ReplayError::TooOld), "size {size}");
            assert_eq!(w.check(oldest), Err(ReplayError::Duplicate));
            // Advance by exactly the window: the old bits must be gone, the new edge clean.
            assert!(accept(&mut w, top + size).is_ok());
            assert_eq!(w.check(top), Err(ReplayError::TooOld));
            assert_eq!(accept(&mut w, top + 1), Ok(u64::from(top + 1)));
        }
    }

    #[test]
    fn commit_rechecks() {
        let mut w = ReplayWindow::new(64, false);
        let a = w.check(10).unwrap();
        let b = w.check(10).unwrap();
        assert_eq!(w.commit(a), Ok(()));
        assert_eq!(w.commit(b), Err(ReplayError::Duplicate));
        let c = w.check(11).unwrap();
        w.commit(200).unwrap();
        assert_eq!(w.commit(c), Err(ReplayError::TooOld));
    }
}
