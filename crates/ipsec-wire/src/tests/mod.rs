//! Cross-module tests: hand-built captures, truncation sweeps, proptest round trips and the
//! fuzz regression replay. Per-module unit tests live next to the code.

mod packets;
mod regressions;
mod roundtrip;
pub(crate) mod samples;
mod truncation;
