#!/usr/bin/env bash
# Regenerates fixtures/timestamp/: a test timestamp authority made with OpenSSL (EC P-256 root
# and TSA certificate, the TSA's with the critical extended key usage timeStamping, both valid
# for a century) and one RFC 3161 token from `openssl ts` over signed.bin. OpenSSL draws fresh
# keys, so a re-run writes different (equally valid) files; commit them together. Used as the
# fuzz target's authority and seed and by signet-core's tests that must run without openssl.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/fixtures/timestamp"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

cat >ext.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_tsa]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key
openssl req -x509 -new -key root.key -subj "/CN=Signet Fixture TSA Root" -days 36500 -sha256 \
  -config ext.cnf -extensions v3_ca -out root.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tsa.key
openssl req -new -key tsa.key -subj "/CN=Signet Fixture TSA" -config ext.cnf -out tsa.csr
openssl x509 -req -in tsa.csr -CA root.pem -CAkey root.key -set_serial 1 -days 36500 -sha256 \
  -extfile ext.cnf -extensions v3_tsa -out tsa.pem

cat >ts.cnf <<'CNF'
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = ./serial
crypto_device = builtin
signer_cert = ./tsa.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55738.1
other_policies = 1.3.6.1.4.1.55738.2
digests = sha256, sha384, sha512
accuracy = secs:1
clock_precision_digits = 3
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
echo 01 >serial
printf 'signet timestamp fixture: the signature bytes a token stamps\n' >signed.bin
openssl ts -query -data signed.bin -sha256 -cert -out query.tsq
openssl ts -reply -config ts.cnf -queryfile query.tsq -token_out -out token.der

mkdir -p "$out"
cat tsa.pem root.pem >"$out/tsa-chain.pem"
cp signed.bin token.der "$out/"
echo "wrote $out" >&2
