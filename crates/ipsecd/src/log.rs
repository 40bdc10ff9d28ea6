//! The daemon's operational log on standard error (the policy logger is separate). Never
//! given key material: callers format SA identities only.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(1);

/// 0: errors only, 1: info (default), 2: debug.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

fn emit(tag: &str, args: Arguments<'_>) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "ipsecd: {tag}{args}");
}

/// Logs an error.
pub fn error(args: Arguments<'_>) {
    emit("error: ", args);
}

/// Logs an operational message.
pub fn info(args: Arguments<'_>) {
    if LEVEL.load(Ordering::Relaxed) >= 1 {
        emit("", args);
    }
}

/// Logs a debugging message.
pub fn debug(args: Arguments<'_>) {
    if LEVEL.load(Ordering::Relaxed) >= 2 {
        emit("", args);
    }
}
