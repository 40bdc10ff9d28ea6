//! PF_KEY v2 for Ironswan (placeholder docs, replaced below).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod consts;
pub mod diag;
pub mod wire;

pub use diag::Diagnostic;
pub use wire::{Flow, Message, PfkeyError};
pub mod convert;
pub mod engine;
pub mod fuzz_support;
pub mod rng;
