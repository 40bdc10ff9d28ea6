//! The certificate store (what an `ikev2cert` tool manages, after Solaris's
//! ikev2cert(8)): X.509 certificates, trust anchors and private keys in one directory.
//!
//! ```text
//!  DIR/certs/<sha256 of the certificate>.der     certificates (end entities, intermediates)
//!  DIR/anchors/<sha256 of the certificate>.der   trust anchors
//!  DIR/keys/<sha256 of the public key>.der        private keys, PKCS#8 or PKCS#1/SEC 1,
//!                                                 mode 0600 in a 0700 directory
//!                                                 (as created; see below for what is
//!                                                 required)
//! ```
//!
//! Files are named by fingerprint, so importing the same object twice is harmless, and
//! each file is written under a temporary name and renamed into place. A key belongs to
//! every certificate whose public key it matches ([`CertStore::credentials`] finds
//! the pair for an identity and builds the chain from the stored intermediates).
//! Import takes PEM (any number of CERTIFICATE, PRIVATE KEY, RSA PRIVATE KEY and EC
//! PRIVATE KEY blocks) or a single DER object; encrypted keys are refused.
//!
//! The store is trusted only if root alone can change it: the store directory and its
//! `certs/`, `anchors/` and `keys/` must be directories owned by root and writable by
//! neither group nor others; certificates and anchors regular files owned by root and
//! not group/other-writable; private keys regular files of mode 0600 owned by root.
//! Every file is opened without following a symbolic link (`O_NOFOLLOW`) and checked on
//! the open descriptor before it is read. [`CertStore::open_existing`] checks a store
//! without creating or changing anything (for the daemon and `in.ikev2d -c`).

use core::fmt;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{id_matches, CertAuth, CertError, Certificate, PrivateKey, MAX_INTERMEDIATES};
use crate::wire::Id;

/// A store failure, naming the file (and for PEM the line) it concerns.
#[derive(Debug)]
pub struct StoreError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// Line in a PEM input (1-based), when it applies.
    pub line: Option<usize>,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.what),
            None => write!(f, "{}: {}", self.path.display(), self.what),
        }
    }
}

impl std::error::Error for StoreError {}

fn err(path: &Path, what: impl Into<String>) -> StoreError {
    StoreError {
        path: path.to_path_buf(),
        line: None,
        what: what.into(),
    }
}

fn io_err(path: &Path, e: &std::io::Error) -> StoreError {
    err(path, e.to_string())
}

/// What a file opened by [`read_checked`] must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRule {
    /// A private key or secret: a regular file of mode 0600 owned by root.
    Private,
    /// A public object (certificate, trust anchor): a regular file owned by root,
    /// writable by neither group nor others.
    RootOwned,
}

impl FileRule {
    /// Why `md` (the metadata of an open descriptor) breaks the rule, if it does;
    /// `what` names the content in the message (`a private key`).
    ///
    /// # Errors
    /// What is wrong, for a message naming the file.
    pub fn check(self, md: &fs::Metadata, what: &str) -> Result<(), String> {
        if !md.file_type().is_file() {
            return Err(format!("not a regular file: {what} must be one"));
        }
        let mode = md.mode() & 0o7777;
        match self {
            Self::Private if mode != 0o600 => {
                return Err(format!(
                    "mode {mode:04o}: {what} must be in a file of mode 0600"
                ))
            }
            Self::RootOwned if mode & 0o022 != 0 => {
                return Err(format!(
                    "mode {mode:04o}: writable by group or others, {what} must not be"
                ))
            }
            _ => {}
        }
        if md.uid() != 0 {
            return Err(format!(
                "owned by uid {}: {what} must be in a file owned by root",
                md.uid()
            ));
        }
        Ok(())
    }
}

/// Opens `path` without following a symbolic link (a link is refused with `ELOOP`)
/// and returns the file with the metadata of that descriptor (`fstat`), so what is
/// checked is what is read.
///
/// # Errors
/// The open or `fstat` failure.
pub fn open_nofollow(path: &Path) -> std::io::Result<(fs::File, fs::Metadata)> {
    open_flags(path, libc::O_NOFOLLOW)
}

/// [`open_nofollow`], but following a symbolic link (for input that is not secret).
///
/// # Errors
/// The open or `fstat` failure.
pub fn open_following(path: &Path) -> std::io::Result<(fs::File, fs::Metadata)> {
    open_flags(path, 0)
}

/// Opens `path` for reading, never blocking on a FIFO or taking a terminal, and
/// `fstat`s the descriptor.
fn open_flags(path: &Path, flags: i32) -> std::io::Result<(fs::File, fs::Metadata)> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    let md = f.metadata()?;
    Ok((f, md))
}

/// Reads all of `f` (opened by [`open_nofollow`]) into memory wiped on drop.
///
/// # Errors
/// The read failure.
pub fn read_all(mut f: fs::File) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// Opens `path` with [`open_nofollow`], checks the descriptor against `rule` and only
/// then reads it.
///
/// # Errors
/// `path: what is wrong` (a symbolic link, wrong type, mode or owner) or the I/O error.
pub fn read_checked(path: &Path, rule: FileRule) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let (f, md) = open_nofollow(path).map_err(|e| nofollow_err(path, &e))?;
    let what = match rule {
        FileRule::Private => "a private key",
        FileRule::RootOwned => "a certificate",
    };
    rule.check(&md, what).map_err(|w| err(path, w))?;
    read_all(f).map_err(|e| io_err(path, &e))
}

/// Whether an [`open_nofollow`] error means the path is a symbolic link.
#[must_use]
pub fn is_link_refused(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// An [`open_nofollow`] error, saying so when the path is a symbolic link.
fn nofollow_err(path: &Path, e: &std::io::Error) -> StoreError {
    if is_link_refused(e) {
        err(
            path,
            "a symbolic link: refused (the file itself must be named)",
        )
    } else {
        io_err(path, e)
    }
}

/// Refuses a store directory that anyone but root could change.
fn check_dir(path: &Path) -> Result<(), StoreError> {
    let md = fs::symlink_metadata(path).map_err(|e| io_err(path, &e))?;
    if !md.file_type().is_dir() {
        return Err(err(
            path,
            "not a directory (a symbolic link is refused): the certificate store needs one",
        ));
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(err(
            path,
            format!(
                "mode {mode:04o}: writable by group or others, a certificate store directory must not be"
            ),
        ));
    }
    if md.uid() != 0 {
        return Err(err(
            path,
            format!(
                "owned by uid {}: a certificate store directory must be owned by root",
                md.uid()
            ),
        ));
    }
    Ok(())
}

/// What one stored object is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A certificate.
    Certificate {
        /// Subject, readable.
        subject: String,
        /// Issuer, readable.
        issuer: String,
        /// notBefore, seconds since 1970.
        not_before: i64,
        /// notAfter, seconds since 1970.
        not_after: i64,
        /// Whether it is a trust anchor.
        trusted: bool,
        /// Whether the store holds its private key.
        has_key: bool,
    },
    /// A private key.
    PrivateKey,
}

/// One stored object, as [`CertStore::list`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// SHA-256 of the certificate, or of the public key for a private key (hex): the
    /// name to remove it by.
    pub fingerprint: String,
    /// Key type (`RSA-2048`, `ECDSA-P256`...; `?` for a key type we do not use).
    pub key_type: String,
    /// Certificate details, or a private key.
    pub kind: Kind,
}

/// A certificate store directory.
#[derive(Debug, Clone)]
pub struct CertStore {
    dir: PathBuf,
}

const CERTS: &str = "certs";
const ANCHORS: &str = "anchors";
const KEYS: &str = "keys";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    let mut o = [0u8; 32];
    o.copy_from_slice(d.as_ref());
    o
}

/// The fingerprint naming a private key: SHA-256 of its public key's bytes (the
/// RSAPublicKey or the EC point).
fn key_fingerprint(k: &PrivateKey) -> String {
    hex(&sha256(k.public_key().bytes()))
}

/// An object read from import input, before it is stored.
pub(crate) enum Object {
    Cert(Certificate),
    Key(PrivateKey, Zeroizing<Vec<u8>>),
}

impl CertStore {
    /// Opens (creating if needed) the store in `dir`, then checks it as
    /// [`CertStore::open_existing`] does.
    ///
    /// # Errors
    /// When the directories cannot be created, or the store is not root's alone.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        for sub in [CERTS, ANCHORS, KEYS] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| io_err(&p, &e))?;
        }
        let keys = dir.join(KEYS);
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(&keys, &e))?;
        Self::open_existing(dir)
    }

    /// Opens the existing store in `dir` read-only, creating and changing nothing.
    ///
    /// # Errors
    /// A missing directory, or one (the store, `certs/`, `anchors/`, `keys/`) that is
    /// not a directory owned by root and unwritable by group and others (named).
    pub fn open_existing(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let top = fs::metadata(&dir).map_err(|e| io_err(&dir, &e))?;
        if !top.is_dir() {
            return Err(err(&dir, "not a directory"));
        }
        // The store itself may be reached through a link (its target is checked);
        // what is inside may not.
        check_dir(&dir.join("."))?;
        for sub in [CERTS, ANCHORS, KEYS] {
            check_dir(&dir.join(sub))?;
        }
        Ok(Self { dir })
    }

    /// Imports every certificate and key in `input` (PEM or DER; `source` names it in
    /// errors); certificates become trust anchors when `trusted`. Returns what was
    /// stored. Nothing is stored unless all of the input is valid.
    ///
    /// # Errors
    /// Undecodable input (with the PEM line), an encrypted key, or a write failure.
    pub fn import(
        &self,
        source: &Path,
        input: &[u8],
        trusted: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let objects = decode(source, input)?;
        let mut out = Vec::new();
        for o in objects {
            match o {
                Object::Cert(c) => {
                    let fp = hex(&c.sha256_fingerprint());
                    let (sub, other) = if trusted {
                        (ANCHORS, CERTS)
                    } else {
                        (CERTS, ANCHORS)
                    };
                    self.write(sub, &fp, c.der(), 0o644)?;
                    // A certificate is either an anchor or not: the new flag wins.
                    let stale = self.file(other, &fp);
                    if stale.exists() {
                        fs::remove_file(&stale).map_err(|e| io_err(&stale, &e))?;
                    }
                    out.push(self.entry_of_cert(&c, trusted));
                }
                Object::Key(k, der) => {
                    let fp = key_fingerprint(&k);
                    self.write(KEYS, &fp, &der, 0o600)?;
                    out.push(Entry {
                        fingerprint: fp,
                        key_type: k.public_key().describe(),
                        kind: Kind::PrivateKey,
                    });
                }
            }
        }
        Ok(out)
    }

    fn file(&self, sub: &str, fp: &str) -> PathBuf {
        self.dir.join(sub).join(format!("{fp}.der"))
    }

    /// Writes `data` to `sub/fp.der` with `mode`, through a temporary file renamed into
    /// place (the mode is set at creation, so a key is never readable by others).
    fn write(&self, sub: &str, fp: &str, data: &[u8], mode: u32) -> Result<(), StoreError> {
        let path = self.file(sub, fp);
        let tmp = self.dir.join(sub).join(format!(".{fp}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, &e))?;
        f.write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err(&tmp, &e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(&tmp, &e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, &e))
    }

    fn read_dir(&self, sub: &str) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let d = self.dir.join(sub);
        let mut out = Vec::new();
        for e in fs::read_dir(&d).map_err(|e| io_err(&d, &e))? {
            let e = e.map_err(|e| io_err(&d, &e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(fp) = name.strip_suffix(".der") {
                if !fp.starts_with('.') {
                    out.push((fp.to_string(), e.path()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn certs(&self, sub: &str) -> Result<Vec<Certificate>, StoreError> {
        self.read_dir(sub)?
            .into_iter()
            .map(|(_, p)| {
                let der = read_checked(&p, FileRule::RootOwned)?;
                Certificate::from_der(&der).map_err(|e| err(&p, e.to_string()))
            })
            .collect()
    }

    fn keys(&self) -> Result<Vec<(String, PrivateKey)>, StoreError> {
        self.read_dir(KEYS)?
            .into_iter()
            .map(|(fp, p)| {
                let der = read_checked(&p, FileRule::Private)?;
                let k = PrivateKey::from_der(&der).map_err(|e| err(&p, e.to_string()))?;
                Ok((fp, k))
            })
            .collect()
    }

    fn entry_of_cert(&self, c: &Certificate, trusted: bool) -> Entry {
        let has_key = c
            .key
            .as_ref()
            .is_some_and(|k| self.file(KEYS, &hex(&sha256(k.bytes()))).exists());
        Entry {
            fingerprint: hex(&c.sha256_fingerprint()),
            key_type: c
                .key
                .as_ref()
                .map_or_else(|| "?".into(), super::PublicKey::describe),
            kind: Kind::Certificate {
                subject: Certificate::name_to_string(&c.subject),
                issuer: Certificate::name_to_string(&c.issuer),
                not_before: c.not_before,
                not_after: c.not_after,
                trusted,
                has_key,
            },
        }
    }

    /// Everything stored: trust anchors, other certificates, then private keys.
    ///
    /// # Errors
    /// An unreadable or corrupt file (named).
    pub fn list(&self) -> Result<Vec<Entry>, StoreError> {
        let mut out: Vec<Entry> = self
            .certs(ANCHORS)?
            .iter()
            .map(|c| self.entry_of_cert(c, true))
            .collect();
        out.extend(
            self.certs(CERTS)?
                .iter()
                .map(|c| self.entry_of_cert(c, false)),
        );
        let keys = self.keys()?;
        out.extend(keys.into_iter().map(|(fp, k)| Entry {
            fingerprint: fp,
            key_type: k.public_key().describe(),
            kind: Kind::PrivateKey,
        }));
        Ok(out)
    }

    /// Removes the object whose fingerprint is `fp` or starts with it (at least 8 hex
    /// digits, and only one object may match). Returns what was removed.
    ///
    /// # Errors
    /// No match, an ambiguous prefix, or a failed removal.
    pub fn remove(&self, fp: &str) -> Result<Entry, StoreError> {
        let fp = fp.to_ascii_lowercase().replace(':', "");
        if fp.len() < 8 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(
                &self.dir,
                format!("`{fp}`: expected at least 8 hex digits of a fingerprint"),
            ));
        }
        let mut hits = Vec::new();
        for sub in [ANCHORS, CERTS, KEYS] {
            for (name, path) in self.read_dir(sub)? {
                if name.starts_with(&fp) {
                    hits.push((sub, path));
                }
            }
        }
        let (sub, path) = match hits.as_slice() {
            [one] => one.clone(),
            [] => return Err(err(&self.dir, format!("no object with fingerprint {fp}"))),
            _ => {
                return Err(err(
                    &self.dir,
                    format!("fingerprint prefix {fp} is ambiguous"),
                ))
            }
        };
        let (f, _) = open_nofollow(&path).map_err(|e| nofollow_err(&path, &e))?;
        let data = read_all(f).map_err(|e| io_err(&path, &e))?;
        let entry = if sub == KEYS {
            let k = PrivateKey::from_der(&data).map_err(|e| err(&path, e.to_string()))?;
            Entry {
                fingerprint: key_fingerprint(&k),
                key_type: k.public_key().describe(),
                kind: Kind::PrivateKey,
            }
        } else {
            let c = Certificate::from_der(&data).map_err(|e| err(&path, e.to_string()))?;
            self.entry_of_cert(&c, sub == ANCHORS)
        };
        fs::remove_file(&path).map_err(|e| io_err(&path, &e))?;
        Ok(entry)
    }

    /// The credentials for `local_id`: a stored certificate with its private key whose
    /// subject or subjectAltName is `local_id` (valid at `now`), the stored
    /// intermediates from it towards an anchor, and every trust anchor.
    ///
    /// # Errors
    /// No such certificate and key, or an unreadable store.
    pub fn credentials(&self, local_id: &Id<'_>, now: i64) -> Result<CertAuth, StoreError> {
        let certs = self.certs(CERTS)?;
        let anchors = self.certs(ANCHORS)?;
        let mut keys = self.keys()?;
        let pick = certs.iter().find_map(|c| {
            let k = c.key.as_ref()?;
            let i = keys.iter().position(|(_, pk)| pk.public_key() == *k)?;
            (id_matches(local_id, c) && c.valid_at(now)).then_some((c, i))
        });
        let Some((ee, i)) = pick else {
            return Err(err(
                &self.dir,
                "no certificate with a private key for this identity",
            ));
        };
        let key = keys.swap_remove(i).1;
        let mut chain = vec![ee.clone()];
        while chain.len() <= MAX_INTERMEDIATES {
            let last = &chain[chain.len() - 1];
            if anchors.iter().any(|a| a.subject == last.issuer) {
                break;
            }
            let Some(up) = certs
                .iter()
                .find(|c| c.subject == last.issuer && c.is_ca() && c.subject != last.subject)
            else {
                break;
            };
            chain.push(up.clone());
        }
        CertAuth::new(key, chain, anchors, now).map_err(|e| err(&self.dir, e.to_string()))
    }
}

/// The objects of import input (see [`CertStore::import`]), not yet stored; at least one.
pub(crate) fn decode(source: &Path, input: &[u8]) -> Result<Vec<Object>, StoreError> {
    let objects = if input.starts_with(b"-----BEGIN ")
        || core::str::from_utf8(input).is_ok_and(|s| s.contains("-----BEGIN "))
    {
        pem_objects(source, input)?
    } else {
        vec![der_object(input)
            .map_err(|e| err(source, format!("not a DER certificate or private key: {e}")))?]
    };
    if objects.is_empty() {
        return Err(err(source, "no certificate or private key found"));
    }
    Ok(objects)
}

fn der_object(der: &[u8]) -> Result<Object, CertError> {
    match Certificate::from_der(der) {
        Ok(c) => Ok(Object::Cert(c)),
        Err(ce) => match PrivateKey::from_der(der) {
            Ok(k) => Ok(Object::Key(k, Zeroizing::new(der.to_vec()))),
            Err(_) => Err(ce),
        },
    }
}

/// The PEM blocks of `input` as objects; text outside blocks is ignored (as openssl
/// does with its comment lines).
fn pem_objects(source: &Path, input: &[u8]) -> Result<Vec<Object>, StoreError> {
    let at = |line: usize, what: String| StoreError {
        path: source.to_path_buf(),
        line: Some(line),
        what,
    };
    let text = core::str::from_utf8(input).map_err(|_| err(source, "PEM input is not UTF-8"))?;
    let mut out = Vec::new();
    let mut block: Option<(usize, String, Zeroizing<String>)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lno = n + 1;
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if block.is_some() {
                return Err(at(lno, "BEGIN inside a PEM block: expected END".into()));
            }
            block = Some((lno, label.to_string(), Zeroizing::new(String::new())));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let Some((start, begin, body)) = block.take() else {
                return Err(at(lno, "END without BEGIN".into()));
            };
            if label != begin {
                return Err(at(
                    lno,
                    format!("END {label} closes BEGIN {begin}: expected END {begin}"),
                ));
            }
            let der = base64_decode(&body)
                .ok_or_else(|| at(start, format!("{begin}: invalid base64 body")))?;
            let bad = |e: CertError| at(start, format!("{begin}: {e}"));
            match begin.as_str() {
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                    out.push(Object::Cert(Certificate::from_der(&der).map_err(bad)?));
                }
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                    let k = PrivateKey::from_der(&der).map_err(bad)?;
                    out.push(Object::Key(k, der));
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(at(start, "encrypted private keys are not supported: decrypt with `openssl pkcs8` first".into()));
                }
                "EC PARAMETERS" => {}
                other => {
                    return Err(at(
                        start,
                        format!(
                            "unexpected PEM block {other}: expected CERTIFICATE or PRIVATE KEY"
                        ),
                    ))
                }
            }
        } else if let Some((_, _, body)) = block.as_mut() {
            if line.contains(':') {
                return Err(at(
                    lno,
                    "PEM headers (encrypted key?) are not supported".into(),
                ));
            }
            body.push_str(line);
        }
    }
    if let Some((start, begin, _)) = block {
        return Err(at(start, format!("{begin}: no END line")));
    }
    Ok(out)
}

/// Standard base64 with padding (RFC 4648 §4); whitespace already removed.
fn base64_decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let val = |c: u8| -> Option<u32> {
        Some(
            match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            }
            .into(),
        )
    };
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(b.len() / 4 * 3));
    for (i, chunk) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut v = 0u32;
        for &c in &chunk[..4 - pad] {
            v = (v << 6) | val(c)?;
        }
        v <<= 6 * pad as u32;
        let bytes = v.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_vectors_of_rfc_4648() {
        for (e, d) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64_decode(e).unwrap().as_slice(), d.as_bytes());
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*"] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }
}
