#!/usr/bin/env bash
# Regenerates the test PKI of crates/ike/tests/cert_auth.rs with the openssl CLI.
# Output: NAME.crt (DER certificate) and NAME.key (DER PKCS#8 private key), all
# test-only. The certificates are valid from the time of generation; the tests check
# them at "root CA notBefore + 30 days", so they do not depend on today's date.
#
#   rsa-root  (RSA 2048, CA)  -> rsa-int (RSA 2048, CA, pathlen 0) -> alice-rsa (FQDN alice.example)
#                             -> bob-rsa   (RSA 3072, IP 192.0.2.2)
#                             -> alice-expired (RSA 2048, valid 1 day)
#                             -> alice-nosig (RSA 2048, keyUsage keyEncipherment only)
#   ec-root   (P-384, CA)     -> alice-ec (P-256, FQDN alice.example, DN in the subject)
#                             -> bob-ec   (P-384, IP 192.0.2.2)
#   rogue-root (P-256, CA)    -> alice-rogue (P-256, FQDN alice.example)
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { # name algorithm-options...
    local n=$1; shift
    openssl genpkey "$@" -out "$tmp/$n.pem" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$tmp/$n.pem" -outform DER -out "$n.key"
}
ca_ext() { # pathlen
    printf 'basicConstraints=critical,CA:true%s\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n' "$1" >"$tmp/ext"
}
root() { # name subject
    ca_ext ""
    openssl req -new -x509 -key "$tmp/$1.pem" -subj "$2" -days 3650 -sha256 \
        -extensions v3 -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n'; cat "$tmp/ext") \
        -out "$tmp/$1.crt.pem"
    openssl x509 -in "$tmp/$1.crt.pem" -outform DER -out "$1.crt"
}
issue() { # name subject issuer days ext-file [digest]
    openssl req -new -key "$tmp/$1.pem" -subj "$2" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$3.crt.pem" -CAkey "$tmp/$3.pem" \
        -CAcreateserial -days "$4" -"${6:-sha256}" -extfile "$5" -out "$tmp/$1.crt.pem" 2>/dev/null
    openssl x509 -in "$tmp/$1.crt.pem" -outform DER -out "$1.crt"
}
ee_ext() { # san [keyUsage]
    printf 'basicConstraints=CA:false\nkeyUsage=critical,%s\nsubjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' \
        "${2:-digitalSignature}" "$1" >"$tmp/$1.ext"
    echo "$tmp/$1.ext"
}

rsa=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)
key rsa-root "${rsa[@]}"
root rsa-root "/C=XX/O=Ironswan Test/CN=RSA Root"
key rsa-int "${rsa[@]}"
ca_ext ",pathlen:0"
issue rsa-int "/C=XX/O=Ironswan Test/CN=RSA Intermediate" rsa-root 3650 "$tmp/ext"
key alice-rsa "${rsa[@]}"
issue alice-rsa "/C=XX/O=Ironswan Test/CN=alice" rsa-int 3650 "$(ee_ext DNS:alice.example)" sha384
key bob-rsa -algorithm RSA -pkeyopt rsa_keygen_bits:3072
issue bob-rsa "/C=XX/O=Ironswan Test/CN=bob" rsa-root 3650 "$(ee_ext IP:192.0.2.2)"
key alice-expired "${rsa[@]}"
issue alice-expired "/C=XX/O=Ironswan Test/CN=alice" rsa-root 1 "$(ee_ext DNS:alice.example)"
key alice-nosig "${rsa[@]}"
issue alice-nosig "/C=XX/O=Ironswan Test/CN=alice" rsa-root 3650 "$(ee_ext DNS:alice.example keyEncipherment)"

key ec-root -algorithm EC -pkeyopt ec_paramgen_curve:P-384
root ec-root "/C=XX/O=Ironswan Test/CN=EC Root"
key alice-ec -algorithm EC -pkeyopt ec_paramgen_curve:P-256
issue alice-ec "/C=XX/O=Ironswan Test/CN=alice.example" ec-root 3650 "$(ee_ext DNS:alice.example,email:alice@example.org)" sha384
key bob-ec -algorithm EC -pkeyopt ec_paramgen_curve:P-384
issue bob-ec "/C=XX/O=Ironswan Test/CN=bob" ec-root 3650 "$(ee_ext IP:192.0.2.2)"

key rogue-root -algorithm EC -pkeyopt ec_paramgen_curve:P-256
root rogue-root "/C=XX/O=Ironswan Test/CN=EC Root"
key alice-rogue -algorithm EC -pkeyopt ec_paramgen_curve:P-256
issue alice-rogue "/C=XX/O=Ironswan Test/CN=alice.example" rogue-root 3650 "$(ee_ext DNS:alice.example)"
rm -f ./*.srl
