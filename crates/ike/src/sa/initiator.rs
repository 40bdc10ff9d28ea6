//! The initiator's states: IKE_SA_INIT request sent ([`ExpectSaInitResp`]), then
//! IKE_AUTH request sent ([`ExpectAuthResp`]).

use super::*;

/// Initiator, IKE_SA_INIT request sent.
#[derive(Debug)]
pub struct ExpectSaInitResp {
    cfg: IkeConfig,
    spi_i: [u8; 8],
    share: KeyShare,
    ni: Zeroizing<Vec<u8>>,
    pending: Pending,
    cookie_retries: u8,
    /// The responder's cookie, sent again with a request in another group.
    cookie: Option<Vec<u8>>,
    /// The request was already sent again in the group an INVALID_KE_PAYLOAD named.
    ke_retried: bool,
    path: Path,
}

/// How many COOKIE answers the initiator follows before giving up (a responder that
/// keeps asking is broken or hostile).
const MAX_COOKIE_RETRIES: u8 = 2;

fn sa_init_request(
    cfg: &IkeConfig,
    spi_i: [u8; 8],
    share: &KeyShare,
    ni: &[u8],
    cookie: Option<&[u8]>,
    path: Path,
) -> Result<Vec<u8>, IkeError> {
    let nat = nat_notifies(&spi_i, &[0; 8], path);
    let mut payloads = Vec::with_capacity(6);
    if let Some(c) = cookie {
        payloads.push(notify_payload(notify::COOKIE, c));
    }
    payloads.push(Payload::Sa(proposals::offered(cfg)));
    payloads.push(Payload::Ke {
        group: share.group().id(),
        data: share.public(),
    });
    payloads.push(Payload::Nonce(ni));
    let hashes = cfg
        .cert
        .as_ref()
        .map(|c| crate::cert::hash_notify_data(&c.hashes));
    if let Some(h) = &hashes {
        payloads.push(notify_payload(notify::SIGNATURE_HASH_ALGORITHMS, h));
    }
    payloads.push(notify_payload(notify::NAT_DETECTION_SOURCE_IP, &nat[0]));
    payloads.push(notify_payload(
        notify::NAT_DETECTION_DESTINATION_IP,
        &nat[1],
    ));
    if cfg.fragment_len.is_some() {
        payloads.push(notify_payload(notify::IKEV2_FRAGMENTATION_SUPPORTED, &[]));
    }
    Message {
        header: header(spi_i, [0; 8], exchange::IKE_SA_INIT, flags::INITIATOR, 0),
        payloads,
    }
    .emit()
    .map_err(|_| IkeError::Unexpected("IKE_SA_INIT request cannot be encoded"))
}

impl ExpectSaInitResp {
    /// Builds the IKE_SA_INIT request (take it with [`ExpectSaInitResp::request`] and send
    /// it on `path`; the response is expected back on the same path). The request carries
    /// NAT detection notifications for `path`.
    ///
    /// # Errors
    /// Only for a configuration this crate cannot run.
    pub fn start(
        cfg: IkeConfig,
        path: Path,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Self, IkeError> {
        for p in cfg.ike_proposals() {
            p.suite.key_sizes()?;
        }
        for c in cfg.child_suites() {
            child_sizes(&c)?;
        }
        let spi_i = spi8(rng);
        let share = key_share(cfg.group, rng)?;
        let ni = random_vec(rng, NONCE_LEN);
        let packet = sa_init_request(&cfg, spi_i, &share, &ni, None, path)?;
        let pending = Pending::new(packet, now, cfg.backoff);
        Ok(Self {
            cfg,
            spi_i,
            share,
            ni,
            pending,
            cookie_retries: 0,
            cookie: None,
            ke_retried: false,
            path,
        })
    }

    /// The current request (RealMessage1): the first one, or the one carrying the
    /// responder's cookie after a COOKIE answer.
    #[must_use]
    pub fn request(&self) -> &[u8] {
        &self.pending.packet
    }

    /// When [`ExpectSaInitResp::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.pending.next
    }

    /// The retransmission due at `now` (the same bytes as the first send), if any.
    ///
    /// # Errors
    /// [`IkeError::Timeout`] after the last retransmission went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<&[u8]>, IkeError> {
        self.pending.on_timeout(now, self.cfg.backoff)
    }

    /// Handles a datagram that may be the IKE_SA_INIT response.
    pub fn handle(
        self,
        datagram: &[u8],
        now: Instant,
        rng: &mut dyn Random,
    ) -> Step<Self, ExpectAuthResp> {
        let m = match Message::parse(datagram) {
            Ok(m) => m,
            Err(e) => return stay(self, e.into()),
        };
        let h = m.header;
        if h.exchange != exchange::IKE_SA_INIT
            || !h.is_response()
            || h.is_initiator()
            || h.message_id != 0
            || h.spi_i != self.spi_i
        {
            return stay(self, IkeError::Unexpected("not our IKE_SA_INIT response"));
        }
        // A COOKIE answer (RFC 7296 §2.6): send the request again with the cookie as the
        // first payload and every other payload unchanged; the schedule starts over.
        if let [Payload::Notify(n)] = m.payloads.as_slice() {
            if n.ty == notify::COOKIE {
                return self.retry_with_cookie(n.data, now);
            }
        }
        // INVALID_KE_PAYLOAD (RFC 7296 §1.2): the responder wants another of our groups.
        if let Some(Payload::Notify(n)) = m
            .payloads
            .iter()
            .find(|p| matches!(p, Payload::Notify(n) if n.ty == notify::INVALID_KE_PAYLOAD))
        {
            return self.retry_with_group(n.data, now, rng);
        }
        // Error notifications in the response end the attempt (RFC 7296 §2.21.1): the
        // responder refused, and waiting would only lead to a timeout.
        if let Some(n) = error_notify(&m.payloads) {
            return Step::Failed {
                error: IkeError::PeerNotify(n),
                reply: None,
            };
        }
        match self.accept_init_response(&m, datagram, now, rng) {
            Ok(next) => {
                let reply = Some(next.pending.packet.clone());
                Step::Next { state: next, reply }
            }
            // The response is not authenticated: one that does not fit (forged, corrupted,
            // another proposal, a bad KE value) is dropped and the wait goes on, so that
            // an attacker cannot end the exchange with a single packet (RFC 7296 §2.21).
            Err(e) => stay(self, e),
        }
    }

    fn retry_with_cookie(mut self, cookie: &[u8], now: Instant) -> Step<Self, ExpectAuthResp> {
        if cookie.is_empty() || cookie.len() > 64 {
            return stay(self, IkeError::Unexpected("COOKIE data not 1 to 64 bytes"));
        }
        if self.cookie_retries >= MAX_COOKIE_RETRIES {
            return Step::Failed {
                error: IkeError::CookieRequired,
                reply: None,
            };
        }
        match sa_init_request(
            &self.cfg,
            self.spi_i,
            &self.share,
            &self.ni,
            Some(cookie),
            self.path,
        ) {
            Ok(packet) => {
                self.cookie_retries += 1;
                self.cookie = Some(cookie.to_vec());
                self.pending = Pending::new(packet.clone(), now, self.cfg.backoff);
                Step::Stay {
                    state: self,
                    reply: Some(packet),
                    dropped: None,
                }
            }
            Err(e) => Step::Failed {
                error: e,
                reply: None,
            },
        }
    }

    /// Sends the request again with a key share in the group the responder named, if
    /// it is one of ours and this is the first such answer; otherwise the exchange fails.
    fn retry_with_group(
        mut self,
        data: &[u8],
        now: Instant,
        rng: &mut dyn Random,
    ) -> Step<Self, ExpectAuthResp> {
        let wanted = <[u8; 2]>::try_from(data)
            .ok()
            .map(u16::from_be_bytes)
            .and_then(|id| {
                self.cfg
                    .ike_proposals()
                    .iter()
                    .map(|p| p.group)
                    .find(|g| g.id() == id)
            });
        let fail = |error| Step::Failed { error, reply: None };
        let Some(group) = wanted else {
            return fail(IkeError::PeerNotify(notify::INVALID_KE_PAYLOAD));
        };
        if self.ke_retried || group == self.share.group() {
            return fail(IkeError::InvalidKePayload(group.id()));
        }
        let share = match key_share(group, rng) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let packet = match sa_init_request(
            &self.cfg,
            self.spi_i,
            &share,
            &self.ni,
            self.cookie.as_deref(),
            self.path,
        ) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        self.share = share;
        self.ke_retried = true;
        self.pending = Pending::new(packet.clone(), now, self.cfg.backoff);
        Step::Stay {
            state: self,
            reply: Some(packet),
            dropped: None,
        }
    }

    fn accept_init_response(
        &self,
        m: &Message<'_>,
        datagram: &[u8],
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<ExpectAuthResp, IkeError> {
        let spi_r = m.header.spi_r;
        if spi_r == [0; 8] {
            return Err(IkeError::Unexpected("responder SPI zero"));
        }
        let Payload::Sa(props) = one(&m.payloads, pt::SA, "SA")? else {
            return Err(IkeError::MissingPayload("SA"));
        };
        let chosen = match props.as_slice() {
            [p] => proposals::answered(&self.cfg, p).ok_or(IkeError::NoProposalChosen)?,
            _ => return Err(IkeError::NoProposalChosen),
        };
        let Payload::Ke { group, data } = one(&m.payloads, pt::KE, "KE")? else {
            return Err(IkeError::MissingPayload("KE"));
        };
        let ours = self.share.group();
        if *group != ours.id() || chosen.group != ours {
            return Err(IkeError::InvalidKePayload(ours.id()));
        }
        // From here on the SA runs with the proposal the responder chose.
        let cfg = &self.cfg.with_proposal(chosen);
        let Payload::Nonce(nr) = one(&m.payloads, pt::NONCE, "Nonce")? else {
            return Err(IkeError::MissingPayload("Nonce"));
        };
        if !(16..=256).contains(&nr.len()) {
            return Err(IkeError::Unexpected("nonce length outside 16..=256"));
        }
        let keys = derive(cfg, &self.share, data, &self.ni, nr, &self.spi_i, &spi_r)?;
        let ciphers = Ciphers::new(cfg.suite, &keys, true)?;

        // IKE_AUTH request: SK{IDi, AUTH, SAi2, TSi, TSr}.
        let idi = cfg.local_id.as_id();
        let peer_hashes = peer_sig_hashes(&m.payloads);
        let (method, auth) = own_auth(cfg, &peer_hashes, self.request(), nr, &keys.sk_pi, &idi)?;
        let certreq = cfg.cert.as_ref().map(CertAuth::certreq_data);
        let child_spi = spi4(rng);
        let mut inner = vec![Payload::IdI(idi)];
        inner.extend(cert_payloads(cfg));
        if cfg.initial_contact {
            inner.push(notify_payload(notify::INITIAL_CONTACT, &[]));
        }
        if let Some(data) = &certreq {
            inner.push(Payload::CertReq(CertData {
                encoding: crate::cert::ENCODING_X509_SIGNATURE,
                data,
            }));
        }
        inner.push(Payload::Auth(Auth {
            method,
            data: &auth,
        }));
        if cfg.child.transport {
            inner.push(notify_payload(notify::USE_TRANSPORT_MODE, &[]));
        }
        inner.push(Payload::Sa(child_proposals(
            &cfg.child_suites(),
            &child_spi,
            None,
        )));
        inner.push(Payload::TsI(cfg.ts_local.clone()));
        inner.push(Payload::TsR(cfg.ts_remote.clone()));
        let h = header(self.spi_i, spi_r, exchange::IKE_AUTH, flags::INITIATOR, 1);
        let packet = ciphers.seal(&h, &inner, rng)?;
        Ok(ExpectAuthResp {
            cfg: cfg.clone(),
            spi_i: self.spi_i,
            spi_r,
            keys,
            ciphers,
            ni: self.ni.clone(),
            nr: Zeroizing::new(nr.to_vec()),
            init_response: datagram.to_vec(),
            nat: detect_nat(&m.payloads, &self.spi_i, &spi_r, self.path),
            child_spi,
            pending: Pending::new(packet, now, cfg.backoff),
            frag: Frag::new(
                cfg.fragment_len,
                has_notify(&m.payloads, notify::IKEV2_FRAGMENTATION_SUPPORTED),
            ),
        })
    }
}

/// Initiator, IKE_AUTH request sent.
#[derive(Debug)]
pub struct ExpectAuthResp {
    nat: Option<NatStatus>,
    cfg: IkeConfig,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    keys: IkeKeys,
    ciphers: Ciphers,
    ni: Zeroizing<Vec<u8>>,
    nr: Zeroizing<Vec<u8>>,
    init_response: Vec<u8>,
    child_spi: [u8; 4],
    pending: Pending,
    frag: Frag,
}

impl ExpectAuthResp {
    /// The IKE_AUTH request as first sent.
    #[must_use]
    pub fn request(&self) -> &[u8] {
        &self.pending.packet
    }

    /// What NAT detection found (`None`: the responder does not do NAT traversal). With
    /// a NAT the IKE_AUTH request and everything after it go to port 4500 with the
    /// non-ESP marker (RFC 7296 §2.23): the caller sends them there.
    #[must_use]
    pub fn nat(&self) -> Option<NatStatus> {
        self.nat
    }

    /// The IKE SA keys derived from IKE_SA_INIT (the peer is not authenticated yet: no
    /// Child SA key is available before [`Established`]).
    #[must_use]
    pub fn ike_keys(&self) -> &IkeKeys {
        &self.keys
    }

    /// The datagrams that carry the IKE_AUTH request `msg` (as [`Established::datagrams`]).
    pub fn datagrams(&mut self, msg: &[u8], rng: &mut dyn Random) -> Vec<Vec<u8>> {
        self.frag.datagrams(&self.ciphers.out, msg, rng)
    }

    /// Whether both sides announced IKE fragmentation support (RFC 7383).
    #[must_use]
    pub fn fragmentation(&self) -> bool {
        self.frag.active()
    }

    /// When [`ExpectAuthResp::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.pending.next
    }

    /// The retransmission due at `now` (the same bytes as the first send), if any.
    ///
    /// # Errors
    /// [`IkeError::Timeout`] after the last retransmission went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<&[u8]>, IkeError> {
        self.pending.on_timeout(now, self.cfg.backoff)
    }

    /// Handles a datagram that may be the IKE_AUTH response.
    pub fn handle(mut self, datagram: &[u8]) -> Step<Self, Established> {
        let mut plain = Zeroizing::new(Vec::new());
        let (h, inner) = match fragments::open_auth(
            &mut self.frag,
            &self.ciphers.inp,
            datagram,
            &mut plain,
            true,
        ) {
            Ok(Some(x)) => x,
            Ok(None) => return fragments::waiting(self),
            // Bad ICV or garbage: silent drop, keep waiting (RFC 7296 §2.21.1).
            Err(e) => return stay(self, e),
        };
        if h.exchange != exchange::IKE_AUTH
            || !h.is_response()
            || h.is_initiator()
            || h.message_id != 1
            || h.spi_i != self.spi_i
            || h.spi_r != self.spi_r
        {
            return stay(self, IkeError::Unexpected("not our IKE_AUTH response"));
        }
        // An error about the Child SA alone, in a response that authenticates the
        // responder, leaves the IKE SA up without a Child SA (RFC 7296 §1.2, §2.21.2).
        let child_refused = match error_notify(&inner) {
            Some(n) if child_only_error(n) && has_auth(&inner) => Some(IkeError::PeerNotify(n)),
            Some(n) => {
                return Step::Failed {
                    error: IkeError::PeerNotify(n),
                    reply: None,
                }
            }
            None => None,
        };
        match self.accept_auth_response(&inner, child_refused) {
            Ok(est) => Step::Next {
                state: est,
                reply: None,
            },
            Err(e) => Step::Failed {
                error: e,
                reply: None,
            },
        }
    }

    fn accept_auth_response(
        &mut self,
        inner: &[Payload<'_>],
        child_refused: Option<IkeError>,
    ) -> Result<Established, IkeError> {
        let cfg = &self.cfg;
        let proof = authenticate_peer(
            cfg,
            inner,
            pt::IDR,
            &self.init_response,
            &self.ni,
            &self.keys.sk_pr,
        )?;
        let children = if child_refused.is_some() {
            Vec::new()
        } else {
            let suites = cfg.child_suites();
            let wanted = child_proposals(&suites, &[], None);
            let answer = child_answer(cfg, inner, &wanted, &cfg.ts_local, &cfg.ts_remote)?;
            let suite = *suites
                .get(answer.chosen)
                .ok_or(IkeError::NoProposalChosen)?;
            let keys = auth_child_keys(cfg, &self.keys, &self.ni, &self.nr, &suite)?;
            vec![Child {
                requested_by_us: true,
                sa: ChildSa {
                    spi_i: self.child_spi,
                    spi_r: answer.spi,
                    suite,
                    keys,
                    ts_i: answer.ts_i,
                    ts_r: answer.ts_r,
                    transport: answer.transport,
                },
            }]
        };
        Ok(Established {
            nat: self.nat,
            initiator: true,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            keys: self.keys.clone(),
            cfg: cfg.clone(),
            children,
            unused_spi: child_refused.map(|_| self.child_spi),
            child_refused,
            rekeys: Vec::new(),
            orphan_deletes: Vec::new(),
            cached: None,
            peer_initial_contact: false,
            ciphers: Ciphers::new(cfg.suite, &self.keys, true)?,
            frag: core::mem::take(&mut self.frag),
            collision: None,
            rekeyed_away: false,
            backoff: cfg.backoff,
            next_request_id: 2,
            expect_request_id: 0,
            pending: None,
            closed: false,
            child_policy: None,
            _auth: proof,
        })
    }
}
