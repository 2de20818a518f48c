#!/usr/bin/env bash
# Regenerates evidence/ from a swtpm manufactured with this directory's EK
# certificates (see ../SOURCES.md): real TPM2_ActivateCredential of a
# challenge made by holdfast's begin_activation, and real TPM2_Certify.
#
#   TPM_PORT=23321 ./make-evidence.sh      (swtpm listening on 127.0.0.1)
#
# Needs tpm2-tools, python3, cargo. Run once; the output is committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/evidence"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=${TPM_PORT:?}" TSS2_LOG=all+NONE
challenge="holdfast swtpm fixture challenge"
nonce=$(printf %s "$challenge" | sha256sum | cut -d' ' -f1)
mkdir -p "$out"

# The RSA EK certificate from NV must be the one in this directory.
tpm2_nvread 0x01c00002 -o "$work/ek.der" 2>/dev/null
cmp "$work/ek.der" "$here/ek-rsa2048.der"

# Storage key, AK (restricted ECDSA P-256 signing key), the device key, and
# weakened keys for the negative cases.
# swtpm holds three transient objects: flush after each step (the saved
# contexts reload them).
tpm2_flushcontext -t
tpm2_createprimary -Q -C o -g sha256 -G ecc256:null:aes128cfb -c "$work/srk.ctx"
tpm2_flushcontext -t
create() { # name attributes
  tpm2_create -Q -C "$work/srk.ctx" -G ecc256:ecdsa-sha256:null -a "$2" \
    -u "$work/$1.tpm2b" -r "$work/$1.priv"
  tpm2_load -Q -C "$work/srk.ctx" -u "$work/$1.tpm2b" -r "$work/$1.priv" -c "$work/$1.ctx"
  tail -c +3 "$work/$1.tpm2b" > "$work/$1.public" # TPM2B_PUBLIC → TPMT_PUBLIC
  tpm2_flushcontext -t
}
create ak  "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"
create ak2 "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"
create key "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"
create duplicable "sensitivedataorigin|userwithauth|sign"
create restricted "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"

# The issuer's step 1, in Rust: writes cred.bin (tpm2-tools format) and
# pending.json.
cp "$work/ak.public" "$out/ak.public"
(cd "$here/../../../.." && HOLDFAST_TPM_FIXTURE_DIR="$out" \
  cargo test -q -p holdfast-hw --test tpm_attestation -- --ignored --exact make_swtpm_challenge)
mv "$out/cred.bin" "$work/cred.bin"
rm "$out/ak.public"

# TPM2_ActivateCredential with the EK (policy: PolicySecret(endorsement)).
tpm2_startauthsession -Q --policy-session -S "$work/session.ctx"
tpm2_policysecret -Q -S "$work/session.ctx" -c e
tpm2_activatecredential -Q -c "$work/ak.ctx" -C 0x81010001 -i "$work/cred.bin" \
  -o "$work/secret.bin" -P "session:$work/session.ctx"
tpm2_flushcontext "$work/session.ctx"
tpm2_flushcontext -t

# TPM2_Certify with qualifyingData (tpm2_certify 5.4 cannot pass it): the
# raw command through tpm2_send, with the objects made persistent so their
# handles are known, and password sessions with empty auth.
persist() { # name handle
  tpm2_evictcontrol -Q -C o -c "$work/$1.ctx" "$2"
  tpm2_flushcontext -t
}
unpersist() { tpm2_evictcontrol -Q -C o -c "$1"; }
certify() { # object-handle signer-handle output-prefix
  python3 - "$1" "$2" "$nonce" > "$work/cmd.bin" <<'PY'
import struct, sys
obj, sign, nonce = int(sys.argv[1], 16), int(sys.argv[2], 16), bytes.fromhex(sys.argv[3])
pw = struct.pack(">IHBH", 0x40000009, 0, 0, 0)  # TPM_RS_PW, empty nonce/auth
params = struct.pack(">H", len(nonce)) + nonce + struct.pack(">H", 0x0010)  # inScheme NULL
body = struct.pack(">II", obj, sign) + struct.pack(">I", 2 * len(pw)) + pw + pw + params
sys.stdout.buffer.write(struct.pack(">HII", 0x8002, 10 + len(body), 0x148) + body)
PY
  tpm2_send -o "$work/rsp.bin" < "$work/cmd.bin"
  python3 - "$work/rsp.bin" "$work/$3" <<'PY'
import struct, sys
rsp = open(sys.argv[1], "rb").read()
tag, size, rc = struct.unpack(">HII", rsp[:10])
assert rc == 0 and size == len(rsp), hex(rc)
p = rsp[14:]  # after parameterSize
n = struct.unpack(">H", p[:2])[0]
attest, rest = p[2:2 + n], p[2 + n:]
# TPMT_SIGNATURE ECDSA: sigAlg, hash, TPM2B r, TPM2B s.
r_len = struct.unpack(">H", rest[4:6])[0]
s_len = struct.unpack(">H", rest[6 + r_len:8 + r_len])[0]
sig = rest[:8 + r_len + s_len]
open(sys.argv[2] + ".attest", "wb").write(attest)
open(sys.argv[2] + ".sig", "wb").write(sig)
PY
}
persist ak 0x81000a01
persist ak2 0x81000a02
persist key 0x81000a03
persist duplicable 0x81000a04
persist restricted 0x81000a05
certify 0x81000a03 0x81000a01 good
certify 0x81000a04 0x81000a01 duplicable
certify 0x81000a05 0x81000a01 restricted
certify 0x81000a03 0x81000a02 other-ak
for h in 0x81000a01 0x81000a02 0x81000a03 0x81000a04 0x81000a05; do unpersist "$h"; done

python3 - "$work" "$out" "$challenge" <<'PY'
import base64, json, sys
work, out, challenge = sys.argv[1:]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
rd = lambda n: open(f"{work}/{n}", "rb").read()
def evidence(key, prefix):
    return {
        "ek_certificate": b64(rd("ek.der")),
        "ak_public": b64(rd("ak.public")),
        "activated_secret": b64(rd("secret.bin")),
        "key_public": b64(rd(f"{key}.public")),
        "certify_info": b64(rd(f"{prefix}.attest")),
        "certify_signature": b64(rd(f"{prefix}.sig")),
    }
for name, key, prefix in [("good", "key", "good"), ("duplicable", "duplicable", "duplicable"),
                          ("restricted", "restricted", "restricted"), ("other-ak", "key", "other-ak")]:
    json.dump(evidence(key, prefix), open(f"{out}/evidence-{name}.json", "w"), indent=1)
# The device key's JWK: TPMT_PUBLIC ECC ends with TPM2B x, TPM2B y.
pub = rd("key.public"); y = pub[-32:]; x = pub[-66:-34]
json.dump({"challenge": challenge, "verify_at_utc": "2027-01-01T00:00:00Z",
           "jwk": {"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}},
          open(f"{out}/meta.json", "w"), indent=1)
PY
echo "evidence written to $out"
