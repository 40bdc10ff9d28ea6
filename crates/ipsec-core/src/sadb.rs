//! The Security Association Database: SAs identified by <AH|ESP, destination, SPI> (and the
//! source where it disambiguates), with lifetime aging driven by a `now` input and the resulting
//! soft/hard/idle expiry events.
//!
//! # Aging without walking every SA
//!
//! [`Sadb::age_due`] (and [`Sadb::age`] on top of it) checks only the SAs that can have
//! reached a lifetime limit since they were last checked, with the same result as checking
//! every SA ([`Sa::age`] on the others would return `None`):
//!
//! - SAs handed out mutably ([`Sadb::get_mut`]: the data path counting bytes and packets,
//!   UPDATE changing lifetimes or state) or added since the last check ("touched");
//! - SAs whose next time limit has come: after each check the SADB files the SA under the
//!   earliest time at which a hard or soft `addtime`/`usetime` or the idle limit can pass
//!   (a soft limit already passed has fired, since soft fires once), in a timer map from
//!   time to slots. Entries are removed lazily: a slot's `due` says which entry is current.
//!
//! So a tick costs O(touched + due), not O(SAs); byte and packet limits can only be crossed
//! by touching the SA.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use crate::drop::DropCounters;
use crate::sa::{Direction, Expiry, Proto, Sa, SaConfig, SaError, SaState};

/// Slots of the SPI cache (a power of two).
const SPI_CACHE: usize = 1024;

/// Handle of an SA in a [`Sadb`]. Stale handles (of deleted SAs) are detected. Handles
/// are ordered (by slot, then generation) so that they can key ordered indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaId {
    index: u32,
    generation: u32,
}

/// The lookup key of an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaKey {
    /// AH or ESP.
    pub proto: Proto,
    /// Destination address.
    pub dst: IpAddr,
    /// SPI.
    pub spi: u32,
}

/// What happened to an SA, for PF_KEY EXPIRE broadcasts and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaEventKind {
    /// A lifetime limit passed.
    Expired(Expiry),
    /// The outbound sequence space ran out (the SA is dead; replace it).
    SeqExhausted,
}

/// An SA lifecycle event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaEvent {
    /// Which SA.
    pub key: SaKey,
    /// Its source address.
    pub src: Option<IpAddr>,
    /// What happened.
    pub kind: SaEventKind,
    /// Packets processed so far.
    pub packets: u64,
    /// Bytes processed so far.
    pub bytes: u64,
    /// When the SA was added.
    pub add_time: u64,
    /// When it was first used.
    pub first_use: Option<u64>,
    /// True when the SA was removed from the database as a consequence.
    pub deleted: bool,
}

impl std::hash::Hash for SaKey {
    /// One word per key: the SPI, the protocol and the low bits of the destination. Equal keys
    /// hash equally; the full key is still compared on lookup.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let addr_bits = match self.dst {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let x = u128::from(a);
                (x as u64) ^ ((x >> 64) as u64)
            }
        };
        let proto = match self.proto {
            Proto::Ah => 1u64 << 63,
            Proto::Esp => 0,
        };
        state.write_u64((u64::from(self.spi) | proto) ^ addr_bits.rotate_left(32));
    }
}

/// A small multiply-rotate hasher for the SA index. Keys are not attacker-chosen in a way that
/// matters here (an attacker can only pick the SPI, and lookups of unknown SPIs cost one probe
/// chain), and SipHash costs more than the rest of the lookup on the packet path.
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

struct Slot {
    generation: u32,
    /// Listed in `Sadb::touched` (the SA may have changed since its lifetimes were checked).
    touched: bool,
    /// The time of this slot's current entry in `Sadb::timers` (`u64::MAX`: none).
    due: u64,
    sa: Option<Sa>,
}

/// The SADB.
#[derive(Default)]
pub struct Sadb {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_key: FastMap<SaKey, Vec<SaId>>,
    /// Direct-mapped SPI cache in front of `by_key` for keys held by exactly one SA; verified on
    /// every hit, maintained on insert and remove.
    spi_cache: Vec<Option<SaId>>,
    events: Vec<SaEvent>,
    /// Every drop, per reason: those attributed to an SA (also counted in its own
    /// [`SaStats::drops`](crate::SaStats)) and those that could not be (no SA found,
    /// malformed packets, ...).
    pub global_drops: DropCounters,
    /// Number of SAs.
    live: usize,
    /// Slots whose `touched` is set, each once.
    touched: Vec<u32>,
    /// When lifetimes may next pass: time -> slots (stale entries are skipped; see `Slot::due`).
    timers: BTreeMap<u64, Vec<u32>>,
}

impl core::fmt::Debug for Sadb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(_, sa)| sa))
            .finish()
    }
}

impl Sadb {
    /// An empty SADB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of SAs.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn key_of(sa: &Sa) -> SaKey {
        let c = sa.config();
        SaKey {
            proto: c.proto,
            dst: c.dst,
            spi: c.spi,
        }
    }

    /// Adds an SA built from `cfg` at time `now`. Refuses duplicates of <proto, dst, SPI, src>.
    pub fn add(&mut self, cfg: SaConfig, now: u64) -> Result<SaId, SaError> {
        let key = SaKey {
            proto: cfg.proto,
            dst: cfg.dst,
            spi: cfg.spi,
        };
        if let Some(ids) = self.by_key.get(&key) {
            if ids
                .iter()
                .any(|id| self.get(*id).is_some_and(|sa| sa.config().src == cfg.src))
            {
                return Err(SaError::Exists);
            }
        }
        let sa = Sa::new(cfg, now)?;
        Ok(self.insert(key, sa))
    }

    fn cache_slot(spi: u32) -> usize {
        ((spi ^ (spi >> 11) ^ (spi >> 22)) as usize) & (SPI_CACHE - 1)
    }

    /// Points the cache slot of `key` at its SA when exactly one SA holds the key, and clears
    /// it when the slot refers to this key otherwise.
    fn refresh_cache(&mut self, key: SaKey) {
        if self.spi_cache.len() != SPI_CACHE {
            self.spi_cache = vec![None; SPI_CACHE];
        }
        let slot = Self::cache_slot(key.spi);
        let ids = self.by_key.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let value = match ids {
            [one] => Some(*one),
            _ => None,
        };
        let points_here = self.spi_cache[slot]
            .and_then(|id| self.get(id))
            .is_none_or(|sa| Self::key_of(sa) == key);
        if value.is_some() || points_here {
            self.spi_cache[slot] = value;
        }
    }

    fn insert(&mut self, key: SaKey, sa: Sa) -> SaId {
        let id = if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.due = u64::MAX;
            slot.sa = Some(sa);
            if !slot.touched {
                slot.touched = true;
                self.touched.push(index);
            }
            SaId {
                index,
                generation: slot.generation,
            }
        } else {
            let index = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 0,
                touched: true,
                due: u64::MAX,
                sa: Some(sa),
            });
            self.touched.push(index);
            SaId {
                index,
                generation: 0,
            }
        };
        self.live += 1;
        self.by_key.entry(key).or_default().push(id);
        self.refresh_cache(key);
        id
    }

    /// The SA behind a handle.
    #[inline]
    pub fn get(&self, id: SaId) -> Option<&Sa> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.sa.as_ref())
    }

    /// Mutable access to the SA behind a handle. The SA's lifetimes are checked at the next
    /// [`age_due`](Self::age_due) (its counters, lifetimes or state may change through this).
    #[inline]
    pub fn get_mut(&mut self, id: SaId) -> Option<&mut Sa> {
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)?;
        let sa = slot.sa.as_mut()?;
        if !slot.touched {
            slot.touched = true;
            self.touched.push(id.index);
        }
        Some(sa)
    }

    /// Inbound lookup by <proto, dst, SPI>; when several SAs share that key, the one whose source
    /// equals `src` wins over one with an unspecified source.
    #[inline]
    pub fn lookup(&self, proto: Proto, dst: IpAddr, spi: u32, src: Option<IpAddr>) -> Option<SaId> {
        self.lookup_ref(proto, &dst, spi, src.as_ref())
    }

    /// [`lookup`](Self::lookup) with the addresses by reference (the packet path: no copies of
    /// the 17-byte address values).
    #[inline]
    pub(crate) fn lookup_ref(
        &self,
        proto: Proto,
        dst: &IpAddr,
        spi: u32,
        src: Option<&IpAddr>,
    ) -> Option<SaId> {
        if let Some(id) = self.spi_cache.get(Self::cache_slot(spi)).copied().flatten() {
            if let Some(sa) = self.get(id) {
                let c = sa.config();
                if c.spi == spi && c.proto == proto && c.dst == *dst {
                    // The only SA with this key: it matches unless its source is specific and
                    // differs from the packet's.
                    return match (c.src, src) {
                        (Some(a), Some(b)) if a != *b && !a.is_unspecified() => None,
                        _ => Some(id),
                    };
                }
            }
        }
        let ids = self.by_key.get(&SaKey {
            proto,
            dst: *dst,
            spi,
        })?;
        let mut wildcard = None;
        for id in ids {
            let Some(sa) = self.get(*id) else { continue };
            match (sa.config().src, src) {
                (Some(a), Some(b)) if a == *b => return Some(*id),
                (None, _) => wildcard = Some(*id),
                (Some(a), _) if a.is_unspecified() => wildcard = Some(*id),
                _ => {}
            }
        }
        wildcard.or_else(|| {
            if src.is_none() {
                ids.first().copied()
            } else {
                None
            }
        })
    }

    /// Finds a usable outbound SA for `src` -> `dst`: mature beats dying, newest beats oldest.
    pub fn find_outbound(&self, proto: Proto, src: IpAddr, dst: IpAddr) -> Option<SaId> {
        let mut best: Option<(SaId, bool, u64)> = None;
        for (key, ids) in &self.by_key {
            if key.proto != proto || key.dst != dst {
                continue;
            }
            for id in ids {
                let Some(sa) = self.get(*id) else { continue };
                let c = sa.config();
                if !sa.state().usable() || c.direction == Direction::Inbound {
                    continue;
                }
                if c.src.is_some_and(|s| s != src && !s.is_unspecified()) {
                    continue;
                }
                let rank = (sa.state() == SaState::Mature, sa.add_time());
                if best.is_none_or(|(_, m, t)| rank > (m, t)) {
                    best = Some((*id, rank.0, rank.1));
                }
            }
        }
        best.map(|b| b.0)
    }

    /// Removes an SA. Returns it.
    pub fn remove(&mut self, id: SaId) -> Option<Sa> {
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)?;
        let sa = slot.sa.take()?;
        slot.due = u64::MAX;
        self.live -= 1;
        self.free.push(id.index);
        let key = Self::key_of(&sa);
        if let Some(ids) = self.by_key.get_mut(&key) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.by_key.remove(&key);
            }
        }
        let slot = Self::cache_slot(key.spi);
        if self.spi_cache.get(slot).copied().flatten() == Some(id) {
            self.spi_cache[slot] = None;
        }
        self.refresh_cache(key);
        Some(sa)
    }

    /// Removes the SA with <proto, dst, SPI> (and `src` where given).
    pub fn delete(
        &mut self,
        proto: Proto,
        dst: IpAddr,
        spi: u32,
        src: Option<IpAddr>,
    ) -> Result<Sa, SaError> {
        let id = self.lookup(proto, dst, spi, src).ok_or(SaError::NotFound)?;
        self.remove(id).ok_or(SaError::NotFound)
    }

    /// Removes every SA (of one protocol, or all).
    pub fn flush(&mut self, proto: Option<Proto>) -> usize {
        let ids: Vec<SaId> = self
            .iter()
            .filter(|(_, sa)| proto.is_none_or(|p| sa.proto() == p))
            .map(|(id, _)| id)
            .collect();
        let n = ids.len();
        for id in ids {
            self.remove(id);
        }
        n
    }

    /// Every SA with its handle.
    pub fn iter(&self) -> impl Iterator<Item = (SaId, &Sa)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.sa.as_ref().map(|sa| {
                (
                    SaId {
                        index: i as u32,
                        generation: s.generation,
                    },
                    sa,
                )
            })
        })
    }

    fn event(sa: &Sa, kind: SaEventKind, deleted: bool) -> SaEvent {
        SaEvent {
            key: Self::key_of(sa),
            src: sa.config().src,
            kind,
            packets: sa.stats.packets,
            bytes: sa.stats.bytes,
            add_time: sa.add_time(),
            first_use: sa.first_use(),
            deleted,
        }
    }

    /// Records that an SA's sequence space ran out (the engine calls this).
    pub(crate) fn note_exhausted(&mut self, id: SaId) {
        if let Some(sa) = self.get(id) {
            let ev = Self::event(sa, SaEventKind::SeqExhausted, false);
            self.events.push(ev);
        }
    }

    /// Checks the lifetimes ([`Sa::age`]) at `now` of every SA that can have reached a limit
    /// since its last check (see the module docs), and returns the transitions, in slot
    /// order (the order of [`iter`](Self::iter)). The SAs stay: soft expiry has made them
    /// dying, hard and idle expiry dead; the caller reports and removes them. Checking every
    /// SA instead would find the same transitions. Costs O(SAs touched or due), plus
    /// O(log n) per SA filed for a later check.
    pub fn age_due(&mut self, now: u64) -> Vec<(SaId, Expiry)> {
        let mut check = std::mem::take(&mut self.touched);
        for i in &check {
            if let Some(s) = self.slots.get_mut(*i as usize) {
                s.touched = false;
            }
        }
        while let Some(e) = self.timers.first_entry() {
            if *e.key() > now {
                break;
            }
            let (t, slots) = e.remove_entry();
            for i in slots {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    if s.due == t {
                        s.due = u64::MAX;
                        check.push(i);
                    }
                }
            }
        }
        check.sort_unstable();
        check.dedup();
        let mut out = Vec::new();
        for i in check {
            let Some(slot) = self.slots.get_mut(i as usize) else {
                continue;
            };
            let Some(sa) = slot.sa.as_mut() else { continue };
            let exp = sa.age(now);
            if let Some(t) = next_check(sa, now) {
                if t < slot.due {
                    slot.due = t;
                    self.timers.entry(t).or_default().push(i);
                }
            }
            if let Some(e) = exp {
                let id = SaId {
                    index: i,
                    generation: slot.generation,
                };
                out.push((id, e));
            }
        }
        out
    }

    /// Ages the SAs at `now` ([`age_due`](Self::age_due)): soft expiry marks dying, hard and
    /// idle expiry delete. The resulting events are queued for
    /// [`poll_event`](Self::poll_event).
    pub fn age(&mut self, now: u64) {
        let mut dead = Vec::new();
        for (id, exp) in self.age_due(now) {
            let Some(sa) = self.get(id) else { continue };
            let delete = matches!(exp, Expiry::Hard | Expiry::Idle);
            let ev = Self::event(sa, SaEventKind::Expired(exp), delete);
            if delete {
                dead.push(ev.key);
            }
            self.events.push(ev);
        }
        for key in dead {
            let ids: Vec<SaId> = self.by_key.get(&key).cloned().unwrap_or_default();
            for id in ids {
                if self.get(id).is_some_and(|sa| sa.state() == SaState::Dead) {
                    self.remove(id);
                }
            }
        }
    }

    /// Takes the oldest pending event.
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }
}

/// The earliest time after `now` at which [`Sa::age`] can report a transition for `sa` without
/// the SA being touched, given that `sa.age(now)` was just called: its hard `addtime` and
/// `usetime`, the idle limit, and the soft `addtime` and `usetime` still ahead (a soft limit
/// already passed has fired: `age` reports soft once, unless lifetimes change, which
/// touches the SA). Larval and dead SAs have none, nor do limits that saturate.
fn next_check(sa: &Sa, now: u64) -> Option<u64> {
    if matches!(sa.state(), SaState::Larval | SaState::Dead) {
        return None;
    }
    let c = sa.config();
    let after = |base: Option<u64>, limit: u64| match (base, limit) {
        (Some(b), l) if l != 0 => b.checked_add(l),
        _ => None,
    };
    let add = Some(sa.add_time());
    let first = sa.first_use();
    let idle = if first.is_some() {
        c.idle.usetime
    } else {
        c.idle.addtime
    };
    let soft = [after(add, c.soft.addtime), after(first, c.soft.usetime)]
        .into_iter()
        .flatten()
        .filter(|t| *t > now);
    [
        after(add, c.hard.addtime),
        after(first, c.hard.usetime),
        after(Some(sa.last_use()), idle),
    ]
    .into_iter()
    .flatten()
    .chain(soft)
    .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sa::KeyMaterial;
    use ipsec_crypto::EncrAlg;

    fn cfg(spi: u32, src: Option<&str>, dst: &str) -> SaConfig {
        let mut c = SaConfig::new(
            Proto::Esp,
            spi,
            src.map(|s| s.parse().unwrap()),
            dst.parse().unwrap(),
        );
        c.encr_alg = Some(EncrAlg::AesGcm16);
        c.encr_key = KeyMaterial::new(&[7u8; 20]);
        c
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lookup_prefers_exact_source_and_survives_removals() {
        let mut db = Sadb::new();
        let a = db.add(cfg(0x500, Some("10.0.0.1"), "10.0.0.9"), 0).unwrap();
        // Single SA: the cache answers; a different specific source does not match.
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.1"))),
            Some(a)
        );
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.2"))),
            None
        );
        assert_eq!(
            db.lookup(Proto::Ah, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.1"))),
            None
        );
        let b = db.add(cfg(0x500, Some("10.0.0.2"), "10.0.0.9"), 0).unwrap();
        let w = db.add(cfg(0x500, None, "10.0.0.9"), 0).unwrap();
        assert_eq!(
            db.add(cfg(0x500, Some("10.0.0.2"), "10.0.0.9"), 0).err(),
            Some(SaError::Exists)
        );
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.1"))),
            Some(a)
        );
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.2"))),
            Some(b)
        );
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.3"))),
            Some(w)
        );
        db.remove(w);
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.3"))),
            None
        );
        db.remove(a);
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.1"))),
            None
        );
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.2"))),
            Some(b)
        );
        db.remove(b);
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.2"))),
            None
        );
        assert!(db.get(b).is_none());
        // A slot reused by a new SA gets a new generation: the old handle stays dead.
        let c = db.add(cfg(0x500, Some("10.0.0.2"), "10.0.0.9"), 0).unwrap();
        assert!(db.get(b).is_none());
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x500, Some(ip("10.0.0.2"))),
            Some(c)
        );
    }

    #[test]
    fn colliding_spis_in_the_cache() {
        let mut db = Sadb::new();
        let ids: Vec<_> = (0..3000u32)
            .map(|i| {
                db.add(cfg(0x1000 + i, Some("10.0.0.1"), "10.0.0.9"), 0)
                    .unwrap()
            })
            .collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                db.lookup(
                    Proto::Esp,
                    ip("10.0.0.9"),
                    0x1000 + i as u32,
                    Some(ip("10.0.0.1"))
                ),
                Some(*id)
            );
        }
        assert_eq!(db.flush(None), 3000);
        assert_eq!(
            db.lookup(Proto::Esp, ip("10.0.0.9"), 0x1000, Some(ip("10.0.0.1"))),
            None
        );
    }

    use crate::sa::Lifetime;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Add { larval: bool, lt: [Lifetime; 3] },
        Mature(usize),
        Remove(usize),
        Use(usize, u64),
        SetLifetimes(usize, [Lifetime; 3]),
        SetState(usize, SaState),
        Tick { advance: u64, remove_dead: bool },
    }

    fn lifetime() -> impl Strategy<Value = Lifetime> {
        (
            prop_oneof![Just(0u64), 1u64..4],
            prop_oneof![Just(0u64), 1u64..400],
            prop_oneof![Just(0u64), 1u64..9],
            prop_oneof![Just(0u64), 1u64..9],
        )
            .prop_map(|(packets, bytes, addtime, usetime)| Lifetime {
                packets,
                bytes,
                addtime,
                usetime,
            })
    }

    fn lifetimes() -> impl Strategy<Value = [Lifetime; 3]> {
        (lifetime(), lifetime(), lifetime()).prop_map(|(s, h, i)| [s, h, i])
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (any::<bool>(), lifetimes()).prop_map(|(larval, lt)| Op::Add { larval, lt }),
            1 => any::<usize>().prop_map(Op::Mature),
            1 => any::<usize>().prop_map(Op::Remove),
            4 => (any::<usize>(), 1u64..150).prop_map(|(k, b)| Op::Use(k, b)),
            1 => (any::<usize>(), lifetimes()).prop_map(|(k, lt)| Op::SetLifetimes(k, lt)),
            1 => (any::<usize>(), prop_oneof![Just(SaState::Dying), Just(SaState::Dead)])
                .prop_map(|(k, st)| Op::SetState(k, st)),
            4 => (0u64..4, any::<bool>())
                .prop_map(|(advance, remove_dead)| Op::Tick { advance, remove_dead }),
        ]
    }

    /// The reference: every SA checked at every tick, in slot order.
    fn age_every_sa(db: &mut Sadb, now: u64) -> Vec<(SaId, Expiry)> {
        let ids: Vec<SaId> = db.iter().map(|(id, _)| id).collect();
        ids.into_iter()
            .filter_map(|id| db.get_mut(id).and_then(|sa| sa.age(now)).map(|e| (id, e)))
            .collect()
    }

    fn nth(db: &Sadb, k: usize) -> Option<SaId> {
        let n = db.len();
        (n > 0)
            .then(|| db.iter().nth(k % n).map(|(id, _)| id))
            .flatten()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// `age_due` finds exactly the transitions that checking every SA at every tick finds,
        /// whatever happens between ticks (adds, maturing, traffic, lifetime and state
        /// changes, removals, several ticks at one time).
        #[test]
        fn age_due_equals_checking_every_sa(ops in proptest::collection::vec(op(), 1..120)) {
            let (mut fast, mut slow) = (Sadb::new(), Sadb::new());
            let mut now = 1000u64;
            let mut spi = 0x1000u32;
            for op in ops {
                match op {
                    Op::Add { larval, lt } => {
                        spi += 1;
                        let mut c = if larval {
                            let mut c = SaConfig::new(Proto::Esp, spi, Some(ip("10.0.0.1")), ip("10.0.0.9"));
                            c.state = SaState::Larval;
                            c
                        } else {
                            cfg(spi, Some("10.0.0.1"), "10.0.0.9")
                        };
                        [c.soft, c.hard, c.idle] = lt;
                        let a = fast.add(c.clone(), now).unwrap();
                        let b = slow.add(c, now).unwrap();
                        prop_assert_eq!(a, b);
                    }
                    Op::Mature(k) => {
                        if let Some(id) = nth(&fast, k) {
                            if fast.get(id).unwrap().state() == SaState::Larval {
                                let c = cfg(fast.get(id).unwrap().spi(), Some("10.0.0.1"), "10.0.0.9");
                                fast.get_mut(id).unwrap().mature(c.clone(), now).unwrap();
                                slow.get_mut(id).unwrap().mature(c, now).unwrap();
                            }
                        }
                    }
                    Op::Remove(k) => {
                        if let Some(id) = nth(&fast, k) {
                            fast.remove(id);
                            slow.remove(id);
                        }
                    }
                    Op::Use(k, bytes) => {
                        if let Some(id) = nth(&fast, k) {
                            fast.get_mut(id).unwrap().account(bytes as usize, now);
                            slow.get_mut(id).unwrap().account(bytes as usize, now);
                        }
                    }
                    Op::SetLifetimes(k, [s, h, i]) => {
                        if let Some(id) = nth(&fast, k) {
                            fast.get_mut(id).unwrap().set_lifetimes(s, h, i);
                            slow.get_mut(id).unwrap().set_lifetimes(s, h, i);
                        }
                    }
                    Op::SetState(k, st) => {
                        if let Some(id) = nth(&fast, k) {
                            fast.get_mut(id).unwrap().set_state(st);
                            slow.get_mut(id).unwrap().set_state(st);
                        }
                    }
                    Op::Tick { advance, remove_dead } => {
                        now += advance;
                        let got = fast.age_due(now);
                        let want = age_every_sa(&mut slow, now);
                        prop_assert_eq!(&got, &want, "at {}", now);
                        if remove_dead {
                            for (id, e) in want {
                                if e != Expiry::Soft {
                                    fast.remove(id);
                                    slow.remove(id);
                                }
                            }
                        }
                    }
                }
                let a: Vec<_> = fast.iter().map(|(id, sa)| (id, sa.state())).collect();
                let b: Vec<_> = slow.iter().map(|(id, sa)| (id, sa.state())).collect();
                prop_assert_eq!(a, b);
                prop_assert_eq!(fast.len(), slow.len());
            }
        }
    }

    /// An SA nobody touches is not looked at again until its next time limit.
    #[test]
    fn untouched_sas_wait_for_their_next_limit() {
        let mut db = Sadb::new();
        let mut c = cfg(0x100, Some("10.0.0.1"), "10.0.0.9");
        c.soft.addtime = 100;
        c.hard.addtime = 200;
        let id = db.add(c, 0).unwrap();
        for i in 0..10u32 {
            db.add(cfg(0x200 + i, Some("10.0.0.1"), "10.0.0.9"), 0)
                .unwrap();
        }
        assert!(db.age_due(0).is_empty());
        assert!(db.touched.is_empty());
        assert_eq!(db.timers.keys().copied().collect::<Vec<_>>(), vec![100]);
        assert!(db.age_due(99).is_empty());
        assert_eq!(db.age_due(100), vec![(id, Expiry::Soft)]);
        assert_eq!(db.timers.keys().copied().collect::<Vec<_>>(), vec![200]);
        assert!(db.age_due(150).is_empty());
        assert_eq!(db.age_due(250), vec![(id, Expiry::Hard)]);
        assert!(db.timers.is_empty());
        // Used: checked at the next tick, whatever its limits.
        let other = db.iter().nth(1).map(|(i, _)| i).unwrap();
        db.get_mut(other).unwrap().account(10, 251);
        assert_eq!(db.touched, vec![other.index]);
        assert!(db.age_due(251).is_empty());
        assert!(db.touched.is_empty());
        assert_eq!(db.len(), 11);
        db.remove(id);
        assert_eq!(db.len(), 10);
    }
}
