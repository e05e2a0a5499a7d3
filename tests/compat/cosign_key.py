#!/usr/bin/env python3
"""Independent check of a cosign-format encrypted private key, with PyNaCl and cryptography.

usage: cosign_key.py KEY PUB PASSWORD
Decrypts KEY (scrypt + NaCl secretbox over PKCS#8), checks that its public half equals PUB, and
prints the key's SHA-256 key id (of the DER SubjectPublicKeyInfo) on success. Exits 1 with a
message on any mismatch.
"""

import base64
import hashlib
import json
import sys

import nacl.secret
from cryptography.hazmat.primitives import serialization

LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")


def main() -> int:
    key_path, pub_path, password = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    lines = open(key_path).read().strip().splitlines()
    label = lines[0].removeprefix("-----BEGIN ").removesuffix("-----")
    if label not in LABELS or lines[-1] != f"-----END {label}-----":
        print(f"unexpected PEM framing: {lines[0]!r} / {lines[-1]!r}")
        return 1
    doc = json.loads(base64.b64decode("".join(lines[1:-1])))
    if doc["kdf"]["name"] != "scrypt" or doc["cipher"]["name"] != "nacl/secretbox":
        print(f"unexpected algorithms: {doc['kdf']['name']}, {doc['cipher']['name']}")
        return 1
    params = doc["kdf"]["params"]
    if params["N"] != 1 << 16 or params["r"] != 8 or params["p"] != 1:
        print(f"unexpected scrypt parameters {params} (cosign writes N=65536, r=8, p=1)")
        return 1
    secret = hashlib.scrypt(
        password,
        salt=base64.b64decode(doc["kdf"]["salt"]),
        n=params["N"],
        r=params["r"],
        p=params["p"],
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )
    der = nacl.secret.SecretBox(secret).decrypt(
        base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"])
    )
    private = serialization.load_der_private_key(der, password=None)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = serialization.load_pem_public_key(open(pub_path, "rb").read()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if spki != expected:
        print("the private key does not match the public key file")
        return 1
    print("sha256:" + hashlib.sha256(spki).hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
