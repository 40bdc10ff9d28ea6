//! IKE fragmentation (RFC 7383) as the exchanges use it: negotiated in IKE_SA_INIT with
//! IKEV2_FRAGMENTATION_SUPPORTED, then applied to every protected message.
//!
//! Sending: the exchanges build whole messages as before; the caller hands each one to
//! `datagrams` (on [`ExpectAuthResp`] or [`Established`]), which returns it unchanged or,
//! when both sides support fragmentation and it is longer than the limit, as Encrypted
//! Fragment messages, each sealed on its own. The fragments of the last few messages are
//! kept, so a retransmission resends the very same fragments (§2.6.1).
//!
//! Receiving: a fragment is authenticated before anything is kept ([`SkCipher::open_fragment`];
//! one failing integrity is dropped and counted), checked against the message IDs the state
//! expects, then added to a bounded [`Reassembly`] (fragment count, total size); duplicates
//! are ignored, and an incomplete message is abandoned after [`REASSEMBLY_TIMEOUT`]. The
//! whole message is then handled as if it had come in one datagram.

use super::*;
use crate::sk::{Fragment, FragmentError, Reassembly, ReassemblyLimits};

/// How long an incomplete fragmented message is kept (RFC 7383 §2.6 leaves it to us).
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the state does with an authenticated fragment, judged from its header.
pub(super) enum Verdict {
    /// Part of the message the state waits for: reassemble.
    Take,
    /// Fragment 1 of the request answered last: resend the cached response.
    Replay,
    /// Anything else: ignore.
    Drop,
}

/// The result of opening a datagram.
pub(super) enum Opened<'p> {
    /// A whole message (sent whole or reassembled).
    Message(Header, Vec<Payload<'p>>),
    /// A fragment was kept or ignored; nothing more to do until the others arrive.
    Waiting,
    /// A retransmitted first fragment of the request answered last.
    Replay,
}

/// Opens a datagram for an IKE_AUTH state: fragments of the IKE_AUTH request
/// (`response` false) or response with message ID 1 are reassembled. `Ok(None)`: a
/// fragment was kept or ignored, nothing else to do.
pub(super) fn open_auth<'p>(
    frag: &mut Frag,
    inp: &SkCipher,
    datagram: &[u8],
    plain: &'p mut Zeroizing<Vec<u8>>,
    response: bool,
) -> Result<Option<(Header, Vec<Payload<'p>>)>, IkeError> {
    let verdict = |h: &Header, _: &Fragment| {
        if h.is_response() == response && h.message_id == 1 && h.exchange == exchange::IKE_AUTH {
            Verdict::Take
        } else {
            Verdict::Drop
        }
    };
    match frag.open(inp, datagram, plain, verdict)? {
        Opened::Message(h, inner) => Ok(Some((h, inner))),
        Opened::Waiting | Opened::Replay => Ok(None),
    }
}

/// The key a request is recognised by when it comes again: its bytes, or nothing for a
/// fragmented request, which is recognised by its first fragment's message ID instead
/// (RFC 7383 §2.6.1).
pub(super) fn request_key(datagram: &[u8]) -> Vec<u8> {
    if is_fragment(datagram) {
        Vec::new()
    } else {
        datagram.to_vec()
    }
}

/// The state is unchanged and nothing is sent: a fragment awaits the others.
pub(super) fn waiting<S, N>(state: S) -> Step<S, N> {
    Step::Stay {
        state,
        reply: None,
        dropped: None,
    }
}

/// Fragmentation state of one IKE SA (in any state after IKE_SA_INIT).
#[derive(Default)]
pub(super) struct Frag {
    /// We announced support: fragments are accepted.
    accept: bool,
    /// Both sides announced support: messages longer than this are fragmented.
    limit: Option<usize>,
    /// Fragments of our last request and our last response: (whole message, fragments).
    sent: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// Reassembly of a request (index 0) and of a response (index 1), with the time it
    /// was first seen by [`Frag::expire`].
    rx: [Option<(Reassembly, Option<Instant>)>; 2],
    /// Fragments dropped because their integrity check failed.
    bad: u64,
}

impl fmt::Debug for Frag {
    /// The settings and counts only: no message content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frag")
            .field("accept", &self.accept)
            .field("limit", &self.limit)
            .field("sent", &self.sent.len())
            .field("reassembling", &self.rx.iter().flatten().count())
            .field("bad", &self.bad)
            .finish()
    }
}

/// Whether `datagram` carries an Encrypted Fragment payload as its first payload.
fn is_fragment(datagram: &[u8]) -> bool {
    datagram.get(16) == Some(&pt::SKF)
}

impl Frag {
    /// `ours`: our limit if we announced support; `peer`: the peer announced support.
    pub(super) fn new(ours: Option<usize>, peer: bool) -> Self {
        Self {
            accept: ours.is_some(),
            limit: ours.filter(|_| peer),
            ..Self::default()
        }
    }

    /// The same settings for a successor SA (IKE SA rekey), with nothing in flight.
    pub(super) fn renewed(&self) -> Self {
        Self {
            accept: self.accept,
            limit: self.limit,
            ..Self::default()
        }
    }

    pub(super) fn active(&self) -> bool {
        self.limit.is_some()
    }

    pub(super) fn bad_fragments(&self) -> u64 {
        self.bad
    }

    /// The datagrams that carry `msg`: itself, or its fragments.
    pub(super) fn datagrams(
        &mut self,
        out: &SkCipher,
        msg: &[u8],
        rng: &mut dyn Random,
    ) -> Vec<Vec<u8>> {
        let Some(limit) = self.limit.filter(|l| msg.len() > *l) else {
            return vec![msg.to_vec()];
        };
        if let Some((_, f)) = self.sent.iter().find(|(m, _)| m.as_slice() == msg) {
            return f.clone();
        }
        // The message is ours: open it with our own keys and seal its payloads again in
        // pieces. A message that cannot be split (not SK-protected, or a limit too small
        // for any content) goes out whole.
        let mut plain = Zeroizing::new(Vec::new());
        let frags = match out.open(msg, &mut plain) {
            Ok((h, inner)) => out.seal_fragments(&h, &inner, limit, rng).ok(),
            Err(_) => None,
        };
        let Some(frags) = frags else {
            return vec![msg.to_vec()];
        };
        // One request and one response are kept: the ones that can be sent again.
        let response = |m: &[u8]| m.get(19).is_some_and(|f| f & flags::RESPONSE != 0);
        self.sent.retain(|(m, _)| response(m) != response(msg));
        self.sent.push((msg.to_vec(), frags.clone()));
        frags
    }

    /// Opens `datagram`: a whole SK message, or a fragment that `verdict` judges; a
    /// completed reassembly is parsed into `plain`.
    pub(super) fn open<'p>(
        &mut self,
        inp: &SkCipher,
        datagram: &[u8],
        plain: &'p mut Zeroizing<Vec<u8>>,
        verdict: impl Fn(&Header, &Fragment) -> Verdict,
    ) -> Result<Opened<'p>, IkeError> {
        if !is_fragment(datagram) {
            let (h, inner) = inp.open(datagram, plain)?;
            return Ok(Opened::Message(h, inner));
        }
        if !self.accept {
            return Err(IkeError::Unexpected("fragment without IKE fragmentation"));
        }
        let (h, frag) = match inp.open_fragment(datagram, plain) {
            Ok(x) => x,
            Err(e) => {
                if e == CryptoError::IntegrityFailed {
                    self.bad += 1;
                }
                return Err(e.into());
            }
        };
        match verdict(&h, &frag) {
            Verdict::Take => {}
            Verdict::Replay => return Ok(Opened::Replay),
            Verdict::Drop => return Ok(Opened::Waiting),
        }
        let slot = &mut self.rx[usize::from(h.is_response())];
        if !matches!(slot, Some((r, _)) if r.message_id() == h.message_id) {
            *slot = Some((
                Reassembly::new(h.message_id, ReassemblyLimits::default()),
                None,
            ));
        }
        let Some((r, _)) = slot else {
            return Ok(Opened::Waiting);
        };
        match r.add(&h, frag, plain) {
            Ok(None) | Err(FragmentError::Duplicate | FragmentError::StaleTotal) => {
                Ok(Opened::Waiting)
            }
            Err(e) => {
                *slot = None;
                Err(IkeError::Fragment(e))
            }
            Ok(Some((first, content))) => {
                *slot = None;
                *plain = content;
                let plain: &'p [u8] = plain;
                // An unknown critical payload in the whole message is told apart, as
                // for an unfragmented one, so that a request gets its answer (§2.5).
                let inner = match crate::wire::parse_chain(first, plain, 0) {
                    Ok(v) => v,
                    Err(ParseError::UnsupportedCritical { payload_type, .. }) => {
                        return Err(CryptoError::UnsupportedCritical(payload_type).into())
                    }
                    Err(e) => return Err(e.into()),
                };
                if inner.iter().any(Payload::is_encrypted) {
                    return Err(IkeError::Unexpected("encrypted payload inside SKF"));
                }
                Ok(Opened::Message(h, inner))
            }
        }
    }

    /// Opens `datagram` without changing anything: a whole SK message, or the fragment
    /// of request `message_id` that completes the message with the fragments already
    /// kept; the whole message's inner payloads, parsed from `plain`. `None` otherwise.
    pub(super) fn peek<'p>(
        &self,
        inp: &SkCipher,
        datagram: &[u8],
        plain: &'p mut Zeroizing<Vec<u8>>,
        message_id: u32,
    ) -> Option<(Header, Vec<Payload<'p>>)> {
        if !is_fragment(datagram) {
            return inp.open(datagram, plain).ok();
        }
        if !self.accept {
            return None;
        }
        let (h, frag) = inp.open_fragment(datagram, plain).ok()?;
        if h.is_response() || h.message_id != message_id {
            return None;
        }
        let mut r = match &self.rx[0] {
            Some((r, _)) if r.message_id() == message_id => r.clone(),
            _ => Reassembly::new(message_id, ReassemblyLimits::default()),
        };
        let (first, content) = r.add(&h, frag, plain).ok()??;
        *plain = content;
        let plain: &'p [u8] = plain;
        let inner = crate::wire::parse_chain(first, plain, 0).ok()?;
        if inner.iter().any(Payload::is_encrypted) {
            return None;
        }
        Some((h, inner))
    }

    /// Abandons reassemblies older than [`REASSEMBLY_TIMEOUT`] (their age counts from the
    /// first call that saw them); returns when the next call is useful.
    pub(super) fn expire(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for slot in &mut self.rx {
            if let Some((_, seen)) = slot {
                let t0 = *seen.get_or_insert(now);
                let due = t0 + REASSEMBLY_TIMEOUT;
                if now >= due {
                    *slot = None;
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        next
    }
}
