//! Control messages (`struct cmsghdr`: length as `size_t`, level and type as `int`, data
//! aligned to `size_t`) and socket addresses, shared by the raw and UDP sockets.

use std::mem::{size_of, MaybeUninit};
use std::net::SocketAddr;

/// Bytes of a `cmsghdr`.
const HDR: usize = size_of::<usize>() + 8;

fn align(n: usize) -> usize {
    n.div_ceil(size_of::<usize>()) * size_of::<usize>()
}

/// A control-message buffer aligned for `struct cmsghdr`.
#[repr(C, align(8))]
pub(crate) struct Control(pub(crate) [u8; 256]);

impl Control {
    pub(crate) fn new() -> Self {
        Self([0; 256])
    }
}

/// Writes `msgs` (level, type, data) into `buf`; returns the bytes used
/// (`msg_controllen`), or `None` if they do not fit.
pub(crate) fn encode(buf: &mut [u8], msgs: &[(i32, i32, &[u8])]) -> Option<usize> {
    let mut at = 0;
    for (level, kind, data) in msgs {
        let len = HDR + data.len();
        let m = buf.get_mut(at..at + align(len))?;
        m.fill(0);
        m.get_mut(..size_of::<usize>())?
            .copy_from_slice(&len.to_ne_bytes());
        m.get_mut(size_of::<usize>()..size_of::<usize>() + 4)?
            .copy_from_slice(&level.to_ne_bytes());
        m.get_mut(size_of::<usize>() + 4..HDR)?
            .copy_from_slice(&kind.to_ne_bytes());
        m.get_mut(HDR..len)?.copy_from_slice(data);
        at += align(len);
    }
    Some(at)
}

/// The control messages in `c` as (level, type, data); stops at the first malformed one.
pub(crate) fn walk(mut c: &[u8]) -> impl Iterator<Item = (i32, i32, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from_ne_bytes(c.get(..size_of::<usize>())?.try_into().ok()?);
        let int = |o: usize| -> Option<i32> {
            Some(i32::from_ne_bytes(c.get(o..o + 4)?.try_into().ok()?))
        };
        let (level, kind) = (int(size_of::<usize>())?, int(size_of::<usize>() + 4)?);
        if len < HDR || len > c.len() {
            return None;
        }
        let data = c.get(HDR..len)?;
        c = c.get(align(len)..).unwrap_or_default();
        Some((level, kind, data))
    })
}

/// The first `int` of a control message's data.
pub(crate) fn int(data: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(data.get(..4)?.try_into().ok()?))
}

/// `dst` as a `sockaddr_in6` (an IPv4 address as the `sockaddr_in` at its start) and the
/// length to pass with it.
#[allow(unsafe_code)]
pub(crate) fn sockaddr_of(dst: SocketAddr) -> (libc::sockaddr_in6, usize) {
    // SAFETY: an all-zero sockaddr_in6 is valid.
    let mut sa: libc::sockaddr_in6 = unsafe { MaybeUninit::zeroed().assume_init() };
    let alen = match dst {
        SocketAddr::V6(d) => {
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = d.port().to_be();
            sa.sin6_addr.s6_addr = d.ip().octets();
            sa.sin6_scope_id = d.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
        SocketAddr::V4(d) => {
            let v4 = (&mut sa as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>();
            // SAFETY: a sockaddr_in fits in (and is aligned within) the zeroed sockaddr_in6
            // it overlays.
            unsafe {
                (*v4).sin_family = libc::AF_INET as libc::sa_family_t;
                (*v4).sin_port = d.port().to_be();
                (*v4).sin_addr.s_addr = u32::from_ne_bytes(d.ip().octets());
            }
            size_of::<libc::sockaddr_in>()
        }
    };
    (sa, alen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_messages_walk_back() {
        let mut c = Control::new();
        let n = encode(
            &mut c.0,
            &[
                (17, 103, &1400u16.to_ne_bytes()),
                (0, 1, &5i32.to_ne_bytes()),
            ],
        )
        .unwrap();
        let got: Vec<_> = walk(&c.0[..n]).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0, got[0].1, got[0].2),
            (17, 103, &1400u16.to_ne_bytes()[..])
        );
        assert_eq!((got[1].0, got[1].1, int(got[1].2)), (0, 1, Some(5)));
        assert!(encode(&mut [0u8; 8], &[(0, 1, &[1, 2, 3, 4])]).is_none());
        assert_eq!(walk(&[0xff; 40]).count(), 0);
    }
}
