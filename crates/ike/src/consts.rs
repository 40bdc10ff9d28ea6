//! IANA numbers of IKEv2 (RFC 7296 §3 and the IKEv2 registries) used by this crate.
//!
//! Plain integer constants rather than enums: every field keeps values this crate does not
//! know, so that unknown numbers can be carried, answered and counted.

/// Payload types (RFC 7296 §3.2; RFC 7383 §2.5 for SKF).
pub mod payload {
    /// No Next Payload.
    pub const NONE: u8 = 0;
    /// Security Association.
    pub const SA: u8 = 33;
    /// Key Exchange.
    pub const KE: u8 = 34;
    /// Identification - Initiator.
    pub const IDI: u8 = 35;
    /// Identification - Responder.
    pub const IDR: u8 = 36;
    /// Certificate.
    pub const CERT: u8 = 37;
    /// Certificate Request.
    pub const CERTREQ: u8 = 38;
    /// Authentication.
    pub const AUTH: u8 = 39;
    /// Nonce.
    pub const NONCE: u8 = 40;
    /// Notify.
    pub const NOTIFY: u8 = 41;
    /// Delete.
    pub const DELETE: u8 = 42;
    /// Vendor ID.
    pub const VENDOR_ID: u8 = 43;
    /// Traffic Selector - Initiator.
    pub const TSI: u8 = 44;
    /// Traffic Selector - Responder.
    pub const TSR: u8 = 45;
    /// Encrypted and Authenticated.
    pub const SK: u8 = 46;
    /// Configuration.
    pub const CP: u8 = 47;
    /// Extensible Authentication.
    pub const EAP: u8 = 48;
    /// Encrypted and Authenticated Fragment (RFC 7383).
    pub const SKF: u8 = 53;
}

/// Exchange types (RFC 7296 §3.1).
pub mod exchange {
    /// IKE_SA_INIT.
    pub const IKE_SA_INIT: u8 = 34;
    /// IKE_AUTH.
    pub const IKE_AUTH: u8 = 35;
    /// CREATE_CHILD_SA.
    pub const CREATE_CHILD_SA: u8 = 36;
    /// INFORMATIONAL.
    pub const INFORMATIONAL: u8 = 37;
}

/// Header flags (RFC 7296 §3.1).
pub mod flags {
    /// Initiator: set in messages sent by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// Version: the sender can speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// Response.
    pub const RESPONSE: u8 = 0x20;
}

/// Transform types (RFC 7296 §3.3.2).
pub mod transform {
    /// Encryption Algorithm (ENCR).
    pub const ENCR: u8 = 1;
    /// Pseudorandom Function (PRF).
    pub const PRF: u8 = 2;
    /// Integrity Algorithm (INTEG).
    pub const INTEG: u8 = 3;
    /// Diffie-Hellman group (D-H), "Key Exchange Method" since RFC 9370.
    pub const DH: u8 = 4;
    /// Extended Sequence Numbers (ESN).
    pub const ESN: u8 = 5;
    /// The Key Length attribute type (RFC 7296 §3.3.5), always in TV form.
    pub const ATTR_KEY_LENGTH: u16 = 14;
}

/// Protocol IDs (RFC 7296 §3.3.1).
pub mod protocol {
    /// IKE.
    pub const IKE: u8 = 1;
    /// AH.
    pub const AH: u8 = 2;
    /// ESP.
    pub const ESP: u8 = 3;
}

/// Identification types (RFC 7296 §3.5).
pub mod id {
    /// A single IPv4 address.
    pub const IPV4_ADDR: u8 = 1;
    /// A fully qualified domain name.
    pub const FQDN: u8 = 2;
    /// A user FQDN (RFC 822 address).
    pub const RFC822_ADDR: u8 = 3;
    /// A single IPv6 address.
    pub const IPV6_ADDR: u8 = 5;
    /// A DER-encoded ASN.1 X.500 distinguished name.
    pub const DER_ASN1_DN: u8 = 9;
    /// A DER-encoded ASN.1 X.509 GeneralName.
    pub const DER_ASN1_GN: u8 = 10;
    /// An opaque vendor-specific key ID.
    pub const KEY_ID: u8 = 11;
}

/// Authentication methods (RFC 7296 §3.8; RFC 7427).
pub mod auth {
    /// RSA digital signature (PKCS#1 v1.5 with SHA-1).
    pub const RSA_SIG: u8 = 1;
    /// Shared key message integrity code.
    pub const SHARED_KEY_MIC: u8 = 2;
    /// DSS digital signature.
    pub const DSS_SIG: u8 = 3;
    /// Digital signature (RFC 7427).
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// Traffic selector types (RFC 7296 §3.13.1).
pub mod ts {
    /// An IPv4 address range.
    pub const IPV4_ADDR_RANGE: u8 = 7;
    /// An IPv6 address range.
    pub const IPV6_ADDR_RANGE: u8 = 8;
}

/// Notify message types (RFC 7296 §3.10.1, RFC 7383).
pub mod notify {
    /// An unknown payload type with the critical bit set.
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
    /// An IKE SPI that matches no SA.
    pub const INVALID_IKE_SPI: u16 = 4;
    /// A major version this implementation does not speak.
    pub const INVALID_MAJOR_VERSION: u16 = 5;
    /// A malformed or unexpected message.
    pub const INVALID_SYNTAX: u16 = 7;
    /// A message ID outside the window.
    pub const INVALID_MESSAGE_ID: u16 = 9;
    /// A Child SA SPI that matches no SA.
    pub const INVALID_SPI: u16 = 11;
    /// None of the proposals is acceptable.
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    /// The KE payload uses a group other than the one selected.
    pub const INVALID_KE_PAYLOAD: u16 = 17;
    /// The peer's authentication failed.
    pub const AUTHENTICATION_FAILED: u16 = 24;
    /// Only one pair of traffic selectors is accepted for the Child SA.
    pub const SINGLE_PAIR_REQUIRED: u16 = 34;
    /// No internal address could be assigned (configuration payload).
    pub const INTERNAL_ADDRESS_FAILURE: u16 = 36;
    /// A configuration payload was required and is missing.
    pub const FAILED_CP_REQUIRED: u16 = 37;
    /// A traffic selector is unacceptable.
    pub const TS_UNACCEPTABLE: u16 = 38;
    /// A transient condition (e.g. a rekey in progress): try again later (§2.25).
    pub const TEMPORARY_FAILURE: u16 = 43;
    /// The Child SA to rekey does not exist (§2.25).
    pub const CHILD_SA_NOT_FOUND: u16 = 44;
    /// The responder accepts no more Child SAs on this IKE SA.
    pub const NO_ADDITIONAL_SAS: u16 = 35;
    /// First IKE SA with this peer: delete older ones (status).
    pub const INITIAL_CONTACT: u16 = 16384;
    /// Sender's window size (status).
    pub const SET_WINDOW_SIZE: u16 = 16385;
    /// NAT detection: the sender's address (status).
    pub const NAT_DETECTION_SOURCE_IP: u16 = 16388;
    /// NAT detection: the receiver's address (status).
    pub const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
    /// Stateless cookie (status).
    pub const COOKIE: u16 = 16390;
    /// Ask for a transport-mode Child SA (status).
    pub const USE_TRANSPORT_MODE: u16 = 16391;
    /// The Child SA this CREATE_CHILD_SA replaces (status).
    pub const REKEY_SA: u16 = 16393;
    /// The sender supports IKE fragmentation (RFC 7383).
    pub const IKEV2_FRAGMENTATION_SUPPORTED: u16 = 16430;
    /// Hash algorithms the sender supports for RFC 7427 signatures.
    pub const SIGNATURE_HASH_ALGORITHMS: u16 = 16431;
}
