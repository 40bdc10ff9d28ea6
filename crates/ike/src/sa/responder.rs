//! The responder: IKE_SA_INIT answered statelessly or into a half-open SA
//! ([`respond_sa_init`], with [`CookieJar`] under load), then IKE_AUTH
//! ([`ExpectAuthReq`]).

use super::*;

/// What the responder does with an IKE_SA_INIT request it does not accept.
#[derive(Debug)]
pub enum InitRejected {
    /// Drop it silently (malformed, not a request, IKEv1...).
    Drop(IkeError),
    /// Answer with an unprotected error notification and keep no state.
    Reply(IkeError, Vec<u8>),
}

fn init_error_reply(req: &Header, spi_r: [u8; 8], ty: u16, data: &[u8]) -> Option<Vec<u8>> {
    Message {
        header: header(req.spi_i, spi_r, exchange::IKE_SA_INIT, flags::RESPONSE, 0),
        payloads: vec![notify_payload(ty, data)],
    }
    .emit()
    .ok()
}

/// The stateless cookies of RFC 7296 §2.6.
///
/// `Cookie = <VersionIDofSecret> | HMAC-SHA-256(secret, Ni | IPi | SPIi)`: one version
/// byte and 32 bytes of MAC. The secret is rotated by the caller ([`CookieJar::rotate`]);
/// cookies made with the current or the previous secret are accepted, so a rotation does
/// not break exchanges in flight.
pub struct CookieJar {
    current: (u8, Zeroizing<Vec<u8>>),
    previous: Option<(u8, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("version", &self.current.0)
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar with `secret` (random bytes from the caller, at least 32) as version 0.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            current: (0, Zeroizing::new(secret.to_vec())),
            previous: None,
        }
    }

    /// Replaces the secret; the old one is still accepted until the next rotation.
    pub fn rotate(&mut self, secret: &[u8]) {
        let version = self.current.0.wrapping_add(1);
        let old = core::mem::replace(
            &mut self.current,
            (version, Zeroizing::new(secret.to_vec())),
        );
        self.previous = Some(old);
    }

    fn mac(secret: &[u8], ni: &[u8], ip: &IpAddr, spi_i: &[u8; 8]) -> Zeroizing<Vec<u8>> {
        let ip = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        PrfAlg::HmacSha256.prf(secret, &[ni, &ip, spi_i])
    }

    /// The cookie for an initiator.
    #[must_use]
    pub fn make(&self, ni: &[u8], ip: &IpAddr, spi_i: &[u8; 8]) -> Vec<u8> {
        let mut c = vec![self.current.0];
        c.extend_from_slice(&Self::mac(&self.current.1, ni, ip, spi_i));
        c
    }

    /// Whether `cookie` is one this jar made (current or previous secret) for these values.
    #[must_use]
    pub fn check(&self, cookie: &[u8], ni: &[u8], ip: &IpAddr, spi_i: &[u8; 8]) -> bool {
        let Some((version, mac)) = cookie.split_first() else {
            return false;
        };
        let secret = if *version == self.current.0 {
            &self.current.1
        } else {
            match &self.previous {
                Some((v, s)) if v == version => s,
                _ => return false,
            }
        };
        let want = Self::mac(secret, ni, ip, spi_i);
        want.len() == mac.len() && bool::from(want.ct_eq(mac))
    }
}

/// What the responder knows about an IKE_SA_INIT request besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct InitContext<'a> {
    /// The path the request arrived on: `remote` is its source (IPi of the cookie,
    /// and the address NAT detection checks), `local` the address it was sent to.
    pub path: Path,
    /// The cookie secrets.
    pub cookies: &'a CookieJar,
    /// Whether a valid cookie is required: the caller sets it while the number of
    /// half-open SAs is above its threshold (RFC 7296 §2.6). Requests without one then
    /// get only a COOKIE notification and leave no state.
    pub require_cookie: bool,
}

/// Handles an IKE_SA_INIT request: on success returns the new half-open SA and the
/// response to send (also cached in the state for retransmitted requests).
///
/// # Errors
/// [`InitRejected`]: silent drop, or COOKIE / NO_PROPOSAL_CHOSEN / INVALID_KE_PAYLOAD /
/// INVALID_SYNTAX / INVALID_MAJOR_VERSION / UNSUPPORTED_CRITICAL_PAYLOAD replies.
pub fn respond_sa_init(
    cfg: &IkeConfig,
    datagram: &[u8],
    ctx: &InitContext<'_>,
    rng: &mut dyn Random,
) -> Result<(ExpectAuthReq, Vec<u8>), InitRejected> {
    let m = match Message::parse(datagram) {
        Ok(m) => m,
        Err(e) => {
            // Answer only what is recognisably an IKEv2 initial request.
            let reply = Header::parse_any_version(datagram)
                .ok()
                .and_then(|(h, _, _)| {
                    let initial = h.exchange == exchange::IKE_SA_INIT
                        && !h.is_response()
                        && h.spi_r == [0; 8];
                    let n = e.notify()?;
                    if initial {
                        init_error_reply(&h, [0; 8], n, &[])
                    } else {
                        None
                    }
                });
            return Err(match reply {
                Some(r) => InitRejected::Reply(e.into(), r),
                None => InitRejected::Drop(e.into()),
            });
        }
    };
    let h = m.header;
    if h.exchange != exchange::IKE_SA_INIT
        || h.is_response()
        || !h.is_initiator()
        || h.message_id != 0
        || h.spi_r != [0; 8]
    {
        return Err(InitRejected::Drop(IkeError::Unexpected(
            "not an initial IKE_SA_INIT request",
        )));
    }
    let get = |ty, name| one(&m.payloads, ty, name).map_err(InitRejected::Drop);
    let Payload::Nonce(ni) = get(pt::NONCE, "Nonce")? else {
        return Err(InitRejected::Drop(IkeError::MissingPayload("Nonce")));
    };
    if !(16..=256).contains(&ni.len()) {
        return Err(InitRejected::Drop(IkeError::Unexpected(
            "nonce length outside 16..=256",
        )));
    }
    if ctx.require_cookie {
        // The cookie must be the first payload (RFC 7296 §2.6); checked before any
        // other work, and a request without a valid one leaves no state.
        let valid = matches!(
            m.payloads.first(),
            Some(Payload::Notify(n)) if n.ty == notify::COOKIE
                && ctx.cookies.check(n.data, ni, &ctx.path.remote.ip(), &h.spi_i)
        );
        if !valid {
            let cookie = ctx.cookies.make(ni, &ctx.path.remote.ip(), &h.spi_i);
            return Err(
                match init_error_reply(&h, [0; 8], notify::COOKIE, &cookie) {
                    Some(r) => InitRejected::Reply(IkeError::CookieRequired, r),
                    None => InitRejected::Drop(IkeError::CookieRequired),
                },
            );
        }
    }
    let Payload::Sa(props) = get(pt::SA, "SA")? else {
        return Err(InitRejected::Drop(IkeError::MissingPayload("SA")));
    };
    let Payload::Ke { group, data: ke } = get(pt::KE, "KE")? else {
        return Err(InitRejected::Drop(IkeError::MissingPayload("KE")));
    };
    let Some((chosen_num, chosen)) = proposals::choose(cfg, props, *group) else {
        let r = init_error_reply(&h, [0; 8], notify::NO_PROPOSAL_CHOSEN, &[]);
        return Err(match r {
            Some(r) => InitRejected::Reply(IkeError::NoProposalChosen, r),
            None => InitRejected::Drop(IkeError::NoProposalChosen),
        });
    };
    if *group != chosen.group.id() {
        // RFC 7296 §1.2: name the group of the chosen proposal; no state is kept.
        let want = chosen.group.id().to_be_bytes();
        let e = IkeError::InvalidKePayload(chosen.group.id());
        return Err(
            match init_error_reply(&h, [0; 8], notify::INVALID_KE_PAYLOAD, &want) {
                Some(r) => InitRejected::Reply(e, r),
                None => InitRejected::Drop(e),
            },
        );
    }
    let cfg = &cfg.with_proposal(chosen);
    let fail = |e: IkeError| InitRejected::Drop(e);
    let share = key_share(cfg.group, rng).map_err(fail)?;
    let spi_r = spi8(rng);
    let nr = random_vec(rng, NONCE_LEN);
    // The peer's KE value is checked (RFC 6989) before any state is kept.
    let keys = derive(cfg, &share, ke, ni, &nr, &h.spi_i, &spi_r).map_err(|e| {
        match init_error_reply(&h, [0; 8], notify::INVALID_SYNTAX, &[]) {
            Some(r) => InitRejected::Reply(e, r),
            None => InitRejected::Drop(e),
        }
    })?;
    let ciphers = Ciphers::new(cfg.suite, &keys, false).map_err(fail)?;
    // The initiator hashed a zero SPIr into its request's NAT detection data.
    let nat = detect_nat(&m.payloads, &h.spi_i, &[0; 8], ctx.path);
    let our_nat = nat_notifies(&h.spi_i, &spi_r, ctx.path);
    let mut payloads = vec![
        Payload::Sa(vec![ike_proposal(cfg, chosen_num)]),
        Payload::Ke {
            group: cfg.group.id(),
            data: share.public(),
        },
        Payload::Nonce(&nr),
    ];
    // With certificates: the hashes we verify (RFC 7427 §4) and the trust anchors we
    // accept (RFC 7296 §3.7).
    let cert_extra = cfg
        .cert
        .as_ref()
        .map(|c| (crate::cert::hash_notify_data(&c.hashes), c.certreq_data()));
    if let Some((hashes, certreq)) = &cert_extra {
        payloads.push(Payload::CertReq(CertData {
            encoding: crate::cert::ENCODING_X509_SIGNATURE,
            data: certreq,
        }));
        payloads.push(notify_payload(notify::SIGNATURE_HASH_ALGORITHMS, hashes));
    }
    payloads.push(notify_payload(notify::NAT_DETECTION_SOURCE_IP, &our_nat[0]));
    payloads.push(notify_payload(
        notify::NAT_DETECTION_DESTINATION_IP,
        &our_nat[1],
    ));
    // RFC 7383 §2.3: announced only in answer to an initiator that announced it.
    let peer_frag = has_notify(&m.payloads, notify::IKEV2_FRAGMENTATION_SUPPORTED);
    if peer_frag && cfg.fragment_len.is_some() {
        payloads.push(notify_payload(notify::IKEV2_FRAGMENTATION_SUPPORTED, &[]));
    }
    let resp = Message {
        header: header(h.spi_i, spi_r, exchange::IKE_SA_INIT, flags::RESPONSE, 0),
        payloads,
    }
    .emit()
    .map_err(|_| fail(IkeError::Unexpected("response cannot be encoded")))?;
    let state = ExpectAuthReq {
        nat,
        cfg: cfg.clone(),
        spi_i: h.spi_i,
        spi_r,
        keys,
        ciphers,
        ni: Zeroizing::new(ni.to_vec()),
        nr,
        init_request: datagram.to_vec(),
        init_response: resp.clone(),
        peer_hashes: peer_sig_hashes(&m.payloads),
        frag: Frag::new(cfg.fragment_len.filter(|_| peer_frag), peer_frag),
        child_policy: None,
    };
    Ok((state, resp))
}

/// Responder, IKE_SA_INIT answered, waiting for IKE_AUTH.
#[derive(Debug)]
pub struct ExpectAuthReq {
    nat: Option<NatStatus>,
    cfg: IkeConfig,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    keys: IkeKeys,
    ciphers: Ciphers,
    ni: Zeroizing<Vec<u8>>,
    nr: Zeroizing<Vec<u8>>,
    init_request: Vec<u8>,
    init_response: Vec<u8>,
    /// The peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
    peer_hashes: Vec<u16>,
    frag: Frag,
    /// What policy allows for the Child SA of IKE_AUTH (`set_child_policy`).
    child_policy: Option<Vec<ChildSuite>>,
}

impl ExpectAuthReq {
    /// The SPIs (initiator's, ours) this half-open SA is found by.
    #[must_use]
    pub fn spis(&self) -> ([u8; 8], [u8; 8]) {
        (self.spi_i, self.spi_r)
    }

    /// The IKE SA keys derived from IKE_SA_INIT (the peer is not authenticated yet).
    #[must_use]
    pub fn ike_keys(&self) -> &IkeKeys {
        &self.keys
    }

    /// The suites the Child SA of IKE_AUTH may use (what the IPsec policy allows for its
    /// selectors); empty: none (NO_PROPOSAL_CHOSEN). Without it the configuration's
    /// [`IkeConfig::child_suites`] apply.
    pub fn set_child_policy(&mut self, allowed: Vec<ChildSuite>) {
        self.child_policy = Some(allowed);
    }

    /// The Child SA that `datagram` asks for, if it is the IKE_AUTH request (its
    /// integrity checked, the peer not yet authenticated). Changes nothing.
    #[must_use]
    pub fn child_request(&self, datagram: &[u8]) -> Option<PeerChildRequest> {
        let mut plain = Zeroizing::new(Vec::new());
        // A fragment shows the request only if it completes it (RFC 7383).
        let (h, inner) = self.frag.peek(&self.ciphers.inp, datagram, &mut plain, 1)?;
        if h.exchange != exchange::IKE_AUTH || h.is_response() || h.message_id != 1 {
            return None;
        }
        peer_child_request(&self.cfg, &inner, None)
    }

    /// Handles a datagram for this SA: a retransmitted IKE_SA_INIT request (answered from
    /// the cache) or the IKE_AUTH request.
    pub fn handle(mut self, datagram: &[u8], rng: &mut dyn Random) -> Step<Self, Established> {
        if datagram == self.init_request.as_slice() {
            let reply = Some(self.init_response.clone());
            return Step::Stay {
                state: self,
                reply,
                dropped: None,
            };
        }
        let mut plain = Zeroizing::new(Vec::new());
        let (h, inner) = match fragments::open_auth(
            &mut self.frag,
            &self.ciphers.inp,
            datagram,
            &mut plain,
            false,
        ) {
            Ok(Some(x)) => x,
            Ok(None) => return fragments::waiting(self),
            // Bad ICV or garbage: silent drop, keep waiting (RFC 7296 §2.21.1).
            Err(e) => return stay(self, e),
        };
        if h.exchange != exchange::IKE_AUTH
            || h.is_response()
            || !h.is_initiator()
            || h.message_id != 1
            || h.spi_i != self.spi_i
            || h.spi_r != self.spi_r
        {
            return stay(self, IkeError::Unexpected("not the IKE_AUTH request"));
        }
        match self.accept_auth_request(&inner, rng) {
            Ok(est) => {
                let reply = est.cached.as_ref().map(|(_, r)| r.clone());
                let est = Established {
                    cached: est
                        .cached
                        .map(|(_, r)| (fragments::request_key(datagram), r)),
                    ..est
                };
                Step::Next { state: est, reply }
            }
            Err(e) => {
                let ty = match e {
                    IkeError::NoProposalChosen => notify::NO_PROPOSAL_CHOSEN,
                    IkeError::TsUnacceptable => notify::TS_UNACCEPTABLE,
                    IkeError::MissingPayload(_) => notify::INVALID_SYNTAX,
                    _ => notify::AUTHENTICATION_FAILED,
                };
                let h = header(
                    self.spi_i,
                    self.spi_r,
                    exchange::IKE_AUTH,
                    flags::RESPONSE,
                    1,
                );
                let reply = self.ciphers.seal(&h, &[notify_payload(ty, &[])], rng).ok();
                Step::Failed { error: e, reply }
            }
        }
    }

    fn accept_auth_request(
        &mut self,
        inner: &[Payload<'_>],
        rng: &mut dyn Random,
    ) -> Result<Established, IkeError> {
        let cfg = &self.cfg;
        let proof = authenticate_peer(
            cfg,
            inner,
            pt::IDI,
            &self.init_request,
            &self.nr,
            &self.keys.sk_pi,
        )?;
        // The initiator's first proposal that policy (or the configuration) allows.
        let allowed = child_policy::allowed_suites(cfg, self.child_policy.clone());
        // A Child SA we cannot make does not undo the authenticated IKE SA (RFC 7296
        // §1.2, §2.21.2): the response then carries the error notification and no SA.
        let child = match offered_child(cfg, &allowed, inner) {
            Ok(c) => Ok(c),
            Err(e @ (IkeError::NoProposalChosen | IkeError::TsUnacceptable)) => Err(e),
            Err(e) => return Err(e),
        };
        let initial_contact = has_notify(inner, notify::INITIAL_CONTACT);
        // An SPI is drawn only for a Child SA that will exist.
        let spi_r = if child.is_ok() { spi4(rng) } else { [0; 4] };
        let idr = cfg.local_id.as_id();
        let (method, my_auth) = own_auth(
            cfg,
            &self.peer_hashes,
            &self.init_response,
            &self.ni,
            &self.keys.sk_pr,
            &idr,
        )?;
        let mut reply_payloads = vec![Payload::IdR(idr)];
        reply_payloads.extend(cert_payloads(cfg));
        reply_payloads.push(Payload::Auth(Auth {
            method,
            data: &my_auth,
        }));
        match &child {
            Ok(c) => {
                if c.transport {
                    reply_payloads.push(notify_payload(notify::USE_TRANSPORT_MODE, &[]));
                }
                reply_payloads.push(Payload::Sa(vec![esp_proposal(&c.suite, &spi_r, c.num)]));
                reply_payloads.push(Payload::TsI(c.tsi.clone()));
                reply_payloads.push(Payload::TsR(c.tsr.clone()));
            }
            Err(e) => reply_payloads.push(notify_payload(child_error_notify(*e), &[])),
        }
        let h = header(
            self.spi_i,
            self.spi_r,
            exchange::IKE_AUTH,
            flags::RESPONSE,
            1,
        );
        let reply = self.ciphers.seal(&h, &reply_payloads, rng)?;
        let (children, child_refused) = match child {
            Ok(c) => {
                let keys = auth_child_keys(cfg, &self.keys, &self.ni, &self.nr, &c.suite)?;
                let sa = ChildSa {
                    spi_i: c.spi_i,
                    spi_r,
                    suite: c.suite,
                    keys,
                    ts_i: c.tsi,
                    ts_r: c.tsr,
                    transport: c.transport,
                };
                (
                    vec![Child {
                        requested_by_us: false,
                        sa,
                    }],
                    None,
                )
            }
            Err(e) => (Vec::new(), Some(e)),
        };
        Ok(Established {
            nat: self.nat,
            initiator: false,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            keys: self.keys.clone(),
            cfg: cfg.clone(),
            children,
            child_refused,
            unused_spi: None,
            rekeys: Vec::new(),
            orphan_deletes: Vec::new(),
            cached: Some((Vec::new(), reply)),
            peer_initial_contact: initial_contact,
            ciphers: Ciphers::new(cfg.suite, &self.keys, false)?,
            frag: core::mem::take(&mut self.frag),
            collision: None,
            rekeyed_away: false,
            backoff: cfg.backoff,
            next_request_id: 0,
            expect_request_id: 2,
            pending: None,
            closed: false,
            child_policy: None,
            _auth: proof,
        })
    }
}

/// The Child SA the initiator's IKE_AUTH request asks for, as we accept it.
struct OfferedChild {
    /// The number of the proposal taken.
    num: u8,
    /// The suite of that proposal.
    suite: ChildSuite,
    /// The initiator's SPI.
    spi_i: [u8; 4],
    /// The selectors narrowed to our policy.
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
    transport: bool,
}

/// Checks the Child SA part of an IKE_AUTH request: the initiator's first ESP proposal
/// of a suite in `allowed`, and selectors that narrow to something in our policy (RFC
/// 7296 §2.9).
fn offered_child(
    cfg: &IkeConfig,
    allowed: &[ChildSuite],
    inner: &[Payload<'_>],
) -> Result<OfferedChild, IkeError> {
    let Payload::Sa(props) = one(inner, pt::SA, "SA")? else {
        return Err(IkeError::MissingPayload("SA"));
    };
    // Selectors first: with none left after narrowing, there is nothing policy could
    // have been asked about, and the answer is TS_UNACCEPTABLE whatever was proposed.
    let (tsi, tsr) = selectors(inner)?;
    // The initiator's TSi is our remote side.
    let tsi = ts::narrow(tsi, &cfg.ts_remote);
    let tsr = ts::narrow(tsr, &cfg.ts_local);
    if tsi.is_empty() || tsr.is_empty() {
        return Err(IkeError::TsUnacceptable);
    }
    let Some((chosen, suite)) = choose_child(props, allowed, None) else {
        return Err(IkeError::NoProposalChosen);
    };
    let spi_i: [u8; 4] = chosen
        .spi
        .try_into()
        .map_err(|_| IkeError::NoProposalChosen)?;
    Ok(OfferedChild {
        num: chosen.num,
        suite,
        spi_i,
        tsi,
        tsr,
        transport: cfg.child.transport && has_notify(inner, notify::USE_TRANSPORT_MODE),
    })
}
