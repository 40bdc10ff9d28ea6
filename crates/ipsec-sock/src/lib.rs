//! `libipsec_sock.so`: the Solaris per-socket policy options `IP_SEC_OPT` and
//! `IPV6_SEC_OPT` for unmodified C programs, loaded with `LD_PRELOAD` and declared in
//! `include/ipsec_sock.h`.
//!
//! The library exports `setsockopt` and `getsockopt`, and, to follow a policied socket's
//! life, `bind`, `connect`, `listen`, `accept`, `accept4`, `sendto`, `sendmsg` and `close`.
//! Each first hands the call to the next definition (libc's, found once with
//! `dlsym(RTLD_NEXT)`) unless it concerns a socket with a policy:
//!
//! * `setsockopt`/`getsockopt` at level `IPPROTO_IP`/`IPPROTO_IPV6`, option 0x22, with an
//!   option of exactly `sizeof (ipsec_req_t)` bytes go to ipsecd ([`ipsec_sockopt::Tracked`]);
//!   every other option goes straight to libc.
//! * For a socket with a policy: `bind` and `connect` report its addresses (an unbound
//!   socket is bound to an ephemeral port before `connect` or a send, so its routing rule
//!   exists before its first packet); `accept` gives the new socket the listener's request;
//!   `close` drops its connection to ipsecd, which forgets the policy.
//!
//! Sockets without a policy cost one relaxed atomic load per intercepted call (`COUNT`).
//!
//! # Why this crate has `unsafe` (the exception to "only ipsec-sys")
//!
//! The exported functions must be `#[no_mangle] extern "C"` items of the shared object
//! itself, and they receive raw pointers and descriptors from C. Putting them in ipsec-sys
//! would export them from every binary linking ipsec-sys (ipsecd would replace its own
//! libc `close`). The unsafe blocks are limited to: reading/writing the caller's option
//! buffer, borrowing the caller's descriptor for the duration of the call, calling the next
//! definition through its `dlsym` address, and setting `errno`. Everything else is safe code
//! in ipsec-sockopt and ipsec-sys.
//!
//! Not followed: `dup`/`dup2` copies of a policied socket (the policy ends when the original
//! descriptor number is closed, even if a copy stays open), `send()` on an unbound socket
//! (impossible: it must be connected, which binds it), and `fork` (the child shares the
//! parent's connections, so the policy lives until both have closed them).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use ipsec_sockopt::{Tracked, IPSEC_REQ_LEN, IPV6_SEC_OPT, IP_SEC_OPT};
use libc::{c_int, c_void, msghdr, size_t, sockaddr, socklen_t, ssize_t};

/// Sockets with a policy, by descriptor.
static TRACKED: Mutex<BTreeMap<c_int, Tracked>> = Mutex::new(BTreeMap::new());
/// How many: the fast path for every other socket.
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn table() -> MutexGuard<'static, BTreeMap<c_int, Tracked>> {
    TRACKED.lock().unwrap_or_else(|e| e.into_inner())
}

fn any_tracked() -> bool {
    COUNT.load(Ordering::Relaxed) != 0
}

fn is_sec_opt(level: c_int, name: c_int) -> bool {
    (level == libc::IPPROTO_IP && name == IP_SEC_OPT)
        || (level == libc::IPPROTO_IPV6 && name == IPV6_SEC_OPT)
}

/// The caller's errno.
fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[allow(unsafe_code)]
fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for writes
    // for the thread's lifetime.
    unsafe { *libc::__errno_location() = e }
}

/// Runs `f` on the tracked socket `fd`, if it is one, keeping the caller's errno.
fn with_tracked(fd: BorrowedFd<'_>, f: impl FnOnce(&mut Tracked, BorrowedFd<'_>)) {
    if !any_tracked() {
        return;
    }
    let saved = errno();
    let mut t = table();
    if let Some(s) = t.get_mut(&raw(fd)) {
        f(s, fd);
    }
    drop(t);
    set_errno(saved);
}

fn raw(fd: BorrowedFd<'_>) -> c_int {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Adds a tracked socket. A [`Tracked`] is only ever dropped with the table unlocked: its
/// connection's descriptor is closed through libc's `close`, which is ours.
fn insert(fd: c_int, s: Tracked) {
    let old = {
        let mut t = table();
        let old = t.insert(fd, s);
        COUNT.store(t.len(), Ordering::Relaxed);
        old
    };
    drop(old);
}

/// `setsockopt(IP_SEC_OPT)`.
fn set_policy(fd: BorrowedFd<'_>, req: &[u8; IPSEC_REQ_LEN]) -> Result<(), c_int> {
    let err = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EPROTONOSUPPORT);
    {
        let mut t = table();
        if let Some(s) = t.get_mut(&raw(fd)) {
            return s.set(fd, req).map_err(err);
        }
    }
    let mut s = Tracked::open(fd).map_err(err)?;
    s.set(fd, req).map_err(err)?;
    insert(raw(fd), s);
    Ok(())
}

/// `getsockopt(IP_SEC_OPT)`: zeros for a socket without a policy.
fn get_policy(fd: BorrowedFd<'_>) -> Result<[u8; IPSEC_REQ_LEN], c_int> {
    let mut t = table();
    match t.get_mut(&raw(fd)) {
        Some(s) => s
            .get(fd)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EPROTONOSUPPORT)),
        None => Ok([0; IPSEC_REQ_LEN]),
    }
}

/// A new socket from `accept` on `listener` inherits the listener's request.
fn accepted(listener: BorrowedFd<'_>, fd: BorrowedFd<'_>) {
    let saved = errno();
    let req = table().get(&raw(listener)).and_then(Tracked::request);
    if let Some(req) = req {
        if let Ok(mut s) = Tracked::open(fd) {
            if s.set(fd, &req).is_ok() {
                insert(raw(fd), s);
            }
        }
    }
    set_errno(saved);
}

fn forget(fd: c_int) {
    if !any_tracked() {
        return;
    }
    let saved = errno();
    let gone = {
        let mut t = table();
        let gone = t.remove(&fd);
        COUNT.store(t.len(), Ordering::Relaxed);
        gone
    };
    drop(gone);
    set_errno(saved);
}

/// A libc function's address, looked up once with `dlsym(RTLD_NEXT)`.
struct Next {
    name: &'static CStr,
    addr: AtomicUsize,
}

impl Next {
    const fn new(name: &'static CStr) -> Self {
        Self {
            name,
            addr: AtomicUsize::new(0),
        }
    }

    #[allow(unsafe_code)]
    fn get(&self) -> usize {
        let a = self.addr.load(Ordering::Relaxed);
        if a != 0 {
            return a;
        }
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only reads the loader's
        // tables; it may return null, which the callers handle.
        let a = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) } as usize;
        self.addr.store(a, Ordering::Relaxed);
        a
    }
}

static NEXT_SETSOCKOPT: Next = Next::new(c"setsockopt");
static NEXT_GETSOCKOPT: Next = Next::new(c"getsockopt");
static NEXT_BIND: Next = Next::new(c"bind");
static NEXT_CONNECT: Next = Next::new(c"connect");
static NEXT_LISTEN: Next = Next::new(c"listen");
static NEXT_ACCEPT: Next = Next::new(c"accept");
static NEXT_ACCEPT4: Next = Next::new(c"accept4");
static NEXT_CLOSE: Next = Next::new(c"close");
static NEXT_SENDTO: Next = Next::new(c"sendto");
static NEXT_SENDMSG: Next = Next::new(c"sendmsg");

/// Calls the next definition of a function with the signature `$ty`, or fails with
/// `ENOSYS` when there is none.
macro_rules! call_next {
    ($next:expr, $ty:ty, $fail:expr, $($arg:expr),*) => {{
        let a = $next.get();
        if a == 0 {
            set_errno(libc::ENOSYS);
            $fail
        } else {
            #[allow(unsafe_code)]
            // SAFETY: `a` is the address dlsym returned for this function's name in the
            // next object (libc), whose C signature is `$ty`; the arguments are the
            // caller's, passed on unchanged.
            unsafe {
                let f: $ty = std::mem::transmute::<usize, $ty>(a);
                f($($arg),*)
            }
        }
    }};
}

/// Borrows the caller's descriptor for the duration of the call.
#[allow(unsafe_code)]
fn borrow<'a>(fd: c_int) -> Option<BorrowedFd<'a>> {
    if fd < 0 {
        return None;
    }
    // SAFETY: the C caller passed `fd` to a socket call and keeps it open for the call's
    // duration; the borrow does not outlive the exported function that made it (every
    // caller uses it only before returning).
    Some(unsafe { BorrowedFd::borrow_raw(fd) })
}

type SetsockoptFn = unsafe extern "C" fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
type GetsockoptFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int;
type AddrFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type ListenFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type AcceptFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
type Accept4Fn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type SendtoFn = unsafe extern "C" fn(
    c_int,
    *const c_void,
    size_t,
    c_int,
    *const sockaddr,
    socklen_t,
) -> ssize_t;
type SendmsgFn = unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t;

/// `setsockopt(2)`, with `IP_SEC_OPT` / `IPV6_SEC_OPT`.
///
/// # Safety
/// As for libc's `setsockopt`: `val` points to `len` readable bytes.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    if is_sec_opt(level, name) && len as usize == IPSEC_REQ_LEN {
        let Some(b) = borrow(fd) else {
            set_errno(libc::EBADF);
            return -1;
        };
        if val.is_null() {
            set_errno(libc::EFAULT);
            return -1;
        }
        // SAFETY: the caller promises `len` (= 16) readable bytes at `val`; read unaligned
        // as bytes.
        let req = unsafe { std::ptr::read_unaligned(val.cast::<[u8; IPSEC_REQ_LEN]>()) };
        return match set_policy(b, &req) {
            Ok(()) => 0,
            Err(e) => {
                set_errno(e);
                -1
            }
        };
    }
    call_next!(NEXT_SETSOCKOPT, SetsockoptFn, -1, fd, level, name, val, len)
}

/// `getsockopt(2)`, with `IP_SEC_OPT` / `IPV6_SEC_OPT`.
///
/// # Safety
/// As for libc's `getsockopt`: `len` points to the size of the writable buffer `val`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    let room = if len.is_null() {
        0
    } else {
        // SAFETY: `len`, not null, points to the caller's socklen_t (getsockopt's contract).
        let n = unsafe { *len };
        n as usize
    };
    if is_sec_opt(level, name) && room >= IPSEC_REQ_LEN && !val.is_null() {
        let Some(b) = borrow(fd) else {
            set_errno(libc::EBADF);
            return -1;
        };
        return match get_policy(b) {
            Ok(req) => {
                // SAFETY: the caller's buffer holds at least `room` >= 16 writable bytes,
                // and `len` is valid (checked non-null above).
                unsafe {
                    std::ptr::write_unaligned(val.cast::<[u8; IPSEC_REQ_LEN]>(), req);
                    *len = IPSEC_REQ_LEN as socklen_t;
                }
                0
            }
            Err(e) => {
                set_errno(e);
                -1
            }
        };
    }
    call_next!(NEXT_GETSOCKOPT, GetsockoptFn, -1, fd, level, name, val, len)
}

/// `bind(2)`; a policied socket's address is reported to ipsecd.
///
/// # Safety
/// As for libc's `bind`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let r = call_next!(NEXT_BIND, AddrFn, -1, fd, addr, len);
    if r == 0 {
        if let Some(b) = borrow(fd) {
            with_tracked(b, |t, b| {
                let _ = t.sync(b);
            });
        }
    }
    r
}

/// `connect(2)`; a policied socket gets a port (and its routing rule) first, and its
/// policy latches once connected.
///
/// # Safety
/// As for libc's `connect`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let b = borrow(fd);
    if let Some(b) = b {
        with_tracked(b, |t, b| {
            let _ = t.before_send(b);
        });
    }
    let r = call_next!(NEXT_CONNECT, AddrFn, -1, fd, addr, len);
    if r == 0 {
        if let Some(b) = b {
            with_tracked(b, |t, b| {
                let _ = t.sync(b);
            });
        }
    }
    r
}

/// `listen(2)`.
///
/// # Safety
/// As for libc's `listen`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    let r = call_next!(NEXT_LISTEN, ListenFn, -1, fd, backlog);
    if r == 0 {
        if let Some(b) = borrow(fd) {
            with_tracked(b, |t, b| {
                let _ = t.sync(b);
            });
        }
    }
    r
}

fn after_accept(listener: c_int, fd: c_int) {
    if fd >= 0 && any_tracked() {
        if let (Some(l), Some(n)) = (borrow(listener), borrow(fd)) {
            accepted(l, n);
        }
    }
}

/// `accept(2)`: the new socket inherits the listener's policy.
///
/// # Safety
/// As for libc's `accept`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    let r = call_next!(NEXT_ACCEPT, AcceptFn, -1, fd, addr, len);
    after_accept(fd, r);
    r
}

/// `accept4(2)`: the new socket inherits the listener's policy.
///
/// # Safety
/// As for libc's `accept4`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let r = call_next!(NEXT_ACCEPT4, Accept4Fn, -1, fd, addr, len, flags);
    after_accept(fd, r);
    r
}

/// `close(2)`: a policied socket's policy is forgotten.
///
/// # Safety
/// As for libc's `close`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    forget(fd);
    call_next!(NEXT_CLOSE, CloseFn, -1, fd)
}

fn before_send(fd: c_int) {
    if any_tracked() {
        if let Some(b) = borrow(fd) {
            with_tracked(b, |t, b| {
                let _ = t.before_send(b);
            });
        }
    }
}

/// `sendto(2)`: an unbound policied socket gets its port (and routing rule) first.
///
/// # Safety
/// As for libc's `sendto`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    before_send(fd);
    call_next!(NEXT_SENDTO, SendtoFn, -1, fd, buf, n, flags, addr, len)
}

/// `sendmsg(2)`: an unbound policied socket gets its port (and routing rule) first.
///
/// # Safety
/// As for libc's `sendmsg`.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    before_send(fd);
    call_next!(NEXT_SENDMSG, SendmsgFn, -1, fd, msg, flags)
}
