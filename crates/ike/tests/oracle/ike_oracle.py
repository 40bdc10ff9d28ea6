#!/usr/bin/env python3
"""Independent oracle for the ike crate's tests, written from RFC 7296, RFC 3526,
RFC 5282, RFC 7634 and RFC 4868 with Python's standard library (hmac, hashlib) and,
for the SK payload operations only, the `cryptography` package.

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout.
Byte strings are hex. Nothing here is shared with the Rust code under test.
"""
import hashlib
import hmac
import json
import sys

HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def prf(alg, key, data):
    return hmac.new(key, data, HASHES[alg]).digest()


def prf_plus(alg, key, seed, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = prf(alg, key, t + seed + bytes([i]))
        out += t
        i += 1
    return out[:length]


def take(buf, sizes):
    parts, at = [], 0
    for n in sizes:
        parts.append(buf[at:at + n])
        at += n
    return parts


def ike_keys(r):
    alg = r["prf"]
    ni, nr, gir = (bytes.fromhex(r[k]) for k in ("ni", "nr", "gir"))
    spii, spir = bytes.fromhex(r["spii"]), bytes.fromhex(r["spir"])
    skeyseed = prf(alg, ni + nr, gir)
    p = HASHES[alg]().digest_size
    e, a = r["encr"], r["integ"]
    km = prf_plus(alg, skeyseed, ni + nr + spii + spir, 3 * p + 2 * e + 2 * a)
    names = ["sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr"]
    vals = take(km, [p, a, a, e, e, p, p])
    out = {n: v.hex() for n, v in zip(names, vals)}
    out["skeyseed"] = skeyseed.hex()
    return out


def child(r):
    alg = r["prf"]
    seed = bytes.fromhex(r.get("gir", "")) + bytes.fromhex(r["ni"]) + bytes.fromhex(r["nr"])
    e, a = r["encr"], r["integ"]
    km = prf_plus(alg, bytes.fromhex(r["sk_d"]), seed, 2 * (e + a))
    vals = take(km, [e, a, e, a])
    return dict(zip(["encr_i", "integ_i", "encr_r", "integ_r"], (v.hex() for v in vals)))


def rekey(r):
    alg = r["prf"]
    data = bytes.fromhex(r["gir"]) + bytes.fromhex(r["ni"]) + bytes.fromhex(r["nr"])
    return {"skeyseed": prf(alg, bytes.fromhex(r["sk_d"]), data).hex()}


def psk_auth(r):
    """RFC 7296 section 2.15: AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"),
    RealMessage | NonceData | prf(SK_p, IDType | RESERVED | IDData))."""
    alg = r["prf"]
    maced_id = prf(alg, bytes.fromhex(r["sk_p"]),
                   bytes([r["id_type"], 0, 0, 0]) + bytes.fromhex(r["id"]))
    key = prf(alg, bytes.fromhex(r["psk"]), b"Key Pad for IKEv2")
    octets = bytes.fromhex(r["msg"]) + bytes.fromhex(r["nonce"]) + maced_id
    return {"auth": prf(alg, key, octets).hex()}


def floor_pi_times_2_pow(k):
    """floor(2^k * pi) by Machin's formula in binary fixed point with guard bits."""
    guard = 64
    one = 1 << (k + guard)

    def arctan_inv(x):
        total = term = one // x
        x2, n, sign = x * x, 3, -1
        while term:
            term //= x2
            total += sign * (term // n)
            sign, n = -sign, n + 2
        return total

    pi = 16 * arctan_inv(5) - 4 * arctan_inv(239)
    return pi >> guard


def modp2048_prime():
    # RFC 3526 section 3: p = 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }
    return 2**2048 - 2**1984 - 1 + 2**64 * (floor_pi_times_2_pow(1918) + 124476)


P14 = modp2048_prime()


def modp(r):
    x = int(r["x"], 16)
    y = int(r["y"], 16)
    return {
        "public": pow(2, x, P14).to_bytes(256, "big").hex(),
        "shared": pow(y, x, P14).to_bytes(256, "big").hex(),
    }


def aead(suite, key):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    k, salt = key[:-4], key[-4:]
    return (AESGCM(k) if suite == "gcm" else ChaCha20Poly1305(k)), salt


def sk_seal(r):
    """Builds header | SK header | IV | E(inner | pad | padlen) | ICV from the RFCs."""
    suite = r["suite"]
    hdr = bytearray(bytes.fromhex(r["header"]))  # 28 bytes, Next Payload/Length fixed below
    inner, first, iv = bytes.fromhex(r["inner"]), r["first"], bytes.fromhex(r["iv"])
    ek = bytes.fromhex(r["ek"])
    if suite == "cbc":
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        padlen = (16 - (len(inner) + 1) % 16) % 16
        plain = inner + bytes(padlen) + bytes([padlen])
        enc = Cipher(algorithms.AES(ek), modes.CBC(iv)).encryptor()
        ct = enc.update(plain) + enc.finalize()
        icv_len = {"sha256": 16, "sha384": 24, "sha512": 32}[r["integ"]]
        sk_len = 4 + len(iv) + len(ct) + icv_len
        hdr[16] = 46
        hdr[24:28] = (28 + sk_len).to_bytes(4, "big")
        signed = bytes(hdr) + bytes([first, 0]) + sk_len.to_bytes(2, "big") + iv + ct
        icv = hmac.new(bytes.fromhex(r["ak"]), signed, HASHES[r["integ"]]).digest()[:icv_len]
        return {"msg": (signed + icv).hex()}
    plain = inner + bytes([0])
    sk_len = 4 + len(iv) + len(plain) + 16
    hdr[16] = 46
    hdr[24:28] = (28 + sk_len).to_bytes(4, "big")
    aad = bytes(hdr) + bytes([first, 0]) + sk_len.to_bytes(2, "big")
    cipher, salt = aead(suite, ek)
    ct = cipher.encrypt(salt + iv, plain, aad)
    return {"msg": (aad + iv + ct).hex()}


def sk_open(r):
    suite, msg = r["suite"], bytes.fromhex(r["msg"])
    ek = bytes.fromhex(r["ek"])
    first = msg[28]
    # SKF (RFC 7383 section 2.5): Fragment Number and Total Fragments come before the IV
    # and belong to the associated data.
    iv_at = 36 if msg[16] == 53 else 32
    body = msg[iv_at:]
    if suite == "cbc":
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        icv_len = {"sha256": 16, "sha384": 24, "sha512": 32}[r["integ"]]
        want = hmac.new(bytes.fromhex(r["ak"]), msg[:-icv_len], HASHES[r["integ"]]).digest()
        if not hmac.compare_digest(want[:icv_len], msg[-icv_len:]):
            return {"error": "icv"}
        iv, ct = body[:16], body[16:-icv_len]
        dec = Cipher(algorithms.AES(ek), modes.CBC(iv)).decryptor()
        plain = dec.update(ct) + dec.finalize()
    else:
        cipher, salt = aead(suite, ek)
        iv = body[:8]
        plain = cipher.decrypt(salt + iv, body[8:], msg[:iv_at])
    inner = plain[: len(plain) - plain[-1] - 1]
    return {"first": first, "inner": inner.hex()}


def info(_r):
    try:
        import cryptography  # noqa: F401
        have = True
    except ImportError:
        have = False
    return {"cryptography": have}


OPS = {"ike_keys": ike_keys, "child": child, "rekey": rekey, "modp": modp, "psk_auth": psk_auth,
       "sk_seal": sk_seal, "sk_open": sk_open, "info": info}

for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps(OPS[req["op"]](req)), flush=True)
