//! The certificate credentials of the configuration's certificate rules, read from the
//! store `ikev2cert` manages ([`ike::cert::store::CertStore`]).
//!
//! For each rule whose `auth_method` uses certificates: the store's certificate (with
//! its private key) whose subject or subjectAltName is the rule's `local_id`, the
//! intermediates towards an anchor and every trust anchor, as the core's [`CertAuth`].
//! A DN `local_id` is then sent exactly as the certificate's subject is encoded, so
//! the peer's byte-wise checks hold whatever string types the CA chose.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ike::cert::store::{CertStore, Kind};
use ike::cert::{CertAuth, Certificate, Hash, PeerAuth, PublicKey};
use ike::consts::id;
use ike::sa::Identity;
use ike::wire::Id;

use crate::config::{AuthMethod, Config, Rule};

/// Seconds since 1970 now (certificate validity is checked at this time).
#[must_use]
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The credentials of each certificate rule, by label.
#[derive(Debug, Clone, Default)]
pub struct CertCreds {
    by_label: HashMap<String, (CertAuth, Identity)>,
}

impl CertCreds {
    /// The credentials of the rule labelled `label` (set to check certificates at the
    /// present time) and the identity to send.
    #[must_use]
    pub fn get(&self, label: &str) -> Option<(CertAuth, Identity)> {
        self.by_label.get(label).map(|(a, i)| {
            let mut a = a.clone();
            a.now = unix_now();
            (a, i.clone())
        })
    }

    /// How many rules have credentials.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_label.len()
    }

    /// Whether none has.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_label.is_empty()
    }
}

/// A readable identity for messages.
#[must_use]
pub fn show_identity(i: &Identity) -> String {
    match i.id_type {
        id::IPV4_ADDR | id::IPV6_ADDR => match i.data.len() {
            4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(i.data.as_slice()).unwrap_or([0; 4]))
                .to_string(),
            16 => {
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(i.data.as_slice()).unwrap_or([0; 16]))
                    .to_string()
            }
            _ => "?".into(),
        },
        id::DER_ASN1_DN => format!("DN \"{}\"", Certificate::name_to_string(&i.data)),
        _ => String::from_utf8_lossy(&i.data).into_owned(),
    }
}

fn rule_creds(store: &CertStore, rule: &Rule, now: i64) -> Result<(CertAuth, Identity), String> {
    let Some(local) = rule.local_id.as_ref() else {
        return Err("a certificate rule needs a local_id".into());
    };
    let mut auth = store
        .credentials(
            &Id {
                id_type: local.id_type,
                data: &local.data,
            },
            now,
        )
        .map_err(|e| format!("local_id {}: {e}", show_identity(local)))?;
    let ee = auth
        .chain_der()
        .next()
        .and_then(|d| Certificate::from_der(d).ok())
        .ok_or_else(|| "the store's certificate cannot be read".to_string())?;
    let is_rsa = matches!(ee.key, Some(PublicKey::Rsa(_)));
    let wrong_key = |want: &str| {
        format!(
            "auth_method needs an {want} key, the certificate for {} has {}",
            show_identity(local),
            ee.key
                .as_ref()
                .map_or_else(|| "?".into(), PublicKey::describe)
        )
    };
    match rule.auth {
        AuthMethod::Preshared | AuthMethod::Cert => {}
        AuthMethod::RsaSig | AuthMethod::RsaPss if !is_rsa => return Err(wrong_key("RSA")),
        AuthMethod::Ecdsa(_) if is_rsa => return Err(wrong_key("ECDSA")),
        // We sign ECDSA with the curve's hash (SHA-256 on P-256, SHA-384 on P-384);
        // a peer with the same rule accepts only the rule's hash.
        AuthMethod::Ecdsa(Some(h))
            if !matches!(
                (h, &ee.key),
                (Hash::Sha256, Some(PublicKey::EcP256(_)))
                    | (Hash::Sha384, Some(PublicKey::EcP384(_)))
            ) =>
        {
            return Err(wrong_key(match h {
                Hash::Sha256 => "ECDSA P-256",
                Hash::Sha384 => "ECDSA P-384",
                Hash::Sha512 => "ECDSA P-521 (which we cannot use)",
            }))
        }
        AuthMethod::RsaSig | AuthMethod::RsaPss | AuthMethod::Ecdsa(_) => {}
    }
    auth.rsa_pss = rule.auth == AuthMethod::RsaPss;
    // The method binds the peer as well: its AUTH method and key type.
    auth.peer = match rule.auth {
        AuthMethod::RsaSig => PeerAuth::RsaPkcs1,
        AuthMethod::RsaPss => PeerAuth::RsaPss,
        AuthMethod::Ecdsa(h) => PeerAuth::Ecdsa(h),
        AuthMethod::Cert | AuthMethod::Preshared => PeerAuth::Any,
    };
    if let AuthMethod::Ecdsa(Some(h)) = rule.auth {
        auth.hashes = std::iter::once(h)
            .chain(Hash::ALL.into_iter().filter(|&x| x != h))
            .collect();
    }
    let sent = if local.id_type == id::DER_ASN1_DN {
        Identity {
            id_type: id::DER_ASN1_DN,
            data: ee.subject.clone(),
        }
    } else {
        local.clone()
    };
    Ok((auth, sent))
}

/// Reads the credentials of every certificate rule from the configuration's store.
///
/// # Errors
/// `rule LABEL (line N): ...` for the first rule whose certificate, key or trust anchors
/// are missing, or the store that cannot be read.
pub fn load_cert_creds(config: &Config) -> Result<CertCreds, String> {
    let mut out = CertCreds::default();
    if !config.uses_certs() {
        return Ok(out);
    }
    let dir = config.cert_store();
    if !dir.is_dir() {
        return Err(format!(
            "certificate store {}: no such directory (fill it with ikev2cert)",
            dir.display()
        ));
    }
    // Read-only: the daemon (and `in.ikev2d -c`) never creates or chmods the store,
    // and refuses one anybody but root could change.
    let store =
        CertStore::open_existing(&dir).map_err(|e| format!("certificate store refused: {e}"))?;
    let anchors = store
        .list()
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|e| matches!(e.kind, Kind::Certificate { trusted: true, .. }))
        .count();
    if anchors == 0 {
        return Err(format!(
            "certificate store {}: no trust anchor (import one with ikev2cert import objtype=anchor)",
            dir.display()
        ));
    }
    let now = unix_now();
    for rule in config.rules.iter().filter(|r| r.auth.is_cert()) {
        let c = rule_creds(&store, rule, now)
            .map_err(|e| format!("rule {:?} (line {}): {e}", rule.label, rule.line))?;
        out.by_label.insert(rule.label.clone(), c);
    }
    Ok(out)
}
