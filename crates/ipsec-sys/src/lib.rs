//! Ironswan's system layer: everything below `std` goes through this crate, so that the
//! other crates stay portable, sans-IO and free of `unsafe`.
//!
//! It holds TUN devices, the local PF_KEY transport: Unix `SOCK_SEQPACKET` sockets (listener and
//! connections, one PF_KEY message per packet), the peer's credentials with the Linux form of
//! Solaris' `PRIV_SYS_IP_CONFIG` check (root or `CAP_NET_ADMIN`), `poll(2)`, signal delivery
//! through a self-pipe, OS randomness, and atomic private file writes. It is built on rustix
//! and signal-hook; the few calls they leave unsafe (`ioctl`s) live in functions marked
//! `#[allow(unsafe_code)]`, each block with a SAFETY comment. Unsafe code is denied
//! everywhere else.

mod cmsg;
pub mod file;
pub mod log;
pub mod netlink;
pub mod nflog;
pub mod raw;
pub mod seqpacket;
pub mod signal;
pub mod sockinfo;
pub mod tun;
pub mod udp;

pub use rustix::event::{PollFd, PollFlags};

use std::io;
use std::time::Duration;

/// Waits until one of `fds` is ready or `timeout` passes (`None`: forever). Returns how many
/// descriptors have events. `EINTR` is reported as zero ready descriptors.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    match rustix::event::poll(fds, ts.as_ref()) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = buf.get_mut(done..).unwrap_or_default();
        match rustix::rand::getrandom(rest, rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// 64 random bits from the kernel.
pub fn random_u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    random_bytes(&mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// The effective user id of this process.
pub fn geteuid() -> u32 {
    rustix::process::geteuid().as_raw()
}
