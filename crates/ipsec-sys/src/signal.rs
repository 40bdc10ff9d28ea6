//! Signals delivered to a poll loop: each watched signal sets its flag and writes a byte
//! to a self-pipe whose read end the loop polls.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};

/// The signals a daemon watches, readable as a file descriptor.
#[derive(Debug)]
pub struct SignalPipe {
    read: UnixStream,
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl SignalPipe {
    /// Starts catching `signals`.
    pub fn new(signals: &[i32]) -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut flags = Vec::new();
        for &s in signals {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(s, Arc::clone(&flag))?;
            signal_hook::low_level::pipe::register(s, write.try_clone()?)?;
            flags.push((s, flag));
        }
        Ok(Self { read, flags })
    }

    /// The signals caught since the last call (each at most once), after emptying the pipe.
    pub fn take(&self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
    }
}

impl AsFd for SignalPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}
