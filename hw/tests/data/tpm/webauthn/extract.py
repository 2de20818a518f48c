#!/usr/bin/env python3
"""Extracts the TPM parts of the WebAuthn "tpm" attestation objects in this
directory into extracted/<name>.json, so the Rust tests need no CBOR decoder.
Run once (python3 extract.py); the output is committed. Stdlib only."""
import base64, hashlib, json, os, struct

def b64d(s):
    s = s.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4))

def b64e(b):
    return base64.b64encode(b).decode()

def cbor(buf, i=0):
    """Minimal CBOR (RFC 8949) decoder: what attestation objects use."""
    ib = buf[i]; major, info = ib >> 5, ib & 0x1F; i += 1
    if info < 24: val = info
    elif info == 24: val = buf[i]; i += 1
    elif info == 25: val = struct.unpack(">H", buf[i:i+2])[0]; i += 2
    elif info == 26: val = struct.unpack(">I", buf[i:i+4])[0]; i += 4
    elif info == 27: val = struct.unpack(">Q", buf[i:i+8])[0]; i += 8
    else: raise ValueError("indefinite lengths not used here")
    if major == 0: return val, i
    if major == 1: return -1 - val, i
    if major == 2: return bytes(buf[i:i+val]), i + val
    if major == 3: return buf[i:i+val].decode(), i + val
    if major == 4:
        out = []
        for _ in range(val):
            v, i = cbor(buf, i); out.append(v)
        return out, i
    if major == 5:
        out = {}
        for _ in range(val):
            k, i = cbor(buf, i); v, i = cbor(buf, i); out[k] = v
        return out, i
    raise ValueError("unexpected CBOR major type %d" % major)

here = os.path.dirname(os.path.abspath(__file__))
for name in sorted(os.listdir(here)):
    if not name.endswith(".json"):
        continue
    src = json.load(open(os.path.join(here, name)))
    resp = src.get("credential", {}).get("response", {})
    att_b64 = resp.get("attestationObject") or src.get("attestationObject_b64std")
    att, end = cbor(b64d(att_b64))
    assert end == len(b64d(att_b64)) and att["fmt"] == "tpm"
    st = att["attStmt"]
    out = {
        "source": "../" + name,
        "alg": st["alg"],
        "cert_info": b64e(st["certInfo"]),
        "pub_area": b64e(st["pubArea"]),
        "sig": b64e(st["sig"]),
        "x5c": [b64e(c) for c in st["x5c"]],
        "verify_at_utc": src["expected"]["verify_at_utc"],
        "ak_cert_san_tpm": src["expected"]["ak_cert_san_tpm"],
    }
    if "clientDataJSON" in resp:
        # WebAuthn §8.3: extraData = H_alg(authData ‖ SHA-256(clientDataJSON)).
        to_sign = att["authData"] + hashlib.sha256(b64d(resp["clientDataJSON"])).digest()
        out["att_to_be_signed"] = b64e(to_sign)
    with open(os.path.join(here, "extracted", name), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(name, st["alg"], len(st["certInfo"]), len(st["pubArea"]), len(st["x5c"]))
