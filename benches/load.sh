#!/usr/bin/env bash
# Builds holdfastd and holdfast-load (release), starts holdfastd on a fresh
# store in a temp dir and the verifying proxy in front of a trivial upstream
# (the issuer's own /jwks), all on 127.0.0.1 with free ports, then runs
#   holdfast-load token   (POST /token: client_credentials + private_key_jwt + DPoP)
#   holdfast-load proxy   (GET through the proxy with a fresh proof each)
# and prints both tables. Everything it starts is stopped on exit.
#
# Environment: LOAD_DURATION (10), LOAD_WARMUP (2), LOAD_CONCURRENCY (32),
# LOAD_DEVICES (50), LOAD_RATE (unset: closed loop), LOAD_OUT (a directory
# for the JSON results; default a temp dir that is removed).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
ensure_deps

log "building holdfastd and holdfast-load (release)"
cargo build --release --locked -p holdfast-server --bin holdfastd -p holdfast-benches --bin holdfast-load
root=$PWD
holdfastd=$root/target/release/holdfastd
load=$root/target/release/holdfast-load
work=$(mktemp -d)
out=${LOAD_OUT:-$work/results}
mkdir -p "$out"
server_pid=""
proxy_pid=""
cleanup() {
  for pid in $proxy_pid $server_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

port=$(free_port $((20000 + RANDOM % 20000)))
url="http://127.0.0.1:$port"
data="$work/data"
rs_secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat > "$work/holdfast.toml" <<TOML
[[resource_servers]]
id = "proxy"
secret_sha256 = "$(printf %s "$rs_secret" | sha256sum | cut -d' ' -f1)"
TOML

# One admin code per run (an enrollment spends it); the store is locked
# while holdfastd serves, so both are made first.
token_code=$("$holdfastd" admin bootstrap --config "$work/holdfast.toml" --data "$data" --name load-admin-token)
proxy_code=$("$holdfastd" admin bootstrap --config "$work/holdfast.toml" --data "$data" --name load-admin-proxy)

HOLDFAST_LOG=warn "$holdfastd" serve --config "$work/holdfast.toml" --data "$data" --listen "127.0.0.1:$port" &
server_pid=$!
wait_port "$port"

pport=$(free_port $((port + 1)))
HOLDFAST_LOG=warn HOLDFAST_PROXY_CLIENT_SECRET="$rs_secret" "$holdfastd" proxy \
  --listen "127.0.0.1:$pport" --upstream "$url" --issuer "$url" --client-id proxy &
proxy_pid=$!
wait_port "$pport"

common=(--issuer "$url" --devices "${LOAD_DEVICES:-50}" --duration "${LOAD_DURATION:-10}"
  --warmup "${LOAD_WARMUP:-2}")
if [ -n "${LOAD_RATE:-}" ]; then
  common+=(--rate "$LOAD_RATE")
else
  common+=(--concurrency "${LOAD_CONCURRENCY:-32}")
fi

log "holdfastd $url (pid $server_pid), proxy http://127.0.0.1:$pport (pid $proxy_pid), $(nproc) cores shared with the generator"
log "holdfast-load token ${common[*]}"
"$load" token "${common[@]}" --enroll-code "$token_code" \
  --server-pid "$server_pid" --json "$out/token.json"
log "holdfast-load proxy ${common[*]} --target http://127.0.0.1:$pport/jwks"
"$load" proxy "${common[@]}" --enroll-code "$proxy_code" --target "http://127.0.0.1:$pport/jwks" \
  --server-pid "$proxy_pid" --server-pid "$server_pid" --json "$out/proxy.json"
[ -n "${LOAD_OUT:-}" ] && log "JSON results in $out"
exit 0
