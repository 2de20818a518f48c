#!/usr/bin/env bash
# Regenerates ecc-kat/: ECC MakeCredential (holdfast, fixed ephemeral key)
# checked by a real TPM2_ActivateCredential on swtpm, for an ECC P-256 EK
# (TCG template L-2: SHA-256, AES-128-CFB) and P-384 (H-3: SHA-384,
# AES-256-CFB, swtpm's own ECC EK template). The EK-like primaries are made
# in the endorsement hierarchy without a policy, so a password session
# suffices; the credential math depends only on the public key, nameAlg and
# symmetric definition.
#
#   TPM_PORT=23321 ./make-ecc-kat.sh      (swtpm listening on 127.0.0.1)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/ecc-kat"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=${TPM_PORT:?}" TSS2_LOG=all+NONE
mkdir -p "$out"
ek_attrs="fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt"
ak_attrs="fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"

tpm2_flushcontext -t
tpm2_createprimary -Q -C o -g sha256 -G ecc256:null:aes128cfb -c "$work/srk.ctx"
tpm2_flushcontext -t
tpm2_create -Q -C "$work/srk.ctx" -G ecc256:ecdsa-sha256:null -a "$ak_attrs" \
  -u "$work/ak.tpm2b" -r "$work/ak.priv"
tpm2_flushcontext -t

for spec in "p256 sha256 ecc256:aes128cfb" "p384 sha384 ecc384:aes256cfb"; do
  set -- $spec
  curve=$1
  tpm2_createprimary -Q -C e -g "$2" -G "$3" -a "$ek_attrs" -c "$work/ek.ctx" \
    -o "$work/ek-$curve.pem" -f pem
  tpm2_flushcontext -t
  # Uncompressed point from the SubjectPublicKeyInfo (its last 65/97 bytes).
  len=$([ "$curve" = p256 ] && echo 65 || echo 97)
  openssl pkey -pubin -in "$work/ek-$curve.pem" -outform der | tail -c "$len" \
    > "$work/ek-$curve.point"
  tpm2_load -Q -C "$work/srk.ctx" -u "$work/ak.tpm2b" -r "$work/ak.priv" -c "$work/ak.ctx" \
    -n "$work/ak.name"
  tpm2_flushcontext -t
  (cd "$here/../../../.." && HOLDFAST_TPM_FIXTURE_DIR="$work" HOLDFAST_TPM_CURVE="$curve" \
    cargo test -q -p holdfast-hw --test tpm_attestation -- --ignored --exact make_swtpm_ecc_credential)
  tpm2_activatecredential -Q -c "$work/ak.ctx" -C "$work/ek.ctx" -i "$work/cred-$curve.bin" \
    -o "$work/secret-$curve.bin"
  tpm2_flushcontext -t
  python3 - "$work" "$curve" "$out/$curve.json" <<'PY'
import base64, json, struct, sys
work, curve, dest = sys.argv[1:]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
rd = lambda n: open(f"{work}/{n}", "rb").read()
cred = rd(f"cred-{curve}.bin")[8:]
n = struct.unpack(">H", cred[:2])[0]
blob, rest = cred[2:2 + n], cred[2 + n:]
secret = rest[2:2 + struct.unpack(">H", rest[:2])[0]]
json.dump({"curve": curve, "ek_point": b64(rd(f"ek-{curve}.point")),
           "ak_name": b64(rd("ak.name")), "credential_blob": b64(blob),
           "encrypted_secret": b64(secret), "activated_secret": b64(rd(f"secret-{curve}.bin"))},
          open(dest, "w"), indent=1)
PY
done
echo "ECC KAT written to $out"
