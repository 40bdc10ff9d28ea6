//! The daemons' operational log on standard error (ipsecd's policy logger is separate).
//! Never given key material: callers format SA identities only.
//!
//! Each daemon calls [`init`] once with its name and verbosity; every line is prefixed with
//! that name.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

static LEVEL: AtomicU8 = AtomicU8::new(1);
static PROGRAM: OnceLock<&'static str> = OnceLock::new();

/// Names the program in every line and sets the level: 0 errors only, 1 info (default),
/// 2 debug. The name is set by the first call only.
pub fn init(program: &'static str, level: u8) {
    let _ = PROGRAM.set(program);
    set_level(level);
}

/// 0: errors only, 1: info (default), 2: debug.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

fn emit(tag: &str, args: Arguments<'_>) {
    let name = PROGRAM.get().copied().unwrap_or("ironswan");
    // Standard error is unbuffered: formatting straight into it costs one write(2) per
    // piece of the line (dozens per IKE SA in in.ikev2d); the whole line goes in one.
    let line = format!("{name}: {tag}{args}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
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
