#!/usr/bin/env python3
"""Independent ESP/AH implementation for Ironswan's differential tests.

A thin JSON-lines front end to scapy's ``scapy.layers.ipsec`` (PyPI scapy,
pinned to 2.8.0 by scripts/venv.sh). Start it once, then write one JSON
request per line on stdin; it answers with exactly one JSON object per line
on stdout, flushed after each, in request order. It exits 0 at end of input.
Nothing else is ever written to stdout (stray output goes to stderr).

Requests
--------
encrypt / decrypt::

    {"op": "encrypt" | "decrypt",
     "id": <anything, optional: echoed back in the response>,
     "sa": {"proto": "esp" | "ah",
            "spi": 4096,
            "crypt_algo": "AES-GCM" | ... | "NULL" | null,   (ESP only)
            "crypt_key": "hex, salt/nonce included at the end where the
                          algorithm has one (CTR/GCM/GMAC/ChaCha: 4, CCM: 3)",
            "icv_size": 16,           (optional, AEAD only: GCM/CCM 8|12|16)
            "auth_algo": "HMAC-SHA1-96" | ... | "NULL" | null,
            "auth_key": "hex",
            "tunnel": null | {"src": "ip", "dst": "ip", ...more IP()/IPv6()
                              header fields such as "ttl", "id", "tos",
                              "hlim", "tc", "fl"},
            "esn_en": false, "esn": 0,  (esn = high 32 bits of the ESN)
            "nat_t": null | {"sport": 4500, "dport": 4500}},
     "packet": "hex of a full IPv4 or IPv6 packet",
     "seq_num": 1,           (encrypt only: the 32-bit header value, default 1)
     "iv": "hex"}            (encrypt, ESP only, optional: random if absent)

info::

    {"op": "info"}

Responses
---------
``{"ok": true, "packet": "hex"}`` plus, for ESP encrypt, ``"iv"`` (the IV
used, hex) and, for decrypt, ``"seq"`` (the header's sequence number).
On failure ``{"ok": false, "error": "ExceptionType: text", "kind": K}`` where
K is one of:

* ``"unsupported"``: scapy (and so this oracle) cannot do that algorithm or
  parameter (e.g. Camellia, AES-XCBC, a 8-byte ChaCha20-Poly1305 ICV). A
  differential test should skip the case.
* ``"integrity"``: the ICV (or AEAD tag) did not verify.
* ``"bad_request"``: malformed JSON, unknown op, missing or invalid field,
  wrong key/IV length.
* ``"error"``: anything else raised while processing (malformed packet, SPI
  mismatch, ...).

Where the oracle goes beyond plain scapy (all documented in interop/README.md)
----------------------------------------------------------------------------
* AES-GCM with an 8 or 12 byte ICV: scapy's AES-GCM always emits and expects
  a 16-byte tag whatever ``crypt_icv_size`` says. For those sizes the oracle
  swaps in a scapy ``CryptAlgo`` built on cryptography's ``modes.GCM``, which
  scapy's generic AEAD path truncates on output and verifies with
  ``min_tag_length`` on input. The ESP framing stays scapy's.
* IPv6 NAT-T: scapy writes a zero UDP checksum (illegal in IPv6); the oracle
  recomputes it on encrypt, and on decrypt it rejects an IPv6 UDP checksum that
  is zero or wrong. IPv4 NAT-T keeps scapy's zero checksum (RFC 3948 3.1.2)
  and a nonzero IPv4 checksum is verified on decrypt.
* NAT-T decrypt also works when neither UDP port is 4500.
* Key lengths are checked up front (scapy mostly leaves that to the cipher).
* ``decrypt()`` modifies its argument: every request parses its own copy.
"""

import json
import os
import socket
import struct
import sys

# Anything printed by accident (or by scapy at import) must not corrupt the
# response stream: keep a private handle on the real stdout and send
# sys.stdout to stderr.
_OUT = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="ascii", buffering=1)
sys.stdout = sys.stderr

import cryptography  # noqa: E402
import scapy  # noqa: E402
from cryptography.hazmat.primitives.ciphers import algorithms, modes  # noqa: E402
from scapy.compat import raw  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6, in6_chksum  # noqa: E402
from scapy.layers.ipsec import (  # noqa: E402
    AH,
    AUTH_ALGOS,
    CRYPT_ALGOS,
    ESP,
    CryptAlgo,
    IPSecIntegrityError,
    SecurityAssociation,
)
from scapy.utils import checksum  # noqa: E402


class BadRequest(Exception):
    """The request itself is malformed."""


class Unsupported(Exception):
    """scapy cannot do what was asked; a differential test should skip."""


# AEAD algorithms and the ICV sizes this oracle can produce and check.
AEAD_ICV_SIZES = {
    "AES-GCM": (8, 12, 16),
    "AES-CCM": (8, 12, 16),
    "AES-NULL-GMAC": (16,),
    "CHACHA20-POLY1305": (16,),
}

# Key lengths (without salt). scapy takes AES sizes from cryptography's AES,
# which also lists 512 bits (for XTS); CBC/CTR only take 128/192/256.
_AES_SIZES = (16, 24, 32)
KEY_SIZES_OVERRIDE = {"AES-CBC": _AES_SIZES, "AES-CTR": _AES_SIZES}


def _sizes(value):
    if value is None:
        return None
    if isinstance(value, int):
        return (value,)
    return tuple(sorted(set(value)))


def crypt_key_sizes(name):
    if name in KEY_SIZES_OVERRIDE:
        return KEY_SIZES_OVERRIDE[name]
    return _sizes(CRYPT_ALGOS[name].key_size)


def auth_key_sizes(name):
    return _sizes(AUTH_ALGOS[name].key_size)


# AES-GCM on cryptography's streaming GCM mode: scapy's generic AEAD path
# (mode is a ModeWithAuthenticationTag) truncates the tag to icv_size on
# encrypt and passes min_tag_length=len(icv) on decrypt, so 8/12-byte ICVs
# work. Same IV/salt/AAD handling as scapy's own AES-GCM entry.
_GCM_TRUNCATED = CryptAlgo(
    "AES-GCM",
    cipher=algorithms.AES,
    mode=modes.GCM,
    key_size=_AES_SIZES,
    salt_size=4,
    block_size=1,
    iv_size=8,
    icv_size=16,
    format_mode_iv=lambda sa, iv, **kw: sa.crypt_salt + iv,
)


def _canon(name, table, what):
    """Map a requested algorithm name to scapy's spelling (case-insensitive)."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise BadRequest("%s must be a string or null" % what)
    for known in table:
        if known.lower() == name.lower():
            return known
    raise Unsupported("%s %r is not supported by scapy %s (supported: %s)"
                      % (what, name, scapy.__version__, ", ".join(table)))


def _hex(value, what, allow_none=True):
    if value is None:
        if allow_none:
            return None
        raise BadRequest("missing %s" % what)
    if not isinstance(value, str):
        raise BadRequest("%s must be a hex string" % what)
    try:
        return bytes.fromhex(value)
    except ValueError as err:
        raise BadRequest("%s is not valid hex: %s" % (what, err))


def _uint(value, what, default=None, bits=32):
    if value is None:
        if default is None:
            raise BadRequest("missing %s" % what)
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("%s must be an integer" % what)
    if not 0 <= value < (1 << bits):
        raise BadRequest("%s out of range for %d bits: %d" % (what, bits, value))
    return value


def parse_ip(data):
    if not data:
        raise BadRequest("empty packet")
    version = data[0] >> 4
    if version == 4:
        return IP(data)
    if version == 6:
        return IPv6(data)
    raise BadRequest("not an IP packet (version nibble %d)" % version)


def build_tunnel_header(spec):
    if not isinstance(spec, dict):
        raise BadRequest("tunnel must be null or an object")
    fields = dict(spec)
    try:
        src = fields.pop("src")
        dst = fields.pop("dst")
    except KeyError as err:
        raise BadRequest("tunnel needs src and dst (missing %s)" % err)
    cls = IPv6 if ":" in src else IP
    if (":" in dst) != (cls is IPv6):
        raise BadRequest("tunnel src and dst are not the same family")
    try:
        return cls(src=src, dst=dst, **fields)
    except Exception as err:  # scapy: unknown field name, bad value
        raise BadRequest("bad tunnel header field: %s" % err)


def build_sa(spec, seq_num=1):
    """Return (scapy SecurityAssociation, details dict)."""
    if not isinstance(spec, dict):
        raise BadRequest("sa must be an object")
    proto_name = spec.get("proto")
    if not isinstance(proto_name, str) or proto_name.lower() not in ("esp", "ah"):
        raise BadRequest("sa.proto must be \"esp\" or \"ah\"")
    proto = ESP if proto_name.lower() == "esp" else AH

    spi = _uint(spec.get("spi"), "sa.spi")
    esn_en = spec.get("esn_en", False)
    if not isinstance(esn_en, bool):
        raise BadRequest("sa.esn_en must be a boolean")
    esn = _uint(spec.get("esn"), "sa.esn", default=0)

    crypt_name = _canon(spec.get("crypt_algo"), CRYPT_ALGOS, "crypt_algo")
    crypt_key = _hex(spec.get("crypt_key"), "sa.crypt_key")
    auth_name = _canon(spec.get("auth_algo"), AUTH_ALGOS, "auth_algo")
    auth_key = _hex(spec.get("auth_key"), "sa.auth_key")
    icv_size = spec.get("icv_size")
    if icv_size is not None:
        icv_size = _uint(icv_size, "sa.icv_size", bits=8)

    if proto is AH:
        if crypt_name not in (None, "NULL"):
            raise BadRequest("AH takes no crypt_algo")
        crypt_name = None
        crypt_key = None
        if auth_name in (None, "NULL"):
            raise BadRequest("AH needs an auth_algo")

    # Key checks (scapy mostly leaves them to the cipher, which is later and
    # less clear about it).
    salt = 0
    if crypt_name not in (None, "NULL"):
        salt = CRYPT_ALGOS[crypt_name].salt_size
        sizes = crypt_key_sizes(crypt_name)
        if crypt_key is None or len(crypt_key) - salt not in sizes:
            raise BadRequest(
                "%s key must be %s bytes%s, got %d" % (
                    crypt_name, "/".join(str(s) for s in sizes),
                    " + %d bytes of salt" % salt if salt else "",
                    0 if crypt_key is None else len(crypt_key)))
    if auth_name not in (None, "NULL"):
        sizes = auth_key_sizes(auth_name)
        if auth_key is None or (sizes and len(auth_key) not in sizes):
            raise BadRequest("%s key must be %s bytes, got %d" % (
                auth_name, "/".join(str(s) for s in sizes) if sizes else "some",
                0 if auth_key is None else len(auth_key)))

    crypt_icv_size = None
    truncated_gcm = False
    if crypt_name in AEAD_ICV_SIZES:
        allowed = AEAD_ICV_SIZES[crypt_name]
        if icv_size is not None and icv_size not in allowed:
            raise Unsupported("%s with a %d-byte ICV (oracle supports %s)" % (
                crypt_name, icv_size, "/".join(str(s) for s in allowed)))
        if crypt_name == "AES-GCM" and icv_size in (8, 12):
            truncated_gcm = True
        if crypt_name == "AES-CCM" and icv_size is not None:
            crypt_icv_size = icv_size  # scapy passes it to AESCCM(tag_length=)
        elif truncated_gcm:
            crypt_icv_size = icv_size
    elif icv_size is not None:
        # Non-AEAD: the ICV is the auth algorithm's; accept a matching value.
        expect = AUTH_ALGOS[auth_name].icv_size if auth_name else 0
        if icv_size != expect:
            raise BadRequest("icv_size %d does not match %s (%d bytes)" % (
                icv_size, auth_name or "no authentication", expect))

    tunnel = spec.get("tunnel")
    tunnel_header = None if tunnel is None else build_tunnel_header(tunnel)

    nat_t = spec.get("nat_t")
    nat_t_header = None
    if nat_t is not None:
        if proto is not ESP:
            raise BadRequest("nat_t is only allowed with ESP")
        if not isinstance(nat_t, dict):
            raise BadRequest("sa.nat_t must be null or an object")
        nat_t_header = UDP(sport=_uint(nat_t.get("sport"), "nat_t.sport", 4500, 16),
                           dport=_uint(nat_t.get("dport"), "nat_t.dport", 4500, 16))

    sa = SecurityAssociation(
        proto, spi=spi, seq_num=seq_num,
        crypt_algo=crypt_name, crypt_key=crypt_key or None,
        crypt_icv_size=crypt_icv_size,
        auth_algo=auth_name, auth_key=auth_key,
        tunnel_header=tunnel_header, nat_t_header=nat_t_header,
        esn_en=esn_en, esn=esn)
    if truncated_gcm:
        sa.crypt_algo = _GCM_TRUNCATED
    return sa


# ----------------------------------------------------------------------------
# UDP checksums for NAT-T


def _udp_offset_and_layer(pkt):
    udp = pkt.getlayer(UDP)
    if udp is None:
        return None, None
    whole = raw(pkt)
    offset = len(whole) - len(raw(udp))
    return offset, udp


def _udp_checksum(pkt, udp, udp_bytes):
    """Checksum of udp_bytes (checksum field zeroed) under pkt's addresses."""
    zeroed = udp_bytes[:6] + b"\x00\x00" + udp_bytes[8:]
    if isinstance(pkt, IPv6):
        value = in6_chksum(socket.IPPROTO_UDP, udp, zeroed)
    else:
        ip = udp.underlayer
        pseudo = (socket.inet_pton(socket.AF_INET, ip.src)
                  + socket.inet_pton(socket.AF_INET, ip.dst)
                  + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(zeroed)))
        value = checksum(pseudo + zeroed)
    return 0xFFFF if value == 0 else value


def fix_ipv6_udp_checksum(data):
    pkt = IPv6(data)
    offset, udp = _udp_offset_and_layer(pkt)
    if udp is None:
        return data
    udp_bytes = data[offset:]
    value = _udp_checksum(pkt, udp, udp_bytes)
    return data[:offset + 6] + struct.pack("!H", value) + data[offset + 8:]


def check_udp_checksum(pkt, data):
    offset, udp = _udp_offset_and_layer(pkt)
    if udp is None:
        return
    udp_bytes = data[offset:offset + udp.len] if udp.len else data[offset:]
    got = struct.unpack("!H", udp_bytes[6:8])[0]
    if got == 0:
        if isinstance(pkt, IPv6):
            raise ValueError("IPv6 UDP checksum is zero (not allowed)")
        return  # IPv4: zero means "no checksum" (RFC 3948 3.1.2)
    want = _udp_checksum(pkt, udp, udp_bytes)
    if got != want:
        raise ValueError("bad UDP checksum 0x%04x, expected 0x%04x" % (got, want))


# ----------------------------------------------------------------------------
# operations


def op_encrypt(req):
    data = _hex(req.get("packet"), "packet", allow_none=False)
    seq = _uint(req.get("seq_num"), "seq_num", default=1)
    iv = _hex(req.get("iv"), "iv")
    sa = build_sa(req.get("sa"), seq_num=seq)
    pkt = parse_ip(data)
    if sa.proto is ESP:
        if iv is None:
            iv = sa.crypt_algo.generate_iv()
        elif len(iv) != sa.crypt_algo.iv_size:
            raise BadRequest("iv must be %d bytes for %s, got %d" % (
                sa.crypt_algo.iv_size, sa.crypt_algo.name, len(iv)))
        out = raw(sa.encrypt(pkt, seq_num=seq, iv=iv))
        if sa.nat_t_header is not None and out[0] >> 4 == 6:
            out = fix_ipv6_udp_checksum(out)
        return {"packet": out.hex(), "iv": iv.hex()}
    if iv:
        raise BadRequest("AH takes no iv")
    out = raw(sa.encrypt(pkt, seq_num=seq))
    return {"packet": out.hex()}


def op_decrypt(req):
    data = _hex(req.get("packet"), "packet", allow_none=False)
    if "seq_num" in req or "iv" in req:
        raise BadRequest("decrypt takes no seq_num or iv (they are in the packet)")
    sa = build_sa(req.get("sa"))
    pkt = parse_ip(data)
    if sa.nat_t_header is not None:
        udp = pkt.getlayer(UDP)
        if udp is None:
            raise ValueError("SA has nat_t but the packet has no UDP header")
        check_udp_checksum(pkt, data)
        if not udp.haslayer(ESP):
            # scapy binds ESP-in-UDP to port 4500 only: dissect it ourselves.
            payload = raw(udp.payload)
            udp.remove_payload()
            udp.add_payload(ESP(payload))
            pkt = pkt.__class__(raw(pkt))
    layer = pkt.getlayer(sa.proto)
    seq = layer.seq if layer is not None else None
    out = sa.decrypt(pkt.copy())
    return {"packet": raw(out).hex(), "seq": seq}


def op_info(_req):
    crypt = {}
    for name, algo in CRYPT_ALGOS.items():
        crypt[name] = {
            "key_sizes": list(crypt_key_sizes(name) or ()),
            "salt_size": algo.salt_size,
            "iv_size": algo.iv_size,
            "block_size": algo.block_size,
            "aead": bool(algo.is_aead),
            "icv_sizes": list(AEAD_ICV_SIZES.get(name, ())),
        }
    auth = {}
    for name, algo in AUTH_ALGOS.items():
        auth[name] = {
            "key_sizes": list(auth_key_sizes(name) or ()),
            "icv_size": algo.icv_size,
        }
    return {
        "scapy_version": scapy.__version__,
        "cryptography_version": cryptography.__version__,
        "python_version": sys.version.split()[0],
        "crypt_algos": list(CRYPT_ALGOS),
        "auth_algos": list(AUTH_ALGOS),
        "crypt": crypt,
        "auth": auth,
    }


OPS = {"encrypt": op_encrypt, "decrypt": op_decrypt, "info": op_info}


def handle(line):
    """Process one request line; return the response object."""
    req_id = None
    try:
        try:
            req = json.loads(line)
        except ValueError as err:
            raise BadRequest("invalid JSON: %s" % err)
        if not isinstance(req, dict):
            raise BadRequest("request must be a JSON object")
        req_id = req.get("id")
        op = req.get("op")
        if op not in OPS:
            raise BadRequest("unknown op %r (want one of %s)" % (op, ", ".join(OPS)))
        resp = {"ok": True}
        resp.update(OPS[op](req))
    except BadRequest as err:
        resp = {"ok": False, "kind": "bad_request", "error": "BadRequest: %s" % err}
    except Unsupported as err:
        resp = {"ok": False, "kind": "unsupported", "error": "Unsupported: %s" % err}
    except IPSecIntegrityError as err:
        resp = {"ok": False, "kind": "integrity",
                "error": "IPSecIntegrityError: %s" % (err,)}
    except Exception as err:  # noqa: BLE001 - any failure is an answer
        resp = {"ok": False, "kind": "error",
                "error": "%s: %s" % (type(err).__name__, err)}
    if req_id is not None:
        resp["id"] = req_id
    return resp


def main():
    stdin = sys.stdin
    while True:
        line = stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        _OUT.write(json.dumps(handle(line), separators=(",", ":")) + "\n")
        _OUT.flush()


if __name__ == "__main__":
    sys.exit(main())
