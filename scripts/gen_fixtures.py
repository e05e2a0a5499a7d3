#!/usr/bin/env python3
"""Regenerates fixtures/keys/ from fixed seeds, with an implementation independent of signet.

Keys, encrypted key files and signatures are all derived from the seed strings below, so a
re-run writes byte-identical files. The encrypted private keys use cosign's format
(go-securesystemslib `encrypted`: scrypt, then NaCl secretbox over PKCS#8 DER), written here with
PyNaCl and `cryptography`, not with signet's code: a signet test that loads them proves the two
implementations agree.

Usage: scripts/gen-fixtures.sh   (sets up the Python environment, then runs this)
"""

import base64
import hashlib
import json
import pathlib
import random
import sys

import nacl.secret
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "keys"
PASSWORD = b"signet-fixture-password"
MESSAGE = b"signet fixture message\n"


def seed_bytes(label: str, n: int = 32) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"signet-fixtures/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def ec_key(label: str, curve) -> ec.EllipticCurvePrivateKey:
    order = {
        "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        "secp384r1": int(
            "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
            "581a0db248b0a77aecec196accc52973",
            16,
        ),
        "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    }[curve.name]
    scalar = int.from_bytes(seed_bytes(label, 64), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, curve)


def is_probable_prime(n: int, rng: random.Random) -> bool:
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(40):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A deterministic RSA key: `cryptography` cannot take a seed, so search primes ourselves."""
    rng = random.Random(seed_bytes(label))
    e = 65537

    def prime() -> int:
        while True:
            candidate = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if (candidate - 1) % e != 0 and is_probable_prime(candidate, rng):
                return candidate

    p, q = prime(), prime()
    while q == p:
        q = prime()
    n = p * q
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    )
    return numbers.private_key()


def pss_sign_fixed_salt(key: rsa.RSAPrivateKey, message: bytes, salt: bytes) -> bytes:
    """RSASSA-PSS (SHA-256, MGF1-SHA-256) with a fixed salt, so the fixture is reproducible."""
    numbers = key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    em_bits = n.bit_length() - 1
    em_len = (em_bits + 7) // 8
    m_hash = hashlib.sha256(message).digest()
    h = hashlib.sha256(b"\x00" * 8 + m_hash + salt).digest()
    ps = b"\x00" * (em_len - len(salt) - len(h) - 2)
    db = ps + b"\x01" + salt
    mask = b""
    counter = 0
    while len(mask) < len(db):
        mask += hashlib.sha256(h + counter.to_bytes(4, "big")).digest()
        counter += 1
    masked = bytes(a ^ b for a, b in zip(db, mask))
    masked = bytes([masked[0] & (0xFF >> (8 * em_len - em_bits))]) + masked[1:]
    em = masked + h + b"\xbc"
    return pow(int.from_bytes(em, "big"), d, n).to_bytes((n.bit_length() + 7) // 8, "big")


def pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def cosign_encrypt(
    pkcs8_der: bytes, password: bytes, label: str, log_n: int, seed: str
) -> str:
    salt = seed_bytes(seed + "/salt")
    nonce = seed_bytes(seed + "/nonce", 24)
    n = 1 << log_n
    key = hashlib.scrypt(password, salt=salt, n=n, r=8, p=1, maxmem=256 * 1024 * 1024, dklen=32)
    sealed = nacl.secret.SecretBox(key).encrypt(pkcs8_der, nonce).ciphertext
    doc = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": n, "r": 8, "p": 1},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return pem(label, json.dumps(doc, separators=(",", ":")).encode())


def pkcs8(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def spki_pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def write(name: str, data) -> None:
    path = OUT / name
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)

    # ECDSA P-256: the default signing key, in every encryption variant signet must load.
    p256 = ec_key("p256", ec.SECP256R1())
    write("p256.pub", spki_pem(p256))
    write("p256.key", cosign_encrypt(pkcs8(p256), PASSWORD, "ENCRYPTED SIGSTORE PRIVATE KEY", 16, "p256-n16"))
    write("p256-n15.key", cosign_encrypt(pkcs8(p256), PASSWORD, "ENCRYPTED SIGSTORE PRIVATE KEY", 15, "p256-n15"))
    write("p256-n17.key", cosign_encrypt(pkcs8(p256), PASSWORD, "ENCRYPTED SIGSTORE PRIVATE KEY", 17, "p256-n17"))
    write("p256-cosign-label.key", cosign_encrypt(pkcs8(p256), PASSWORD, "ENCRYPTED COSIGN PRIVATE KEY", 15, "p256-legacy"))
    write("p256-empty-password.key", cosign_encrypt(pkcs8(p256), b"", "ENCRYPTED SIGSTORE PRIVATE KEY", 15, "p256-empty"))
    sig = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    write("p256.sig", sig)

    # A second P-256 key, for "signed by someone else".
    other = ec_key("other", ec.SECP256R1())
    write("other.pub", spki_pem(other))
    write("other.key", cosign_encrypt(pkcs8(other), PASSWORD, "ENCRYPTED SIGSTORE PRIVATE KEY", 15, "other"))

    # Damaged and unsupported keys, for the error messages.
    good = (OUT / "p256-n15.key").read_text()
    body = "".join(good.strip().splitlines()[1:-1])
    doc = json.loads(base64.b64decode(body))
    ct = base64.b64decode(doc["ciphertext"])
    doc["ciphertext"] = base64.b64encode(ct[:100]).decode()
    write("truncated.key", pem("ENCRYPTED SIGSTORE PRIVATE KEY", json.dumps(doc, separators=(",", ":")).encode()))
    doc = json.loads(base64.b64decode(body))
    doc["kdf"]["params"]["N"] = 1 << 20
    write("scrypt-n20.key", pem("ENCRYPTED SIGSTORE PRIVATE KEY", json.dumps(doc, separators=(",", ":")).encode()))

    # Other key types signet verifies.
    p384 = ec_key("p384", ec.SECP384R1())
    write("p384.pub", spki_pem(p384))
    write("p384.key", cosign_encrypt(pkcs8(p384), PASSWORD, "ENCRYPTED SIGSTORE PRIVATE KEY", 15, "p384"))
    write("p384.sig", p384.sign(MESSAGE, ec.ECDSA(hashes.SHA384(), deterministic_signing=True)))

    ed = ed25519.Ed25519PrivateKey.from_private_bytes(seed_bytes("ed25519"))
    write("ed25519.pub", spki_pem(ed))
    write("ed25519.sig", ed.sign(MESSAGE))

    rsa_priv = rsa_key("rsa2048")
    write("rsa.pub", spki_pem(rsa_priv))
    write("rsa-pkcs1v15.sig", rsa_priv.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256()))
    pss = pss_sign_fixed_salt(rsa_priv, MESSAGE, seed_bytes("pss-salt"))
    # Prove our hand-rolled PSS is real PSS before committing it.
    rsa_priv.public_key().verify(
        pss,
        MESSAGE,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    write("rsa-pss.sig", pss)

    k1 = ec_key("secp256k1", ec.SECP256K1())
    write("secp256k1.pub", spki_pem(k1))

    write("message.txt", MESSAGE)
    write("password.txt", PASSWORD)
    print(f"wrote fixtures to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
