#!/usr/bin/env bash
# Load tests of a real holdfastd on this machine (docs/performance.md).
#
# Builds holdfastd and holdfast-load (release), starts on 127.0.0.1 with
# free ports, on a fresh store in a temp dir:
#   - holdfastd serve (the issuer),
#   - a trivial upstream (holdfast-load upstream: every GET answers 200 ok),
#   - holdfastd proxy in front of it (verifying), and
#   - holdfastd proxy --danger-no-verify --bench-only in front of it (the
#     same proxy with verification switched off),
# runs the mode's load and stops everything on exit.
#
#   benches/load.sh [compare]  POST /token; then the verifying and the
#                              unverified proxy alternately, twice each:
#                              req/s of verify / no-verify (target >= 0.60)
#   benches/load.sh curves     concurrency sweeps (LOAD_SWEEP) of the token
#                              endpoint and of both proxies -> JSON for plots
#   benches/load.sh token      POST /token only (e.g. with HOLDFAST_SYNC_WRITES=false)
#   benches/load.sh rate       a closed-loop run at LOAD_CONCURRENCY to find
#                              the peak, then fixed rates at LOAD_RATE_FRACTIONS
#                              ("0.5 0.8") of it: p99 / p50 (target < 5 at 0.8)
#
# Environment: LOAD_DURATION (10), LOAD_WARMUP (2), LOAD_CONCURRENCY (32),
# LOAD_DEVICES (50), LOAD_SWEEP (1,2,4,8,16,32,64,128,256),
# LOAD_RATE_FRACTIONS ("0.5 0.8"), LOAD_OUT (a directory for the JSON results;
# default a temp dir that is removed), HOLDFAST_SYNC_WRITES (the issuer's
# sync_writes, default true).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
ensure_deps
mode=${1:-compare}
case $mode in compare|token|curves|rate) ;; *) echo "usage: $0 [compare|token|curves|rate]" >&2; exit 2 ;; esac

log "building holdfastd and holdfast-load (release)"
cargo build --release --locked -p holdfast-server --bin holdfastd -p holdfast-benches --bin holdfast-load
root=$PWD
holdfastd=$root/target/release/holdfastd
load=$root/target/release/holdfast-load
work=$(mktemp -d)
out=${LOAD_OUT:-$work/results}
mkdir -p "$out"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
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

# Every holdfast-load run enrolls its own devices and spends one admin code;
# the store is locked while holdfastd serves, so all are made first.
codes=()
for i in $(seq 1 12); do
  codes+=("$("$holdfastd" admin bootstrap --config "$work/holdfast.toml" --data "$data" --name "load-admin-$i")")
done
next_code=0

HOLDFAST_LOG=warn "$holdfastd" serve --config "$work/holdfast.toml" --data "$data" --listen "127.0.0.1:$port" &
server_pid=$!
pids+=("$server_pid")
wait_port "$port"

uport=$(free_port $((port + 1)))
"$load" upstream --listen "127.0.0.1:$uport" &
upstream_pid=$!
pids+=("$upstream_pid")
wait_port "$uport"

start_proxy() { # start_proxy PORT [extra flags…]; sets proxy_pid
  local p=$1
  shift
  HOLDFAST_LOG=warn HOLDFAST_PROXY_CLIENT_SECRET="$rs_secret" "$holdfastd" proxy \
    --listen "127.0.0.1:$p" --upstream "http://127.0.0.1:$uport" --issuer "$url" --client-id proxy "$@" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_port "$p"
}
vport=$(free_port $((uport + 1)))
start_proxy "$vport"
verify_pid=$proxy_pid
nport=$(free_port $((vport + 1)))
start_proxy "$nport" --danger-no-verify --bench-only
noverify_pid=$proxy_pid

log "holdfastd $url (pid $server_pid, sync_writes ${HOLDFAST_SYNC_WRITES:-true}); upstream :$uport; proxy :$vport (pid $verify_pid); \
unverified proxy :$nport (pid $noverify_pid); $(nproc) cores shared with the generator"
log "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

common=(--issuer "$url" --devices "${LOAD_DEVICES:-50}" --duration "${LOAD_DURATION:-10}"
  --warmup "${LOAD_WARMUP:-2}")
concurrency=${LOAD_CONCURRENCY:-32}

run() { # run NAME ARGS…: one holdfast-load run with the next admin code
  local name=$1
  shift
  log "holdfast-load $* (${name}.json)"
  "$load" "$@" --enroll-code "${codes[$next_code]}" --json "$out/$name.json"
  next_code=$((next_code + 1))
}
token() { run "$1" token "${common[@]}" --server-pid "$server_pid" "${@:2}"; }
proxy_run() { # proxy_run NAME PORT PID ARGS…
  run "$1" proxy "${common[@]}" --target "http://127.0.0.1:$2/orders" \
    --server-pid "$3" --server-pid "$upstream_pid" --server-pid "$server_pid" "${@:4}"
}
cpu_of() { # cpu_of FILE: CPU µs per 2xx of the first --server-pid
  sed -n '/"server_cpu"/,/]/s/^ *"cpu_us_per_ok": \([0-9.e+-]*\),*$/\1/p' "$1" | head -1
}
rate_of() { # rate_of FILE: 2xx/s of a single run
  sed -n 's/^  "ok_per_sec": \([0-9.e+-]*\),*$/\1/p' "$1" | head -1
}
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }

case $mode in
  compare)
    token token --concurrency "$concurrency"
    for round in 1 2; do
      proxy_run "proxy-verify-$round" "$vport" "$verify_pid" --concurrency "$concurrency"
      proxy_run "proxy-noverify-$round" "$nport" "$noverify_pid" --concurrency "$concurrency"
    done
    v=0 n=0
    for round in 1 2; do
      v=$(calc "$v + $(rate_of "$out/proxy-verify-$round.json")")
      n=$(calc "$n + $(rate_of "$out/proxy-noverify-$round.json")")
    done
    log "proxy 2xx/s, verifying / unverified (mean of 2 alternating rounds each): \
$(calc "$v / 2") / $(calc "$n / 2") = $(calc "$v / $n") (target >= 0.60)"
    # Both at one fixed rate (0.3 of the verifying proxy's peak): the proxy's
    # own CPU per request, with the fixed per-second costs shared alike.
    rate=$(calc "$v / 2 * 0.3")
    proxy_run proxy-verify-fixed "$vport" "$verify_pid" --rate "$rate"
    proxy_run proxy-noverify-fixed "$nport" "$noverify_pid" --rate "$rate"
    cv=$(cpu_of "$out/proxy-verify-fixed.json")
    cn=$(cpu_of "$out/proxy-noverify-fixed.json")
    log "at $rate requests/s, the proxy's CPU per request: verifying $cv µs, unverified $cn µs; \
capacity ratio (unverified / verifying CPU) $(calc "$cn / $cv")"
    ;;
  token)
    token token --concurrency "$concurrency"
    ;;
  curves)
    sweep=${LOAD_SWEEP:-1,2,4,8,16,32,64,128,256}
    token token-sweep --sweep "$sweep"
    proxy_run proxy-verify-sweep "$vport" "$verify_pid" --sweep "$sweep"
    proxy_run proxy-noverify-sweep "$nport" "$noverify_pid" --sweep "$sweep"
    ;;
  rate)
    token token-peak --concurrency "$concurrency"
    for f in ${LOAD_RATE_FRACTIONS:-0.5 0.8}; do
      token "token-rate-$f" --rate "$(calc "$(rate_of "$out/token-peak.json") * $f")"
    done
    proxy_run proxy-peak "$vport" "$verify_pid" --concurrency "$concurrency"
    for f in ${LOAD_RATE_FRACTIONS:-0.5 0.8}; do
      proxy_run "proxy-rate-$f" "$vport" "$verify_pid" --rate "$(calc "$(rate_of "$out/proxy-peak.json") * $f")"
    done
    for f in ${LOAD_RATE_FRACTIONS:-0.5 0.8}; do
      for m in token proxy; do
        file="$out/$m-rate-$f.json"
        p50=$(sed -n 's/^ *"p50_ms": \([0-9.e+-]*\),*$/\1/p' "$file")
        p99=$(sed -n 's/^ *"p99_ms": \([0-9.e+-]*\),*$/\1/p' "$file")
        log "$m at $f of peak: p50 $p50 ms, p99 $p99 ms, p99/p50 $(calc "$p99 / $p50") (target < 5 at 0.8)"
      done
    done
    ;;
esac
[ -n "${LOAD_OUT:-}" ] && log "JSON results in $out"
exit 0
