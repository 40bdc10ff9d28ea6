//! PF_KEY v2 for Ironswan: the wire codec (RFC 2367 plus every Solaris `SADB_X_*` message
//! and extension) and a sans-IO key engine that turns PF_KEY requests into operations on the
//! `ipsec-core` SADB, with the replies and broadcasts Solaris' keysock would send.
//!
//! ```text
//!   ipseckey / in.ikev2d ──bytes──► [ipsecd: Unix SOCK_SEQPACKET server, peer credentials]
//!                                          │ handle(now, ClientId, &bytes)
//!                                          ▼
//!   wire::Message::parse ─► SA-type gate ─► Message::validate(ToKernel) ─► engine operation
//!                                          │                                 │
//!                              error reply (errno + diagnostic)      ipsec_core::Sadb
//!                                          ▼                                 │
//!   poll_output() ─► Output { dest, to: [ClientId], bytes } ◄────────────────┘
//!   data plane ─► acquire(now, AcquireRequest) ─► ACQUIRE to registered key managers
//!   handle_timeout(now) ─► larval timeout, acquire timeout, soft/hard/idle EXPIRE
//! ```
//!
//! * [`wire`]: zero-copy header view and extension walker, owned [`Message`] with `parse`,
//!   `validate` and `emit`; [`consts`] holds every number of `net/pfkeyv2.h`; [`diag`] the
//!   `SADB_X_DIAGNOSTIC_*` codes.
//! * [`convert`]: `SaConfig` ⇔ extensions (what `ipseckey add` sends, what GET returns).
//! * [`engine`]: [`KeyEngine`], the SADB lifecycle: GETSPI/larval SAs, UPDATE, ADD,
//!   DELETE, GET, FLUSH, DUMP, pairs, REGISTER, ACQUIRE, EXPIRE, X_PROMISC.
//! * [`fuzz_support`]: the `pfkey_decode` fuzz body and the seed messages.
//!
//! This crate does no I/O, reads no clock and no OS randomness (time is an input; SPIs come
//! from an injected [`rng::SpiRng`]). It does not check privileges (the daemon does, from
//! the peer's credentials), does not hold the SPD (X_INVERSE_ACQUIRE asks an injected
//! [`engine::PolicyQuery`]) and does not persist anything.
//!
//! # Wire decisions
//!
//! Linux has no `PF_KEY` socket family for user space, so `ipsecd` serves PF_KEY on a local
//! `SOCK_SEQPACKET` Unix socket; every peer is a program on the same machine. Hence:
//!
//! * **Byte order**: every integer field is in *host* byte order, exactly as the C structures
//!   of `net/pfkeyv2.h` are in memory, except those C keeps in network order: SPIs
//!   (`sadb_sa_spi`, `sadb_x_pair_spi`, and — as Solaris does — `sadb_spirange_min/max`),
//!   ports, the IPv6 flow label and the addresses themselves.
//! * **Lengths** are in 8-byte words; every extension is a whole number of words.
//! * **sockaddrs** follow the Linux layouts with the Linux address families, padded with
//!   zeros to 8 bytes: `sockaddr_in` (family `AF_INET` = 2 as a 16-bit host-order value,
//!   port, address, 8 zero bytes: 16 bytes, address extension 3 words) and `sockaddr_in6`
//!   (family `AF_INET6` = 10, port, flow label, address, scope id: 28 bytes, padded to 32,
//!   address extension 5 words). These are also the illumos layouts byte for byte except
//!   the `AF_INET6` value (26 on Solaris) and illumos' `__sin6_src_id`, which falls in our
//!   zero padding. Only these two exact lengths are accepted, and every padding byte must
//!   be zero.
//! * **Strictness**: every reserved field and padding byte must be zero on input (Solaris
//!   is laxer); the parser also refuses zero-bit and all-zero keys, unterminated identity
//!   strings, and inverted SPI ranges, as Solaris' keysock does. Everything the engine emits
//!   has those bytes zeroed and re-parses to the same value.
//! * **errno** values are Linux's (`EINVAL` 22, `EEXIST` 17, `ESRCH` 3, `ENOENT` 2,
//!   `EBUSY` 16, `EMSGSIZE` 90, `EPROTOTYPE` 91, `EOPNOTSUPP` 95). Diagnostics are
//!   Solaris' numbers verbatim.
//! * Where Solaris reused reserved fields, so do we: `sadb_alg` bytes 6–7 are
//!   `increment`/`saltbits`, `sadb_x_algdesc` byte 3 is `saltbits`, `sadb_comb` byte 12 is
//!   `encrypt_saltbits` (2024 pf_key(4P)), `sadb_x_kmc` carries the 64-bit cookie.
//!
//! # Extensions beyond Solaris
//!
//! One extension, numbered far above the Solaris range (1..=27; illumos' next additions
//! will land just above it) so the two cannot collide:
//!
//! | number | name | contents |
//! |---|---|---|
//! | 240 | `SADB_X_EXT_IRONSWAN_SA` | replay window up to 4096 (replaces the 8-bit `sadb_sa_replay`), flags: ESN (0x1), allow legacy algorithms (0x2), no DSCP copy (0x4), no ESP padding check (0x8), unique binding (0x10) with its source port, destination port and protocol |
//!
//! Senders include it only when something in it differs from the Solaris defaults (window
//! ≤ 255, no ESN, ...). With ESN, `sadb_x_replay_ctr.replay64` carries the 64-bit counter.
//! Algorithm numbers beyond Solaris' (ChaCha20-Poly1305 240, AES-CTR 13, Camellia 22,
//! AES-XCBC 240, AES-CMAC 241) are those of `ipsec-crypto`'s table.
//!
//! # Not supported (refused with a diagnostic)
//!
//! Sensitivity labels (`SENSITIVITY`, `X_OUTER_SENS` in ADD/UPDATE: `EOPNOTSUPP`,
//! `BAD_LABEL`), identity types GN and ADDR_RANGE (`EOPNOTSUPP`), EXPIRE sent by a client
//! (`EOPNOTSUPP`), the Solaris cluster states ACTIVE_ELSEWHERE/IDLE/ACTIVE, injected IVs in
//! `sadb_key_reserved`, TCP-signature SAs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod consts;
pub mod convert;
pub mod diag;
pub mod engine;
pub mod fuzz_support;
pub mod rng;
pub mod wire;

pub use diag::Diagnostic;
pub use engine::{
    AcquireNeed, AcquireOutcome, AcquireRequest, ClientId, Destination, EngineConfig, EngineEvent,
    KeyEngine, Output,
};
pub use wire::{Flow, Message, PfkeyError};
