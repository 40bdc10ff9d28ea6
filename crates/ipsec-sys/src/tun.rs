//! TUN devices: the interface through which the kernel hands ipsecd the packets that policy
//! routing sends to it, and through which ipsecd delivers decrypted packets.
//!
//! A device is created (or attached to, if it exists and is ours to open) with
//! `TUNSETIFF` on `/dev/net/tun`: layer 3 (`IFF_TUN`), no packet-information prefix
//! (`IFF_NO_PI`), optionally several queues (`IFF_MULTI_QUEUE`, one file descriptor per
//! queue, so that several threads read and write without sharing a descriptor). Each read
//! returns one IP packet; each write injects one.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

/// `IFF_TUN`: a layer-3 device.
const IFF_TUN: i16 = 0x0001;
/// `IFF_NO_PI`: no 4-byte packet-information header before each packet.
const IFF_NO_PI: i16 = 0x1000;
/// `IFF_MULTI_QUEUE`: one descriptor per queue.
const IFF_MULTI_QUEUE: i16 = 0x0100;
/// `IFF_VNET_HDR`: every packet is preceded by a `struct virtio_net_hdr` (offloads).
const IFF_VNET_HDR: i16 = 0x4000;
/// `TUNSETOFFLOAD` = `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<u32>(b'T', 208);
/// Offloads ipsecd can finish in user space: checksums and TCP segmentation (v4, v6, ECN).
const TUN_F_CSUM: usize = 0x01;
const TUN_F_TSO4: usize = 0x02;
const TUN_F_TSO6: usize = 0x04;
const TUN_F_TSO_ECN: usize = 0x08;
/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<i32>(b'T', 202);
/// Interface names are at most 15 bytes plus the terminating NUL (`IFNAMSIZ`).
pub const IFNAMSIZ: usize = 16;

/// `struct ifreq` as `TUNSETIFF` reads and writes it: the name, then the flags in the
/// union (padded to the union's 24 bytes).
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: i16,
    pad: [u8; 22],
}

/// One queue of a TUN device.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    offload: bool,
}

impl Tun {
    /// Creates or attaches to the TUN device `name` (a `%d` in it lets the kernel pick
    /// the number) and returns its first queue. `multi_queue` makes further queues possible
    /// with [`Tun::open_queue`]. Needs `CAP_NET_ADMIN`.
    pub fn open(name: &str, multi_queue: bool) -> io::Result<Self> {
        Self::open_with(name, multi_queue, false)
    }

    /// As [`open`](Self::open), with offloads: every packet read or written is preceded by
    /// a 10-byte `virtio_net_hdr`, and the kernel may hand over TCP packets of up to 64 KiB
    /// with partial checksums (checksum, TSO4, TSO6 and TSO-ECN offload), which the reader
    /// must segment and complete.
    pub fn open_offload(name: &str, multi_queue: bool) -> io::Result<Self> {
        Self::open_with(name, multi_queue, true)
    }

    fn open_with(name: &str, multi_queue: bool, offload: bool) -> io::Result<Self> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {name:?} must be 1 to 15 bytes without NUL"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; IFNAMSIZ],
            flags: IFF_TUN
                | IFF_NO_PI
                | if multi_queue { IFF_MULTI_QUEUE } else { 0 }
                | if offload { IFF_VNET_HDR } else { 0 },
            pad: [0; 22],
        };
        if let Some(dst) = req.name.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        set_iff(&file, &mut req)?;
        if offload {
            set_offload(&file, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)?;
        }
        let len = req.name.iter().position(|b| *b == 0).unwrap_or(IFNAMSIZ);
        let name = String::from_utf8_lossy(req.name.get(..len).unwrap_or_default()).into_owned();
        Ok(Self {
            file,
            name,
            offload,
        })
    }

    /// Opens another queue of this (multi-queue) device.
    pub fn open_queue(&self) -> io::Result<Self> {
        Self::open_with(&self.name, true, self.offload)
    }

    /// Whether packets carry a virtio-net header.
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// The interface name the kernel gave the device.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let mut fl = rustix::fs::fcntl_getfl(&self.file)?;
        fl.set(rustix::fs::OFlags::NONBLOCK, on);
        Ok(rustix::fs::fcntl_setfl(&self.file, fl)?)
    }

    /// Reads one packet into `buf`; returns its length. `WouldBlock` when non-blocking and
    /// nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Injects one packet.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = (&self.file).write(packet)?;
        if n != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "TUN device took part of a packet",
            ));
        }
        Ok(())
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[allow(unsafe_code)]
fn set_iff(file: &File, req: &mut IfReq) -> io::Result<()> {
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `IfReq` is `repr(C)` with the
    // kernel's layout for this request (16-byte name, then the 24-byte union whose first
    // member is the `short` flags), and the reference is valid and exclusive for the call.
    let ioctl = unsafe { rustix::ioctl::Updater::<TUNSETIFF, IfReq>::new(req) };
    // SAFETY: the descriptor is an open /dev/net/tun file and the request object above
    // matches the opcode.
    unsafe { rustix::ioctl::ioctl(file, ioctl) }?;
    Ok(())
}

#[allow(unsafe_code)]
fn set_offload(file: &File, flags: usize) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument as an integer (the offload flags), not a
    // pointer.
    let ioctl = unsafe { rustix::ioctl::IntegerSetter::<TUNSETOFFLOAD>::new_usize(flags) };
    // SAFETY: the descriptor is an open /dev/net/tun file attached to a device with
    // IFF_VNET_HDR, and the request object matches the opcode.
    unsafe { rustix::ioctl::ioctl(file, ioctl) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_touching_the_system() {
        for bad in ["", "0123456789abcdef", "a\0b"] {
            assert_eq!(
                Tun::open(bad, false).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn ifreq_has_the_kernel_layout() {
        assert_eq!(core::mem::size_of::<IfReq>(), 40);
        assert_eq!(core::mem::offset_of!(IfReq, flags), 16);
    }
}
