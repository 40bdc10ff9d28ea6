//! Randomness for SPI allocation, injected so that the engine stays deterministic in tests.

/// A source of random 32-bit numbers for SPIs. The daemon plugs in the OS RNG; tests and
/// fuzzing use [`SeededRng`].
pub trait SpiRng {
    /// The next random number.
    fn next_u32(&mut self) -> u32;
}

/// A small deterministic generator (SplitMix64). Not cryptographic: SPIs need not be
/// secret, only unpredictable enough that a blind peer cannot guess them; the daemon should
/// still seed it from the OS or supply its own [`SpiRng`].
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator with this seed.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl SpiRng for SeededRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

impl<F: FnMut() -> u32> SpiRng for F {
    fn next_u32(&mut self) -> u32 {
        self()
    }
}
