//! The state the daemon's threads share: the key engine (which owns the SADB) and the
//! SPD, behind one lock. The PF_KEY thread takes it per message; the data-plane thread per
//! batch of packets.

use std::sync::{Arc, Mutex, MutexGuard};

use ipsec_core::spd::Spd;
use ipsec_pfkey::engine::KeyEngine;

/// What the threads share.
#[derive(Debug)]
pub struct Shared {
    /// The PF_KEY engine and, inside it, the SADB.
    pub keys: KeyEngine,
    /// The security policy database.
    pub spd: Spd,
    /// The policy entries as the administrator wrote them (ipsecconf), describing `spd`.
    pub policy: crate::policy::Store,
    /// The last ipsecalgs table synced (file text); `None`: the built-in table.
    pub algs: Option<String>,
    /// Sockets with a per-socket policy, for the data plane's packet-to-socket lookup.
    pub persock: crate::persock::Registry,
    /// The tunable properties (`prop show|set|reset`), applied to `keys` and `spd`.
    pub props: crate::props::Props,
    /// What SIGHUP and the `reload` request re-read, and how the last reloads went.
    pub reload: crate::reload::State,
    /// The tunnels' outer endpoints (`--tunnel`), for X_INVERSE_ACQUIRE.
    pub tunnel_ends: Vec<crate::iptun::TunnelEnds>,
}

/// The shared state, as the threads hold it.
pub type Core = Arc<Mutex<Shared>>;

/// Creates the shared state.
pub fn new(keys: KeyEngine, spd: Spd) -> Core {
    Arc::new(Mutex::new(Shared {
        keys,
        spd,
        policy: crate::policy::Store::default(),
        algs: None,
        persock: crate::persock::Registry::default(),
        props: crate::props::Props::default(),
        reload: crate::reload::State::default(),
        tunnel_ends: Vec::new(),
    }))
}

/// Takes the lock. A thread that panicked while holding it cannot have left the SADB in a
/// state worse than stopping the daemon would, so a poisoned lock is taken anyway.
pub fn lock(core: &Core) -> MutexGuard<'_, Shared> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}
