//! `SADB_X_DIAGNOSTIC_*`: the Solaris extended diagnostics carried in `sadb_x_msg_diagnostic`
//! (the reused `sadb_msg_reserved` field) of error replies. Numbers are those of illumos
//! `net/pfkeyv2.h` (0..=83) and the 2024 pf_key(4P) page (84..=86); `ipseckey` prints them as
//! "Diagnostic code NN". The descriptions are ours.

use core::fmt;

macro_rules! diagnostics {
    ($( $(#[$m:meta])* $name:ident = $n:literal, $c:literal, $text:literal; )*) => {
        /// A Solaris PF_KEY diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(u16)]
        pub enum Diagnostic {
            $( $(#[$m])* #[doc = $text] $name = $n, )*
        }

        impl Diagnostic {
            /// Every diagnostic, in numeric order.
            pub const ALL: &'static [Diagnostic] = &[$(Diagnostic::$name,)*];

            /// The diagnostic with number `n`, if it is one of the known codes.
            pub const fn from_u16(n: u16) -> Option<Self> {
                match n {
                    $( $n => Some(Diagnostic::$name), )*
                    _ => None,
                }
            }

            /// The C name, e.g. `SADB_X_DIAGNOSTIC_MISSING_SA`.
            pub const fn c_name(self) -> &'static str {
                match self {
                    $( Diagnostic::$name => $c, )*
                }
            }

            /// A one-line description of what went wrong.
            pub const fn text(self) -> &'static str {
                match self {
                    $( Diagnostic::$name => $text, )*
                }
            }
        }
    };
}

diagnostics! {
    None = 0, "SADB_X_DIAGNOSTIC_NONE", "No further detail.";
    UnknownMsg = 1, "SADB_X_DIAGNOSTIC_UNKNOWN_MSG", "The message type is not one PF_KEY knows.";
    UnknownExt = 2, "SADB_X_DIAGNOSTIC_UNKNOWN_EXT", "An extension type is not one PF_KEY knows.";
    BadExtlen = 3, "SADB_X_DIAGNOSTIC_BAD_EXTLEN", "An extension length is zero, runs past the message, or does not fit its type.";
    UnknownSatype = 4, "SADB_X_DIAGNOSTIC_UNKNOWN_SATYPE", "The SA type is not one this system keys.";
    SatypeNeeded = 5, "SADB_X_DIAGNOSTIC_SATYPE_NEEDED", "This message needs a specific SA type (AH or ESP), not 0.";
    NoSadbs = 6, "SADB_X_DIAGNOSTIC_NO_SADBS", "There is no SA database for the request.";
    NoExt = 7, "SADB_X_DIAGNOSTIC_NO_EXT", "This message takes no extensions (or not these).";
    BadSrcAf = 8, "SADB_X_DIAGNOSTIC_BAD_SRC_AF", "The source address family is not IPv4 or IPv6.";
    BadDstAf = 9, "SADB_X_DIAGNOSTIC_BAD_DST_AF", "The destination address family is not IPv4 or IPv6.";
    /// Also `SADB_X_DIAGNOSTIC_BAD_PROXY_AF` (the same number).
    BadInnerSrcAf = 10, "SADB_X_DIAGNOSTIC_BAD_INNER_SRC_AF", "The inner-source (proxy) address family is not IPv4 or IPv6.";
    AfMismatch = 11, "SADB_X_DIAGNOSTIC_AF_MISMATCH", "Source and destination address families differ.";
    BadSrc = 12, "SADB_X_DIAGNOSTIC_BAD_SRC", "The source address cannot be used here.";
    BadDst = 13, "SADB_X_DIAGNOSTIC_BAD_DST", "The destination address cannot be used here.";
    AllocHserr = 14, "SADB_X_DIAGNOSTIC_ALLOC_HSERR", "The soft allocation (packet) limit exceeds the hard one.";
    BytesHserr = 15, "SADB_X_DIAGNOSTIC_BYTES_HSERR", "The soft byte limit exceeds the hard one.";
    AddtimeHserr = 16, "SADB_X_DIAGNOSTIC_ADDTIME_HSERR", "The soft (or idle) add-time limit is later than the hard one.";
    UsetimeHserr = 17, "SADB_X_DIAGNOSTIC_USETIME_HSERR", "The soft (or idle) use-time limit is later than the hard one.";
    MissingSrc = 18, "SADB_X_DIAGNOSTIC_MISSING_SRC", "The source address extension is required and absent.";
    MissingDst = 19, "SADB_X_DIAGNOSTIC_MISSING_DST", "The destination address extension is required and absent.";
    MissingSa = 20, "SADB_X_DIAGNOSTIC_MISSING_SA", "The SA extension is required and absent.";
    MissingEkey = 21, "SADB_X_DIAGNOSTIC_MISSING_EKEY", "The encryption algorithm needs a key and none was given.";
    MissingAkey = 22, "SADB_X_DIAGNOSTIC_MISSING_AKEY", "The authentication algorithm needs a key and none was given.";
    MissingRange = 23, "SADB_X_DIAGNOSTIC_MISSING_RANGE", "GETSPI needs an SPI range extension.";
    DuplicateSrc = 24, "SADB_X_DIAGNOSTIC_DUPLICATE_SRC", "The source address extension appears twice.";
    DuplicateDst = 25, "SADB_X_DIAGNOSTIC_DUPLICATE_DST", "The destination address extension appears twice.";
    DuplicateSa = 26, "SADB_X_DIAGNOSTIC_DUPLICATE_SA", "The SA extension appears twice.";
    DuplicateEkey = 27, "SADB_X_DIAGNOSTIC_DUPLICATE_EKEY", "The encryption key extension appears twice.";
    DuplicateAkey = 28, "SADB_X_DIAGNOSTIC_DUPLICATE_AKEY", "The authentication key extension appears twice.";
    DuplicateRange = 29, "SADB_X_DIAGNOSTIC_DUPLICATE_RANGE", "The SPI range extension appears twice.";
    MalformedSrc = 30, "SADB_X_DIAGNOSTIC_MALFORMED_SRC", "The source address extension is badly formed.";
    MalformedDst = 31, "SADB_X_DIAGNOSTIC_MALFORMED_DST", "The destination address extension is badly formed.";
    MalformedSa = 32, "SADB_X_DIAGNOSTIC_MALFORMED_SA", "The SA extension is badly formed (or names a reserved SPI).";
    MalformedEkey = 33, "SADB_X_DIAGNOSTIC_MALFORMED_EKEY", "The encryption key extension is badly formed (length, zero bits, all-zero key).";
    MalformedAkey = 34, "SADB_X_DIAGNOSTIC_MALFORMED_AKEY", "The authentication key extension is badly formed (length, zero bits, all-zero key).";
    MalformedRange = 35, "SADB_X_DIAGNOSTIC_MALFORMED_RANGE", "The SPI range is badly formed, inverted or entirely reserved.";
    AkeyPresent = 36, "SADB_X_DIAGNOSTIC_AKEY_PRESENT", "An authentication key was given where none is allowed.";
    EkeyPresent = 37, "SADB_X_DIAGNOSTIC_EKEY_PRESENT", "An encryption key was given where none is allowed.";
    PropPresent = 38, "SADB_X_DIAGNOSTIC_PROP_PRESENT", "A proposal was given where none is allowed.";
    SuppPresent = 39, "SADB_X_DIAGNOSTIC_SUPP_PRESENT", "A supported-algorithms extension was sent to the kernel side.";
    BadAalg = 40, "SADB_X_DIAGNOSTIC_BAD_AALG", "The authentication algorithm is unknown or not allowed here.";
    BadEalg = 41, "SADB_X_DIAGNOSTIC_BAD_EALG", "The encryption algorithm is unknown or not allowed here.";
    BadSaflags = 42, "SADB_X_DIAGNOSTIC_BAD_SAFLAGS", "The SA flags contain bits that may not be set here.";
    BadSastate = 43, "SADB_X_DIAGNOSTIC_BAD_SASTATE", "The SA state is not valid for this operation.";
    BadAkeybits = 44, "SADB_X_DIAGNOSTIC_BAD_AKEYBITS", "The authentication key has the wrong number of bits.";
    BadEkeybits = 45, "SADB_X_DIAGNOSTIC_BAD_EKEYBITS", "The encryption key has the wrong number of bits.";
    EncrNotsupp = 46, "SADB_X_DIAGNOSTIC_ENCR_NOTSUPP", "This SA type does not do encryption.";
    WeakEkey = 47, "SADB_X_DIAGNOSTIC_WEAK_EKEY", "The encryption key is a known weak key.";
    WeakAkey = 48, "SADB_X_DIAGNOSTIC_WEAK_AKEY", "The authentication key is a known weak key.";
    DuplicateKmp = 49, "SADB_X_DIAGNOSTIC_DUPLICATE_KMP", "The SA already belongs to another key management protocol.";
    DuplicateKmc = 50, "SADB_X_DIAGNOSTIC_DUPLICATE_KMC", "The SA already carries another key management cookie.";
    MissingNattLoc = 51, "SADB_X_DIAGNOSTIC_MISSING_NATT_LOC", "The NAT-T local flag is set but its address extension is absent.";
    MissingNattRem = 52, "SADB_X_DIAGNOSTIC_MISSING_NATT_REM", "The NAT-T remote flag is set but its address extension is absent.";
    DuplicateNattLoc = 53, "SADB_X_DIAGNOSTIC_DUPLICATE_NATT_LOC", "The NAT-T local address extension appears twice.";
    DuplicateNattRem = 54, "SADB_X_DIAGNOSTIC_DUPLICATE_NATT_REM", "The NAT-T remote address extension appears twice.";
    MalformedNattLoc = 55, "SADB_X_DIAGNOSTIC_MALFORMED_NATT_LOC", "The NAT-T local address extension is badly formed.";
    MalformedNattRem = 56, "SADB_X_DIAGNOSTIC_MALFORMED_NATT_REM", "The NAT-T remote address extension is badly formed.";
    DuplicateNattPorts = 57, "SADB_X_DIAGNOSTIC_DUPLICATE_NATT_PORTS", "NAT-T ports were given twice.";
    MissingInnerSrc = 58, "SADB_X_DIAGNOSTIC_MISSING_INNER_SRC", "A tunnel-mode SA needs an inner-source extension.";
    MissingInnerDst = 59, "SADB_X_DIAGNOSTIC_MISSING_INNER_DST", "A tunnel-mode SA needs an inner-destination extension.";
    DuplicateInnerSrc = 60, "SADB_X_DIAGNOSTIC_DUPLICATE_INNER_SRC", "The inner-source extension appears twice.";
    DuplicateInnerDst = 61, "SADB_X_DIAGNOSTIC_DUPLICATE_INNER_DST", "The inner-destination extension appears twice.";
    MalformedInnerSrc = 62, "SADB_X_DIAGNOSTIC_MALFORMED_INNER_SRC", "The inner-source extension is badly formed.";
    MalformedInnerDst = 63, "SADB_X_DIAGNOSTIC_MALFORMED_INNER_DST", "The inner-destination extension is badly formed.";
    PrefixInnerSrc = 64, "SADB_X_DIAGNOSTIC_PREFIX_INNER_SRC", "The inner-source prefix length is too long for its family.";
    PrefixInnerDst = 65, "SADB_X_DIAGNOSTIC_PREFIX_INNER_DST", "The inner-destination prefix length is too long for its family.";
    BadInnerDstAf = 66, "SADB_X_DIAGNOSTIC_BAD_INNER_DST_AF", "The inner-destination address family is not IPv4 or IPv6.";
    InnerAfMismatch = 67, "SADB_X_DIAGNOSTIC_INNER_AF_MISMATCH", "Inner address families differ from each other or from the outer protocol (4/41).";
    BadNattRemAf = 68, "SADB_X_DIAGNOSTIC_BAD_NATT_REM_AF", "The NAT-T remote address family is wrong.";
    BadNattLocAf = 69, "SADB_X_DIAGNOSTIC_BAD_NATT_LOC_AF", "The NAT-T local address family is wrong.";
    ProtoMismatch = 70, "SADB_X_DIAGNOSTIC_PROTO_MISMATCH", "Source and destination name different upper-layer protocols.";
    InnerProtoMismatch = 71, "SADB_X_DIAGNOSTIC_INNER_PROTO_MISMATCH", "Inner source and destination name different upper-layer protocols.";
    DualPortSets = 72, "SADB_X_DIAGNOSTIC_DUAL_PORT_SETS", "Both outer and inner ports were given.";
    PairInappropriate = 73, "SADB_X_DIAGNOSTIC_PAIR_INAPPROPRIATE", "The SA cannot be paired with the named SA.";
    PairAddMismatch = 74, "SADB_X_DIAGNOSTIC_PAIR_ADD_MISMATCH", "The pair SA's addresses are not the reverse of this SA's.";
    PairAlready = 75, "SADB_X_DIAGNOSTIC_PAIR_ALREADY", "The SA is already paired with another SA.";
    PairSaNotfound = 76, "SADB_X_DIAGNOSTIC_PAIR_SA_NOTFOUND", "The SA has no pair SA to operate on.";
    BadSaDirection = 77, "SADB_X_DIAGNOSTIC_BAD_SA_DIRECTION", "The SA direction flags are not valid here.";
    SaNotfound = 78, "SADB_X_DIAGNOSTIC_SA_NOTFOUND", "No such SA.";
    SaExpired = 79, "SADB_X_DIAGNOSTIC_SA_EXPIRED", "The SA is no longer valid.";
    BadCtx = 80, "SADB_X_DIAGNOSTIC_BAD_CTX", "The algorithm could not be set up with these parameters.";
    InvalidReplay = 81, "SADB_X_DIAGNOSTIC_INVALID_REPLAY", "The replay counter or replay window is not acceptable.";
    MissingLifetime = 82, "SADB_X_DIAGNOSTIC_MISSING_LIFETIME", "The lifetimes are not acceptable for this operation.";
    BadLabel = 83, "SADB_X_DIAGNOSTIC_BAD_LABEL", "Sensitivity labels are not supported or not valid.";
    MissingAstr = 84, "SADB_X_DIAGNOSTIC_MISSING_ASTR", "The TCP-signature authentication string is missing.";
    DuplicateAstr = 85, "SADB_X_DIAGNOSTIC_DUPLICATE_ASTR", "The TCP-signature authentication string appears twice.";
    MalformedAstr = 86, "SADB_X_DIAGNOSTIC_MALFORMED_ASTR", "The TCP-signature authentication string is badly formed.";
}

impl Diagnostic {
    /// The number carried in `sadb_x_msg_diagnostic`.
    pub const fn code(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Diagnostic code {}: {}", self.code(), self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_and_round_trip() {
        for (i, d) in Diagnostic::ALL.iter().enumerate() {
            assert_eq!(usize::from(d.code()), i);
            assert_eq!(Diagnostic::from_u16(d.code()), Some(*d));
        }
        assert_eq!(Diagnostic::from_u16(87), None);
        assert_eq!(Diagnostic::MissingSa.code(), 20);
        assert_eq!(Diagnostic::BadLabel.code(), 83);
        assert_eq!(
            Diagnostic::InvalidReplay.c_name(),
            "SADB_X_DIAGNOSTIC_INVALID_REPLAY"
        );
    }
}
