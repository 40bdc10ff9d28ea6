//! Exchanges on an established IKE SA: INFORMATIONAL (liveness, delete) and
//! CREATE_CHILD_SA (Child SAs, Child SA and IKE SA rekeying).

use super::*;

impl Child {
    /// The SPI of our inbound ESP SA (the one we chose).
    pub(super) fn inbound(&self) -> [u8; 4] {
        if self.requested_by_us {
            self.sa.spi_i
        } else {
            self.sa.spi_r
        }
    }

    /// The SPI of our outbound ESP SA (the one the peer chose).
    pub(super) fn outbound(&self) -> [u8; 4] {
        if self.requested_by_us {
            self.sa.spi_r
        } else {
            self.sa.spi_i
        }
    }
}

/// A Delete payload for one ESP SA.
fn esp_delete(spi: &[u8; 4]) -> Payload<'_> {
    Payload::Delete(crate::wire::Delete {
        protocol: protocol::ESP,
        spi_size: 4,
        spis: spi,
    })
}

/// What our outstanding request asks.
#[derive(Debug)]
pub(super) enum Request {
    Liveness,
    /// Delete the child whose inbound SPI this is.
    DeleteChild([u8; 4]),
    DeleteIke,
    CreateChild(Box<ChildRequest>),
    RekeyIke(Box<IkeRekeyRequest>),
}

/// Our side of an IKE SA rekey in flight.
#[derive(Debug)]
pub(super) struct IkeRekeyRequest {
    /// Our SPI of the new IKE SA (we will be its initiator).
    spi: [u8; 8],
    ni: Zeroizing<Vec<u8>>,
    share: KeyShare,
}

/// Our side of a CREATE_CHILD_SA exchange in flight.
#[derive(Debug)]
pub(super) struct ChildRequest {
    /// The inbound SPI of the child being rekeyed.
    rekey: Option<[u8; 4]>,
    /// Our inbound SPI for the new child.
    spi: [u8; 4],
    ni: Zeroizing<Vec<u8>>,
    share: Option<KeyShare>,
    ts_i: Vec<TrafficSelector>,
    ts_r: Vec<TrafficSelector>,
    /// The suites offered, in order (proposal numbers from 1).
    suites: Vec<ChildSuite>,
}

/// Something an exchange on the established SA made happen. Child SAs are named by our
/// inbound SPI; [`Established::child_by_inbound`] gives the whole pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Our liveness check was answered.
    Alive,
    /// The peer checked our liveness (its empty request was answered).
    PeerChecked,
    /// A Child SA pair is deleted: by the peer, or our delete was acknowledged. Remove
    /// both ESP SAs.
    ChildDeleted {
        /// Our inbound SPI of the deleted pair.
        inbound: [u8; 4],
        /// Our outbound SPI of the deleted pair.
        outbound: [u8; 4],
    },
    /// A new Child SA pair exists (install both ESP SAs).
    ChildCreated {
        /// Our inbound SPI of the new pair.
        inbound: [u8; 4],
    },
    /// A Child SA pair was rekeyed: install the new pair; the old one stays until it is
    /// deleted (by whoever requested the rekey).
    ChildRekeyed {
        /// Our inbound SPI of the old pair.
        old: [u8; 4],
        /// Our inbound SPI of the new pair.
        new: [u8; 4],
    },
    /// Both sides rekeyed the pair `old` at once, and this exchange, the second to
    /// complete, made `new` (install it). RFC 7296 §2.8.1: the pair made by the exchange
    /// with the lowest of the four nonces is redundant and its requester deletes it.
    /// `redundant` is that pair when it is ours to delete; when it is `None` the peer
    /// deletes its redundant pair, and we delete `old` as after a normal rekey.
    ChildRekeyCollision {
        /// Our inbound SPI of the pair both sides rekeyed.
        old: [u8; 4],
        /// Our inbound SPI of the pair this exchange made.
        new: [u8; 4],
        /// Our inbound SPI of the pair we must delete, if the redundant one is ours.
        redundant: Option<[u8; 4]>,
    },
    /// Our CREATE_CHILD_SA request failed (the peer's error notification, or a response
    /// we could not accept); nothing was created.
    ChildFailed(IkeError),
    /// The IKE SA is deleted (with its Child SAs): by the peer, or our delete was
    /// acknowledged. Nothing more is sent or accepted on it.
    IkeDeleted,
    /// The IKE SA was rekeyed (RFC 7296 §1.3.2): the new one is in [`Output::rekeyed`].
    IkeRekeyed,
    /// Our IKE SA rekey failed (the peer's error notification, or a response we could
    /// not accept); nothing changed.
    IkeRekeyFailed(IkeError),
    /// Both sides rekeyed the IKE SA at once (RFC 7296 §2.8.2) and the collision is
    /// settled: [`Output::rekeyed`] is the surviving new IKE SA (it holds every Child SA),
    /// made by the exchange without the lowest of the four nonces. `won`: that exchange
    /// was ours: the peer deletes the redundant one, and we delete the old IKE SA (best
    /// once the redundant one is gone, so that the peer has settled too); otherwise we
    /// delete the redundant one ([`Output::redundant`], if any) and the peer deletes the
    /// old one.
    IkeRekeyCollision {
        /// The surviving new IKE SA is the one our request made.
        won: bool,
    },
}

/// The result of a datagram handled by an [`Established`] SA.
#[derive(Debug, Default)]
#[must_use]
pub struct Output {
    /// The response to send, if the datagram was a request (or its retransmission).
    pub reply: Option<Vec<u8>>,
    /// What happened.
    pub event: Option<Event>,
    /// With [`Event::IkeRekeyed`]: the new IKE SA, which now holds every Child SA. The old
    /// one stays until the side that asked for the rekey deletes it
    /// ([`Established::delete_ike`] on the old SA).
    pub rekeyed: Option<Box<Established>>,
    /// With [`Event::IkeRekeyCollision`]: the redundant new IKE SA of the two, if it
    /// exists on our side: ours to delete ([`Established::delete_ike`]) when we lost, the
    /// peer's to delete (keep it until then) when we won.
    pub redundant: Option<Box<Established>>,
}

impl Established {
    /// Whether we initiated the IKE SA.
    #[must_use]
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// What NAT detection found in IKE_SA_INIT (`None`: the peer does not do NAT
    /// traversal).
    #[must_use]
    pub fn nat(&self) -> Option<NatStatus> {
        self.nat
    }

    /// Responder: whether the initiator sent INITIAL_CONTACT (RFC 7296 §2.4): the caller
    /// then deletes every other IKE SA (and its Child SAs) with the same authenticated
    /// identity.
    #[must_use]
    pub fn peer_initial_contact(&self) -> bool {
        self.peer_initial_contact
    }

    /// The IKE SA SPIs (initiator's, responder's).
    #[must_use]
    pub fn spis(&self) -> ([u8; 8], [u8; 8]) {
        (self.spi_i, self.spi_r)
    }

    /// The IKE SA keys.
    #[must_use]
    pub fn ike_keys(&self) -> &IkeKeys {
        &self.keys
    }

    /// The first Child SA (the one IKE_AUTH made, until it is deleted).
    #[must_use]
    pub fn child(&self) -> Option<&ChildSa> {
        self.children.first().map(|c| &c.sa)
    }

    /// Why the Child SA of IKE_AUTH was not made, if it was refused (by us as responder,
    /// with the error notification sent, or by the peer) while the IKE SA was
    /// established (RFC 7296 §1.2): the IKE SA is up with no Child SA.
    #[must_use]
    pub fn ike_auth_child_error(&self) -> Option<IkeError> {
        self.child_refused
    }

    /// Initiator whose IKE_AUTH Child SA was refused: the inbound SPI its request
    /// offered, which no Child SA uses (the caller releases it).
    #[must_use]
    pub fn unused_spi(&self) -> Option<[u8; 4]> {
        self.unused_spi
    }

    /// Every Child SA pair of this IKE SA, oldest first.
    pub fn children(&self) -> impl Iterator<Item = &ChildSa> {
        self.children.iter().map(|c| &c.sa)
    }

    /// The Child SA pair whose inbound SPI (ours) is `spi`.
    #[must_use]
    pub fn child_by_inbound(&self, spi: [u8; 4]) -> Option<&ChildSa> {
        self.children
            .iter()
            .find(|c| c.inbound() == spi)
            .map(|c| &c.sa)
    }

    /// Whether the IKE SA has been deleted.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The message ID our next request will carry.
    #[must_use]
    pub fn next_message_id(&self) -> u32 {
        self.next_request_id
    }

    /// Seals a request or response of exchange `ex` with our role's flags.
    fn message(
        &self,
        ex: u8,
        response: bool,
        message_id: u32,
        payloads: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        let mut fl = if self.initiator { flags::INITIATOR } else { 0 };
        if response {
            fl |= flags::RESPONSE;
        }
        let h = header(self.spi_i, self.spi_r, ex, fl, message_id);
        self.ciphers.seal(&h, payloads, rng)
    }

    fn request(
        &mut self,
        kind: Request,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        if self.closed {
            return Err(IkeError::Unexpected("the IKE SA is deleted"));
        }
        if self.pending.is_some() {
            return Err(IkeError::Busy);
        }
        // Message IDs must not wrap (RFC 7296 §2.2): the SA has to be rekeyed first.
        if self.next_request_id == u32::MAX {
            return Err(IkeError::NeedsRekey);
        }
        let (ex, payloads): (u8, Vec<Payload<'_>>) = match &kind {
            Request::Liveness => (exchange::INFORMATIONAL, vec![]),
            Request::DeleteChild(spi) => (exchange::INFORMATIONAL, vec![esp_delete(spi)]),
            Request::DeleteIke => (
                exchange::INFORMATIONAL,
                vec![Payload::Delete(crate::wire::Delete {
                    protocol: protocol::IKE,
                    spi_size: 0,
                    spis: &[],
                })],
            ),
            Request::CreateChild(c) => {
                let mut v = Vec::with_capacity(7);
                if let Some(old) = &c.rekey {
                    v.push(Payload::Notify(Notify {
                        protocol: protocol::ESP,
                        spi: old,
                        ty: notify::REKEY_SA,
                        data: &[],
                    }));
                }
                if self.cfg.child.transport {
                    v.push(notify_payload(notify::USE_TRANSPORT_MODE, &[]));
                }
                let dh = self.cfg.child.pfs.then_some(self.cfg.group);
                v.push(Payload::Sa(child_proposals(&c.suites, &c.spi, dh)));
                v.push(Payload::Nonce(&c.ni));
                if let Some(k) = &c.share {
                    v.push(Payload::Ke {
                        group: k.group().id(),
                        data: k.public(),
                    });
                }
                v.push(Payload::TsI(c.ts_i.clone()));
                v.push(Payload::TsR(c.ts_r.clone()));
                (exchange::CREATE_CHILD_SA, v)
            }
            Request::RekeyIke(r) => (
                exchange::CREATE_CHILD_SA,
                vec![
                    Payload::Sa(vec![ike_proposal_with_spi(&self.cfg, 1, &r.spi)]),
                    Payload::Nonce(&r.ni),
                    Payload::Ke {
                        group: r.share.group().id(),
                        data: r.share.public(),
                    },
                ],
            ),
        };
        let packet = self.message(ex, false, self.next_request_id, &payloads, rng)?;
        self.next_request_id += 1;
        self.pending = Some((Pending::new(packet.clone(), now, self.backoff), kind));
        Ok(packet)
    }

    /// Builds an empty INFORMATIONAL request (a liveness check, RFC 7296 §1.4).
    ///
    /// # Errors
    /// [`IkeError::Busy`] while another request of ours is outstanding,
    /// [`IkeError::NeedsRekey`] when the message IDs are used up.
    pub fn check_liveness(
        &mut self,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        self.request(Request::Liveness, now, rng)
    }

    /// Builds a request deleting the Child SA pair whose inbound SPI (ours) is `inbound`
    /// (RFC 7296 §1.4.1).
    ///
    /// # Errors
    /// As [`Established::check_liveness`]; [`IkeError::Unexpected`] for an unknown SPI.
    pub fn delete_child(
        &mut self,
        inbound: [u8; 4],
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        if self.child_by_inbound(inbound).is_none() {
            return Err(IkeError::Unexpected("no Child SA with that SPI"));
        }
        self.request(Request::DeleteChild(inbound), now, rng)
    }

    /// Builds a request deleting the IKE SA and its Child SAs.
    ///
    /// # Errors
    /// As [`Established::check_liveness`].
    pub fn delete_ike(&mut self, now: Instant, rng: &mut dyn Random) -> Result<Vec<u8>, IkeError> {
        self.request(Request::DeleteIke, now, rng)
    }

    /// Builds a CREATE_CHILD_SA request (RFC 7296 §1.3): a new Child SA pair for the
    /// configured selectors, or with `rekey` (our inbound SPI of an existing pair) its
    /// replacement with the same selectors (§1.3.3).
    ///
    /// # Errors
    /// As [`Established::check_liveness`]; [`IkeError::Unexpected`] for an unknown SPI.
    pub fn create_child(
        &mut self,
        rekey: Option<[u8; 4]>,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        let mut suites = self.cfg.child_suites();
        let (ts_i, ts_r) = match rekey {
            None => (self.cfg.ts_local.clone(), self.cfg.ts_remote.clone()),
            Some(spi) => {
                let old = self
                    .children
                    .iter()
                    .find(|c| c.inbound() == spi)
                    .ok_or(IkeError::Unexpected("no Child SA with that SPI"))?;
                // A rekey offers the pair's own transforms first.
                suites.retain(|s| *s != old.sa.suite);
                suites.insert(0, old.sa.suite);
                // Our side first: TSi is the requester's.
                if old.requested_by_us {
                    (old.sa.ts_i.clone(), old.sa.ts_r.clone())
                } else {
                    (old.sa.ts_r.clone(), old.sa.ts_i.clone())
                }
            }
        };
        if self.closed || self.pending.is_some() {
            return Err(if self.closed {
                IkeError::Unexpected("the IKE SA is deleted")
            } else {
                IkeError::Busy
            });
        }
        let share = if self.cfg.child.pfs {
            Some(key_share(self.cfg.group, rng)?)
        } else {
            None
        };
        let req = ChildRequest {
            rekey,
            spi: self.fresh_spi(rng),
            ni: random_vec(rng, NONCE_LEN),
            share,
            ts_i,
            ts_r,
            suites,
        };
        self.request(Request::CreateChild(Box::new(req)), now, rng)
    }

    /// Builds a CREATE_CHILD_SA request for a new Child SA pair between other selectors
    /// than the configured ones (ours, the peer's): a gateway's policy naming another pair
    /// of networks behind the same peer.
    ///
    /// # Errors
    /// As [`Established::create_child`].
    pub fn create_child_for(
        &mut self,
        ts: (Vec<TrafficSelector>, Vec<TrafficSelector>),
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>, IkeError> {
        let configured = (
            std::mem::replace(&mut self.cfg.ts_local, ts.0),
            std::mem::replace(&mut self.cfg.ts_remote, ts.1),
        );
        let r = self.create_child(None, now, rng);
        (self.cfg.ts_local, self.cfg.ts_remote) = configured;
        r
    }

    /// Builds a request rekeying the IKE SA (RFC 7296 §1.3.2): a new IKE SA with fresh
    /// SPIs, nonces and key exchange, keyed from this one's SK_d (§2.18). When it
    /// completes ([`Event::IkeRekeyed`]), delete this SA with [`Established::delete_ike`].
    ///
    /// # Errors
    /// As [`Established::check_liveness`].
    pub fn rekey_ike(&mut self, now: Instant, rng: &mut dyn Random) -> Result<Vec<u8>, IkeError> {
        if self.closed || self.pending.is_some() {
            return Err(if self.closed {
                IkeError::Unexpected("the IKE SA is deleted")
            } else {
                IkeError::Busy
            });
        }
        let req = IkeRekeyRequest {
            spi: spi8(rng),
            ni: random_vec(rng, NONCE_LEN),
            share: key_share(self.cfg.group, rng)?,
        };
        self.request(Request::RekeyIke(Box::new(req)), now, rng)
    }

    /// The IKE SA that replaces this one: new SPIs and keys (SKEYSEED from our SK_d,
    /// RFC 7296 §2.18), the Child SAs moved over, message IDs from 0. `initiator`: we
    /// asked for the rekey.
    #[allow(clippy::too_many_arguments)]
    fn successor(
        &mut self,
        initiator: bool,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        gir: &[u8],
        ni: &[u8],
        nr: &[u8],
    ) -> Result<Established, IkeError> {
        let prf = self.cfg.prf;
        let seed = crate::keys::skeyseed_rekey(prf, &self.keys.sk_d, gir, ni, nr);
        let sizes = self.cfg.suite.key_sizes()?;
        let keys = IkeKeys::from_skeyseed(prf, &seed, ni, nr, &spi_i, &spi_r, sizes)?;
        Ok(Established {
            cfg: self.cfg.clone(),
            nat: self.nat,
            initiator,
            spi_i,
            spi_r,
            ciphers: Ciphers::new(self.cfg.suite, &keys, initiator)?,
            keys,
            children: Vec::new(),
            child_refused: None,
            unused_spi: None,
            rekeys: Vec::new(),
            orphan_deletes: Vec::new(),
            cached: None,
            peer_initial_contact: false,
            frag: self.frag.renewed(),
            collision: None,
            rekeyed_away: false,
            backoff: self.backoff,
            next_request_id: 0,
            expect_request_id: 0,
            pending: None,
            closed: false,
            child_policy: None,
            _auth: self._auth,
        })
    }

    /// A new inbound SPI that no Child SA of ours uses.
    fn fresh_spi(&self, rng: &mut dyn Random) -> [u8; 4] {
        loop {
            let s = spi4(rng);
            if self.children.iter().all(|c| c.inbound() != s) {
                return s;
            }
        }
    }

    /// The datagrams that carry `msg` (a request or response of this SA, first sent or
    /// again): `msg` itself, or its fragments when both sides support IKE fragmentation
    /// (RFC 7383) and it is longer than [`IkeConfig::fragment_len`]. The same message
    /// always gives the same fragments.
    pub fn datagrams(&mut self, msg: &[u8], rng: &mut dyn Random) -> Vec<Vec<u8>> {
        self.frag.datagrams(&self.ciphers.out, msg, rng)
    }

    /// Whether both sides announced IKE fragmentation support.
    #[must_use]
    pub fn fragmentation(&self) -> bool {
        self.frag.active()
    }

    /// Fragments dropped because their integrity check failed.
    #[must_use]
    pub fn bad_fragments(&self) -> u64 {
        self.frag.bad_fragments()
    }

    /// Abandons incomplete fragmented messages older than [`REASSEMBLY_TIMEOUT`] (counted
    /// from the first call that saw them); returns when to call again, if anything is
    /// being reassembled.
    pub fn expire_fragments(&mut self, now: Instant) -> Option<Instant> {
        self.frag.expire(now)
    }

    /// When [`Established::handle_timeout`] is next due, if a request is outstanding.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|(p, _)| p.next)
    }

    /// The retransmission of our outstanding request due at `now`, if any.
    ///
    /// # Errors
    /// [`IkeError::Timeout`] when the last retransmission went unanswered: the peer is
    /// dead, and the caller deletes the IKE SA and its Child SAs without telling it.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<Vec<u8>>, IkeError> {
        let Some((p, _)) = &mut self.pending else {
            return Ok(None);
        };
        match p.on_timeout(now, self.backoff) {
            Ok(r) => Ok(r.map(<[u8]>::to_vec)),
            Err(e) => {
                self.pending = None;
                Err(e)
            }
        }
    }

    /// Handles a datagram for this SA: a response to our request, a request of the peer,
    /// or a retransmission of the peer's last request (answered from the cache).
    ///
    /// # Errors
    /// Why the datagram was dropped (nothing changed): integrity failure, a message ID
    /// outside the window, a response nothing was asked for, an exchange not implemented.
    pub fn handle(&mut self, datagram: &[u8], rng: &mut dyn Random) -> Result<Output, IkeError> {
        if self.closed {
            return Err(IkeError::Unexpected("the IKE SA is deleted"));
        }
        // The caller's policy answer is for this datagram only.
        let policy = self.child_policy.take();
        if let Some((req, resp)) = &self.cached {
            if !req.is_empty() && datagram == req.as_slice() {
                return Ok(Output {
                    reply: Some(resp.clone()),
                    event: None,
                    rekeyed: None,
                    redundant: None,
                });
            }
        }
        let mut plain = Zeroizing::new(Vec::new());
        let (expect, next_request, waiting) = (
            self.expect_request_id,
            self.next_request_id,
            self.pending.is_some(),
        );
        let verdict = |h: &Header, f: &crate::sk::Fragment| {
            let id = u64::from(h.message_id);
            if h.is_response() {
                if waiting && h.message_id.wrapping_add(1) == next_request {
                    Verdict::Take
                } else {
                    Verdict::Drop
                }
            } else if id == expect {
                Verdict::Take
            } else if id + 1 == expect && f.number == 1 {
                Verdict::Replay
            } else {
                Verdict::Drop
            }
        };
        let (h, inner) = match self
            .frag
            .open(&self.ciphers.inp, datagram, &mut plain, verdict)?
        {
            Opened::Message(h, inner) => (h, inner),
            Opened::Waiting => return Ok(Output::default()),
            Opened::Replay => {
                return Ok(Output {
                    reply: self.cached.as_ref().map(|(_, r)| r.clone()),
                    event: None,
                    rekeyed: None,
                    redundant: None,
                })
            }
        };
        if h.spi_i != self.spi_i || h.spi_r != self.spi_r || h.is_initiator() == self.initiator {
            return Err(IkeError::Unexpected("SPIs or Initiator flag"));
        }
        if h.is_response() {
            return self.handle_response(&h, &inner);
        }
        if u64::from(h.message_id) != self.expect_request_id {
            return Err(IkeError::Unexpected("request outside the window"));
        }
        let ike_rekey = h.exchange == exchange::CREATE_CHILD_SA
            && matches!(inner.iter().find(|p| p.ty() == pt::SA),
                Some(Payload::Sa(props)) if props.iter().any(|p| p.protocol == protocol::IKE));
        let mut rekeyed = None;
        let (payloads_out, event) = match h.exchange {
            exchange::INFORMATIONAL => self.answer_informational(&inner),
            exchange::CREATE_CHILD_SA if ike_rekey => match self.answer_ike_rekey(&inner, rng) {
                Ok((out, new, low)) if self.pending.is_some() => {
                    // Our own rekey is in flight: settled when it completes (§2.8.2).
                    self.collision = Some((Box::new(new), low));
                    (out, None)
                }
                Ok((out, new, _)) => {
                    rekeyed = Some(self.hand_over(new));
                    (out, Some(Event::IkeRekeyed))
                }
                Err((ty, data)) => (vec![OwnedPayload::Notify(ty, data)], None),
            },
            exchange::CREATE_CHILD_SA => self.answer_create_child(&inner, policy, rng),
            _ => return Err(IkeError::Unexpected("exchange not implemented")),
        };
        let refs: Vec<Payload<'_>> = payloads_out
            .iter()
            .map(|p| p.as_payload(&self.cfg))
            .collect();
        let reply = self.message(h.exchange, true, h.message_id, &refs, rng)?;
        self.expect_request_id += 1;
        self.cached = Some((fragments::request_key(datagram), reply.clone()));
        let mut event = event;
        if event == Some(Event::IkeDeleted) {
            self.closed = true;
            self.pending = None;
            if let Some((new, _)) = self.collision.take() {
                // The peer completed its rekey and deletes the old SA while ours was in
                // flight: its new SA stands, ours is forgotten (§2.25.2).
                rekeyed = Some(self.hand_over(*new));
                event = Some(Event::IkeRekeyCollision { won: false });
            }
        }
        Ok(Output {
            reply: Some(reply),
            event,
            rekeyed,
            redundant: None,
        })
    }

    fn handle_response(&mut self, h: &Header, inner: &[Payload<'_>]) -> Result<Output, IkeError> {
        let Some((_, kind)) = &self.pending else {
            return Err(IkeError::Unexpected("response to no request"));
        };
        let want_ex = match kind {
            Request::CreateChild(_) | Request::RekeyIke(_) => exchange::CREATE_CHILD_SA,
            Request::Liveness | Request::DeleteChild(_) | Request::DeleteIke => {
                exchange::INFORMATIONAL
            }
        };
        if h.message_id.wrapping_add(1) != self.next_request_id || h.exchange != want_ex {
            return Err(IkeError::Unexpected("response to another request"));
        }
        let Some((_, kind)) = self.pending.take() else {
            return Err(IkeError::Unexpected("response to no request"));
        };
        let orphans = core::mem::take(&mut self.orphan_deletes);
        let event = match kind {
            Request::Liveness => Event::Alive,
            Request::DeleteChild(inbound) => self.remove_child(inbound),
            Request::DeleteIke => {
                self.closed = true;
                Event::IkeDeleted
            }
            Request::CreateChild(req) => match self.accept_child(&req, inner, &orphans) {
                Ok(ev) => ev,
                Err(e) => Event::ChildFailed(e),
            },
            Request::RekeyIke(req) => {
                let result = self.accept_ike_rekey(&req, inner);
                return Ok(self.settle_ike_rekey(result));
            }
        };
        Ok(Output {
            reply: None,
            event: Some(event),
            rekeyed: None,
            redundant: None,
        })
    }

    /// Moves the Child SAs to `new`, the IKE SA that replaces this one.
    fn hand_over(&mut self, mut new: Established) -> Box<Established> {
        new.children = core::mem::take(&mut self.children);
        self.rekeyed_away = true;
        Box::new(new)
    }

    /// The outcome of our IKE SA rekey (the new SA and the lowest nonce of the
    /// exchange, or why it failed), with a simultaneous rekey of the peer's if we answered
    /// one meanwhile (RFC 7296 §2.8.2): the new SA made with the lowest of the four nonces
    /// is redundant.
    fn settle_ike_rekey(&mut self, result: Result<(Established, Vec<u8>), IkeError>) -> Output {
        let (event, rekeyed, redundant) = match (result, self.collision.take()) {
            (Ok((mine, _)), None) => (Event::IkeRekeyed, Some(self.hand_over(mine)), None),
            (Ok((mine, my_low)), Some((theirs, their_low))) => {
                let won = nonce_lt(&their_low, &my_low);
                let (keep, drop) = if won {
                    (mine, theirs)
                } else {
                    (*theirs, Box::new(mine))
                };
                let keep = self.hand_over(keep);
                (Event::IkeRekeyCollision { won }, Some(keep), Some(drop))
            }
            // Ours was refused; the peer's, which we answered, stands.
            (Err(_), Some((theirs, _))) => (
                Event::IkeRekeyCollision { won: false },
                Some(self.hand_over(*theirs)),
                None,
            ),
            (Err(e), None) => (Event::IkeRekeyFailed(e), None, None),
        };
        Output {
            reply: None,
            event: Some(event),
            rekeyed,
            redundant,
        }
    }

    /// The peer's answer to our IKE SA rekey: the new SA and the lower nonce of the
    /// exchange.
    fn accept_ike_rekey(
        &mut self,
        req: &IkeRekeyRequest,
        inner: &[Payload<'_>],
    ) -> Result<(Established, Vec<u8>), IkeError> {
        if let Some(n) = error_notify(inner) {
            return Err(IkeError::PeerNotify(n));
        }
        let Payload::Sa(props) = one(inner, pt::SA, "SA")? else {
            return Err(IkeError::MissingPayload("SA"));
        };
        let spi_r: [u8; 8] = match props.as_slice() {
            [p] if p.num == 1 && chosen_is(p, &ike_proposal(&self.cfg, 1)) => {
                p.spi.try_into().map_err(|_| IkeError::NoProposalChosen)?
            }
            _ => return Err(IkeError::NoProposalChosen),
        };
        let Payload::Nonce(nr) = one(inner, pt::NONCE, "Nonce")? else {
            return Err(IkeError::MissingPayload("Nonce"));
        };
        if !(16..=256).contains(&nr.len()) {
            return Err(IkeError::Unexpected("nonce length outside 16..=256"));
        }
        let Payload::Ke { group, data } = one(inner, pt::KE, "KE")? else {
            return Err(IkeError::MissingPayload("KE"));
        };
        if *group != req.share.group().id() {
            return Err(IkeError::InvalidKePayload(req.share.group().id()));
        }
        let gir = req.share.agree(data)?;
        let new = self.successor(true, req.spi, spi_r, &gir, &req.ni, nr)?;
        Ok((new, lowest(&req.ni, nr).to_vec()))
    }

    fn remove_child(&mut self, inbound: [u8; 4]) -> Event {
        let outbound = self
            .children
            .iter()
            .find(|c| c.inbound() == inbound)
            .map_or([0; 4], Child::outbound);
        self.children.retain(|c| c.inbound() != inbound);
        self.rekeys.retain(|r| r.old != inbound);
        Event::ChildDeleted { inbound, outbound }
    }

    /// The peer's response to our CREATE_CHILD_SA request.
    fn accept_child(
        &mut self,
        req: &ChildRequest,
        inner: &[Payload<'_>],
        orphans: &[[u8; 4]],
    ) -> Result<Event, IkeError> {
        if let Some(n) = error_notify(inner) {
            return Err(IkeError::PeerNotify(n));
        }
        let cfg = &self.cfg;
        let dh = req.share.as_ref().map(KeyShare::group);
        let answer = child_answer(
            cfg,
            inner,
            &child_proposals(&req.suites, &[], dh),
            &req.ts_i,
            &req.ts_r,
        )?;
        let suite = *req
            .suites
            .get(answer.chosen)
            .ok_or(IkeError::NoProposalChosen)?;
        let Payload::Nonce(nr) = one(inner, pt::NONCE, "Nonce")? else {
            return Err(IkeError::MissingPayload("Nonce"));
        };
        if !(16..=256).contains(&nr.len()) {
            return Err(IkeError::Unexpected("nonce length outside 16..=256"));
        }
        let gir = match &req.share {
            Some(k) => {
                let Payload::Ke { group, data } = one(inner, pt::KE, "KE")? else {
                    return Err(IkeError::MissingPayload("KE"));
                };
                if *group != k.group().id() {
                    return Err(IkeError::InvalidKePayload(k.group().id()));
                }
                Some(k.agree(data)?)
            }
            None => None,
        };
        if orphans.contains(&answer.spi) {
            // The peer already deleted the pair this response makes.
            return Err(IkeError::Unexpected("the new pair was deleted by the peer"));
        }
        let keys = child_keys(
            cfg.prf,
            &self.keys.sk_d,
            gir.as_deref().map(|g| &g[..]),
            &req.ni,
            nr,
            child_sizes(&suite)?,
        )?;
        self.children.push(Child {
            requested_by_us: true,
            sa: ChildSa {
                spi_i: req.spi,
                spi_r: answer.spi,
                suite,
                keys,
                ts_i: answer.ts_i,
                ts_r: answer.ts_r,
                transport: answer.transport,
            },
        });
        Ok(match req.rekey {
            Some(old) => self.rekeyed(old, req.spi, lowest(&req.ni, nr), true),
            None => Event::ChildCreated { inbound: req.spi },
        })
    }

    /// Records a completed rekey of `old` into `new` and tells whether it collided with
    /// one the other side requested (RFC 7296 §2.8.1).
    fn rekeyed(&mut self, old: [u8; 4], new: [u8; 4], nonce: &[u8], by_us: bool) -> Event {
        let other = self
            .rekeys
            .iter()
            .find(|r| r.old == old && r.by_us != by_us)
            .map(|r| (r.new, nonce_lt(&r.lowest_nonce, nonce)));
        self.rekeys.push(RekeyRecord {
            old,
            new,
            lowest_nonce: nonce.to_vec(),
            by_us,
        });
        match other {
            None => Event::ChildRekeyed { old, new },
            Some((other_new, other_lowest)) => {
                // The exchange holding the lowest nonce made the redundant pair.
                let (redundant, requested_by_us) = if other_lowest {
                    (other_new, !by_us)
                } else {
                    (new, by_us)
                };
                Event::ChildRekeyCollision {
                    old,
                    new,
                    redundant: requested_by_us.then_some(redundant),
                }
            }
        }
    }

    /// Our answer to an INFORMATIONAL request: deletes are answered with the other half
    /// of each deleted Child SA (§1.4.1), an IKE SA delete with an empty response.
    fn answer_informational(
        &mut self,
        inner: &[Payload<'_>],
    ) -> (Vec<OwnedPayload>, Option<Event>) {
        let mut ike = false;
        let mut gone = Vec::new();
        for p in inner {
            if let Payload::Delete(d) = p {
                if d.protocol == protocol::IKE {
                    ike = true;
                } else if d.protocol == protocol::ESP {
                    let creating = matches!(&self.pending, Some((_, Request::CreateChild(_))));
                    for spi in d.iter() {
                        if let Some(c) = self.children.iter().find(|c| c.outbound() == spi) {
                            gone.push(c.inbound());
                        } else if creating {
                            // Perhaps the pair our request in flight is making: the peer
                            // made it, then deleted it before our response came back.
                            if let Ok(spi) = <[u8; 4]>::try_from(spi) {
                                self.orphan_deletes.push(spi);
                            }
                        }
                    }
                }
            }
        }
        if ike {
            return (vec![], Some(Event::IkeDeleted));
        }
        let mut event = Some(Event::PeerChecked);
        let mut out = Vec::new();
        for inbound in gone {
            event = Some(self.remove_child(inbound));
            out.push(OwnedPayload::EspDelete(inbound));
        }
        (out, event)
    }

    /// Our answer to the peer's IKE SA rekey: the response payloads and the new IKE SA
    /// (the peer is its initiator), or an error notification and no change.
    fn answer_ike_rekey(
        &mut self,
        inner: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<(Vec<OwnedPayload>, Established, Vec<u8>), Refusal> {
        let refuse = |ty: u16| (ty, Vec::new());
        let syntax = |_| refuse(notify::INVALID_SYNTAX);
        let rekeying = matches!(self.pending, Some((_, Request::RekeyIke(_))));
        if (self.pending.is_some() && !rekeying) || self.rekeyed_away || self.collision.is_some() {
            // Another request of ours is in flight (a Child SA change or a delete), or the
            // SA is already replaced (§2.25.2). A rekey of ours in flight is a
            // simultaneous rekey: answered as usual, settled later (§2.8.2).
            return Err(refuse(notify::TEMPORARY_FAILURE));
        }
        let cfg = self.cfg.clone();
        let (num, spi_i, ni) = offered::<8>(inner, &ike_proposal(&cfg, 1))?;
        let data = peer_ke(inner, cfg.group)?;
        let share = key_share(cfg.group, rng).map_err(syntax)?;
        let gir = share
            .agree(data)
            .map_err(|_| refuse(notify::INVALID_SYNTAX))?;
        let spi_r = spi8(rng);
        let nr = random_vec(rng, NONCE_LEN);
        let new = self
            .successor(false, spi_i, spi_r, &gir, ni, &nr)
            .map_err(syntax)?;
        let low = lowest(ni, &nr).to_vec();
        let out = vec![
            OwnedPayload::IkeSa(spi_r, num),
            OwnedPayload::Nonce(nr),
            OwnedPayload::Ke(share.group().id(), share.public().to_vec()),
        ];
        Ok((out, new, low))
    }

    /// Our answer to a CREATE_CHILD_SA request: the new pair, or an error notification
    /// (type and data) and no change.
    fn answer_create_child(
        &mut self,
        inner: &[Payload<'_>],
        policy: Option<Vec<ChildSuite>>,
        rng: &mut dyn Random,
    ) -> (Vec<OwnedPayload>, Option<Event>) {
        match self.create_child_for_peer(inner, policy, rng) {
            Ok(x) => x,
            Err((ty, data)) => (vec![OwnedPayload::Notify(ty, data)], None),
        }
    }

    fn create_child_for_peer(
        &mut self,
        inner: &[Payload<'_>],
        policy: Option<Vec<ChildSuite>>,
        rng: &mut dyn Random,
    ) -> Result<(Vec<OwnedPayload>, Option<Event>), Refusal> {
        let refuse = |ty: u16| (ty, Vec::new());
        let syntax = |_| refuse(notify::INVALID_SYNTAX);
        let cfg = self.cfg.clone();
        // Which pair is rekeyed: the notify carries the peer's inbound SPI, our outbound.
        let rekey = inner.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == notify::REKEY_SA => Some(n.spi),
            _ => None,
        });
        let old = match rekey {
            None => None,
            Some(spi) => {
                let c = self
                    .children
                    .iter()
                    .find(|c| c.outbound() == spi)
                    .ok_or(refuse(notify::CHILD_SA_NOT_FOUND))?;
                // Answered as usual even if we are rekeying the same pair ourselves
                // (RFC 7296 §2.25.1); the collision is settled when both are done.
                Some(c.inbound())
            }
        };
        // Pairs being replaced may briefly double the count during rekeys.
        let limit = if old.is_some() {
            cfg.max_child_sas.saturating_mul(2)
        } else {
            cfg.max_child_sas
        };
        if self.children.len() >= limit {
            return Err(refuse(notify::NO_ADDITIONAL_SAS));
        }
        // The peer's first proposal that policy (or the configuration) allows.
        let allowed = child_policy::allowed_suites(&cfg, policy);
        let Ok(Payload::Sa(props)) = one(inner, pt::SA, "SA") else {
            return Err(refuse(notify::INVALID_SYNTAX));
        };
        let dh = cfg.child.pfs.then_some(cfg.group);
        let (chosen, suite) =
            choose_child(props, &allowed, dh).ok_or(refuse(notify::NO_PROPOSAL_CHOSEN))?;
        let num = chosen.num;
        let spi_i: [u8; 4] = chosen
            .spi
            .try_into()
            .map_err(|_| refuse(notify::NO_PROPOSAL_CHOSEN))?;
        let ni = match one(inner, pt::NONCE, "Nonce") {
            Ok(Payload::Nonce(n)) if (16..=256).contains(&n.len()) => *n,
            _ => return Err(refuse(notify::INVALID_SYNTAX)),
        };
        let (share, gir) = if cfg.child.pfs {
            let data = peer_ke(inner, cfg.group)?;
            let share = key_share(cfg.group, rng).map_err(syntax)?;
            let gir = share
                .agree(data)
                .map_err(|_| refuse(notify::INVALID_SYNTAX))?;
            (Some(share), Some(gir))
        } else {
            (None, None)
        };
        let (tsi, tsr) = selectors(inner).map_err(syntax)?;
        let tsi = ts::narrow(tsi, &cfg.ts_remote);
        let tsr = ts::narrow(tsr, &cfg.ts_local);
        if tsi.is_empty() || tsr.is_empty() {
            return Err(refuse(notify::TS_UNACCEPTABLE));
        }
        let transport = cfg.child.transport && has_notify(inner, notify::USE_TRANSPORT_MODE);
        let spi_r = self.fresh_spi(rng);
        let nr = random_vec(rng, NONCE_LEN);
        let sizes = child_sizes(&suite).map_err(syntax)?;
        let gir_ref = gir.as_deref().map(|g| &g[..]);
        let keys = child_keys(cfg.prf, &self.keys.sk_d, gir_ref, ni, &nr, sizes)
            .map_err(|_| refuse(notify::INVALID_SYNTAX))?;
        let mut out = Vec::with_capacity(6);
        if transport {
            out.push(OwnedPayload::Notify(notify::USE_TRANSPORT_MODE, Vec::new()));
        }
        out.push(OwnedPayload::ChildSa(spi_r, num, suite));
        let low = lowest(ni, &nr).to_vec();
        out.push(OwnedPayload::Nonce(nr));
        if let Some(k) = &share {
            out.push(OwnedPayload::Ke(k.group().id(), k.public().to_vec()));
        }
        out.push(OwnedPayload::Ts(false, tsi.clone()));
        out.push(OwnedPayload::Ts(true, tsr.clone()));
        self.children.push(Child {
            requested_by_us: false,
            sa: ChildSa {
                spi_i,
                spi_r,
                suite,
                keys,
                ts_i: tsi,
                ts_r: tsr,
                transport,
            },
        });
        let event = match old {
            Some(old) => self.rekeyed(old, spi_r, &low, false),
            None => Event::ChildCreated { inbound: spi_r },
        };
        Ok((out, Some(event)))
    }
}

/// A refusal: the error notification type and its data.
type Refusal = (u16, Vec<u8>);

/// In a CREATE_CHILD_SA request: the first proposal of `wanted`'s protocol offering our
/// transforms with an `N`-byte SPI, and the nonce. Returns the proposal number, the SPI and
/// the nonce.
fn offered<'m, const N: usize>(
    inner: &'m [Payload<'_>],
    wanted: &Proposal<'_>,
) -> Result<(u8, [u8; N], &'m [u8]), Refusal> {
    let syntax = (notify::INVALID_SYNTAX, Vec::new());
    let Ok(Payload::Sa(props)) = one(inner, pt::SA, "SA") else {
        return Err(syntax);
    };
    let (num, spi) = props
        .iter()
        .filter(|p| p.protocol == wanted.protocol && offers(p, &wanted.transforms))
        .find_map(|p| Some((p.num, <[u8; N]>::try_from(p.spi).ok()?)))
        .ok_or((notify::NO_PROPOSAL_CHOSEN, Vec::new()))?;
    match one(inner, pt::NONCE, "Nonce") {
        Ok(Payload::Nonce(n)) if (16..=256).contains(&n.len()) => Ok((num, spi, n)),
        _ => Err(syntax),
    }
}

/// In a CREATE_CHILD_SA request: the KE payload's public value, which must be of `group`
/// (else INVALID_KE_PAYLOAD naming it, RFC 7296 §1.3).
fn peer_ke<'m>(inner: &'m [Payload<'_>], group: Group) -> Result<&'m [u8], Refusal> {
    match one(inner, pt::KE, "KE") {
        Ok(Payload::Ke { group: g, data }) if *g == group.id() => Ok(data),
        Ok(Payload::Ke { .. }) => Err((
            notify::INVALID_KE_PAYLOAD,
            group.id().to_be_bytes().to_vec(),
        )),
        _ => Err((notify::INVALID_SYNTAX, Vec::new())),
    }
}

/// Payloads of a response, owned until they are sealed.
#[derive(Debug)]
enum OwnedPayload {
    EspDelete([u8; 4]),
    Notify(u16, Vec<u8>),
    /// Our ESP proposal of this suite with this SPI and proposal number.
    ChildSa([u8; 4], u8, ChildSuite),
    /// Our IKE proposal with this (new IKE SA) SPI and proposal number.
    IkeSa([u8; 8], u8),
    Nonce(Zeroizing<Vec<u8>>),
    Ke(u16, Vec<u8>),
    /// TSi (false) or TSr (true).
    Ts(bool, Vec<TrafficSelector>),
}

impl OwnedPayload {
    fn as_payload<'a>(&'a self, cfg: &IkeConfig) -> Payload<'a> {
        match self {
            Self::EspDelete(spi) => esp_delete(spi),
            Self::Notify(ty, data) => notify_payload(*ty, data),
            Self::ChildSa(spi, num, suite) => {
                let mut p = esp_proposal(suite, spi, *num);
                if cfg.child.pfs {
                    p.transforms.push(plain(transform::DH, cfg.group.id()));
                }
                Payload::Sa(vec![p])
            }
            Self::IkeSa(spi, num) => Payload::Sa(vec![ike_proposal_with_spi(cfg, *num, spi)]),
            Self::Nonce(n) => Payload::Nonce(n),
            Self::Ke(group, data) => Payload::Ke {
                group: *group,
                data,
            },
            Self::Ts(false, s) => Payload::TsI(s.clone()),
            Self::Ts(true, s) => Payload::TsR(s.clone()),
        }
    }
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    struct Counter(u64);

    impl Random for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                *b = (self.0 >> 56) as u8;
            }
        }
    }

    fn established() -> (Established, Established) {
        let cfg = crate::fuzz_support::fuzz_config();
        let path = crate::fuzz_support::fuzz_path().reversed();
        let jar = CookieJar::new(&[1; 32]);
        let ctx = InitContext {
            path: path.reversed(),
            cookies: &jar,
            require_cookie: false,
        };
        let (mut ri, mut rr) = (Counter(1), Counter(2));
        let now = Instant::now();
        let i1 = ExpectSaInitResp::start(cfg.clone(), path, now, &mut ri).unwrap();
        let (r1, m2) = respond_sa_init(&cfg, i1.request(), &ctx, &mut rr).unwrap();
        let Step::Next {
            state: i2,
            reply: Some(m3),
        } = i1.handle(&m2, now, &mut ri)
        else {
            panic!()
        };
        let Step::Next {
            state: r2,
            reply: Some(m4),
        } = r1.handle(&m3, &mut rr)
        else {
            panic!()
        };
        let Step::Next { state: i3, .. } = i2.handle(&m4) else {
            panic!()
        };
        (i3, r2)
    }

    #[test]
    fn message_id_wrap_forces_rekey() {
        let (mut i, mut r) = established();
        let mut rng = Counter(9);
        let now = Instant::now();
        // Both sides jump to the last two message IDs.
        i.next_request_id = u32::MAX - 1;
        r.expect_request_id = u64::from(u32::MAX - 1);
        let req = i.check_liveness(now, &mut rng).unwrap();
        let out = r.handle(&req, &mut rng).unwrap();
        assert_eq!(
            i.handle(&out.reply.unwrap(), &mut rng).unwrap().event,
            Some(Event::Alive)
        );
        // u32::MAX is never used: the SA must be rekeyed.
        assert_eq!(i.next_message_id(), u32::MAX);
        assert_eq!(i.check_liveness(now, &mut rng), Err(IkeError::NeedsRekey));
        assert_eq!(i.delete_ike(now, &mut rng), Err(IkeError::NeedsRekey));
        // A peer that used 0xffffffff cannot go on with 0.
        r.expect_request_id = u64::from(u32::MAX);
        let k = i.ike_keys();
        let suite = SkSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
        };
        let to_r = SkCipher::new(suite, &k.sk_ei, &k.sk_ai).unwrap();
        let forge = |id: u32| {
            let h = header(
                i.spi_i,
                i.spi_r,
                exchange::INFORMATIONAL,
                flags::INITIATOR,
                id,
            );
            to_r.seal(&h, &[], &[5; 8]).unwrap()
        };
        assert!(r.handle(&forge(u32::MAX), &mut rng).is_ok());
        assert!(r.handle(&forge(0), &mut rng).is_err(), "message ID wrapped");
    }

    /// The initiator's CREATE_CHILD_SA request `req` with an AH proposal put before its
    /// ESP ones (sealed again with the initiator's keys).
    fn with_ah_first(i: &Established, r: &Established, req: &[u8], rng: &mut Counter) -> Vec<u8> {
        let mut plain = Zeroizing::new(Vec::new());
        let (h, mut inner) = r.ciphers.inp.open(req, &mut plain).unwrap();
        for p in &mut inner {
            if let Payload::Sa(props) = p {
                let mut ah = props[0].clone();
                ah.protocol = protocol::AH;
                for p in props.iter_mut() {
                    p.num += 1;
                }
                props.insert(0, ah);
            }
        }
        i.ciphers.seal(&h, &inner, rng).unwrap()
    }

    /// The notification type a refused CREATE_CHILD_SA response brings back.
    fn refusal(i: &mut Established, reply: &[u8], rng: &mut Counter) -> IkeError {
        match i.handle(reply, rng).unwrap().event {
            Some(Event::ChildFailed(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ah_proposal_does_not_skip_the_policy() {
        let (mut i, mut r) = established();
        r.cfg.child_policy_required = true;
        let mut rng = Counter(7);
        let now = Instant::now();
        let req = i.create_child(None, now, &mut rng).unwrap();
        let req = with_ah_first(&i, &r, &req, &mut rng);
        // Seen as a Child SA request, so the caller asks its policy.
        let seen = r.child_request(&req).unwrap();
        assert!(seen.rekey.is_none() && !seen.ts_local.is_empty());
        // Not asked (no answer set): refused, whatever the configuration allows.
        let out = r.handle(&req, &mut rng).unwrap();
        assert_eq!(
            refusal(&mut i, &out.reply.unwrap(), &mut rng),
            IkeError::PeerNotify(notify::NO_PROPOSAL_CHOSEN)
        );
        // Asked, and policy allows the suite: the ESP proposal (number 2) is chosen.
        let req = i.create_child(None, now, &mut rng).unwrap();
        let req = with_ah_first(&i, &r, &req, &mut rng);
        r.set_child_policy(r.cfg.child_suites());
        let out = r.handle(&req, &mut rng).unwrap();
        assert!(matches!(out.event, Some(Event::ChildCreated { .. })));
        assert_eq!(r.children.last().unwrap().sa.suite, r.cfg.child);
    }

    #[test]
    fn child_sas_per_ike_sa_are_capped() {
        let (mut i, mut r) = established();
        let mut rng = Counter(8);
        let now = Instant::now();
        let before = r.children.len();
        r.cfg.max_child_sas = before + 1;
        let req = i.create_child(None, now, &mut rng).unwrap();
        let out = r.handle(&req, &mut rng).unwrap();
        assert!(matches!(out.event, Some(Event::ChildCreated { .. })));
        let created = i.handle(&out.reply.unwrap(), &mut rng).unwrap().event;
        assert!(matches!(created, Some(Event::ChildCreated { .. })));
        // At the cap: a new pair is refused with NO_ADDITIONAL_SAS, nothing is kept.
        let req = i.create_child(None, now, &mut rng).unwrap();
        let out = r.handle(&req, &mut rng).unwrap();
        assert!(out.event.is_none());
        assert_eq!(
            refusal(&mut i, &out.reply.unwrap(), &mut rng),
            IkeError::PeerNotify(notify::NO_ADDITIONAL_SAS)
        );
        assert_eq!(r.children.len(), before + 1);
        // A rekey of an existing pair still goes through.
        let spi = i.children[0].inbound();
        let req = i.create_child(Some(spi), now, &mut rng).unwrap();
        let out = r.handle(&req, &mut rng).unwrap();
        assert!(
            matches!(out.event, Some(Event::ChildRekeyed { .. })),
            "{:?}",
            out.event
        );
    }
}
