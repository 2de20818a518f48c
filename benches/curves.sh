#!/usr/bin/env bash
# The scale curves of docs/performance.md, as JSON and PNG:
#
#   1. throughput and p50/p99 latency against concurrency (CURVES_SWEEP) for
#      the token endpoint, the verifying proxy and the same proxy with
#      verification switched off (benches/load.sh curves);
#   2. holdfastd RSS against enrolled devices (CURVES_DEVICES): the issuer
#      idle on a store holding N devices, and the verifying proxy once it
#      has loaded the issuer's snapshot of them; devices are written
#      straight into the store by holdfast-scale enroll (HTTP enrollment
#      runs at tens per second);
#   3. memory against live sessions (CURVES_SESSIONS): the issuer idle on a
#      store holding N sessions, and the verifier's per-session state in
#      process (the verified-token cache, the replay guards) from
#      holdfast-scale memory;
#   4. PNGs of all of it in docs/perf/ (holdfast-plot, text in DejaVu Sans
#      from Debian's fonts-dejavu-core, read at run time).
#
# Environment: CURVES_OUT (where the JSON goes; default target/curves),
# CURVES_SWEEP (1,2,4,8,16,32,64,128,256), CURVES_DEVICES and
# CURVES_SESSIONS (1000 10000 100000 1000000), LOAD_DURATION (5),
# LOAD_WARMUP (1), CURVES_SKIP (space-separated parts to skip: load devices
# sessions memory).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
ensure_deps
ensure_packages fonts-dejavu-core

log "building holdfastd, holdfast-load, holdfast-scale and holdfast-plot (release)"
cargo build --release --locked -p holdfast-server --bin holdfastd \
  -p holdfast-benches --features plot --bin holdfast-load --bin holdfast-scale --bin holdfast-plot
root=$PWD
bin=$root/target/release
work=$(mktemp -d)
out=${CURVES_OUT:-$root/target/curves}
mkdir -p "$out" docs/perf
skip=" ${CURVES_SKIP:-} "
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
note="$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs shared by generator and servers; $(date -u +%F)"

free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
wait_http() { # wait_http URL: until it answers at all (up to 10 min)
  for _ in $(seq 1 6000); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 never answered" >&2
  return 1
}
wait_ready() { # wait_ready URL PID: until URL answers (0) or PID exits (1)
  while kill -0 "$2" 2>/dev/null; do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ------------------------------------------------------------ 1. load
if [[ $skip != *" load "* ]]; then
  LOAD_OUT=$out LOAD_DURATION=${LOAD_DURATION:-5} LOAD_WARMUP=${LOAD_WARMUP:-1} \
    LOAD_SWEEP=${CURVES_SWEEP:-1,2,4,8,16,32,64,128,256} benches/load.sh curves
  "$bin/holdfast-plot" concurrency \
    --series "token endpoint=$out/token-sweep.json" \
    --series "verifying proxy=$out/proxy-verify-sweep.json" \
    --series "proxy, verification off=$out/proxy-noverify-sweep.json" \
    --out-throughput docs/perf/throughput_vs_concurrency.png \
    --out-latency docs/perf/latency_vs_concurrency.png --note "$note"
fi

# ------------------------------------------- 2 and 3. an issuer of size N
rs_secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat > "$work/holdfast.toml" <<TOML
[[resource_servers]]
id = "proxy"
secret_sha256 = "$(printf %s "$rs_secret" | sha256sum | cut -d' ' -f1)"
TOML

# measure DEVICES SESSIONS WITH_PROXY: prints one JSON point
measure() {
  local devices=$1 sessions=$2 with_proxy=$3 data="$work/data-$1-$2"
  "$bin/holdfast-scale" enroll --data "$data" --devices "$devices" --sessions "$sessions" >&2
  local port pport serve_pid proxy_pid started ready
  port=$(free_port $((20000 + RANDOM % 20000)))
  HOLDFAST_LOG=warn "$bin/holdfastd" serve --config "$work/holdfast.toml" --data "$data" \
    --listen "127.0.0.1:$port" &
  serve_pid=$!
  pids+=("$serve_pid")
  wait_http "http://127.0.0.1:$port/jwks"
  sleep 1
  local serve_idle serve_after="null" proxy_rss="null" proxy_hwm="null" proxy_secs="null"
  local proxy_ready=null snapshot
  serve_idle=$(kib "$serve_pid" VmRSS)
  if [ "$with_proxy" = yes ]; then
    # The snapshot a verifier starts from (GET /keys/enrolled): time, size,
    # and what building it costs the issuer.
    snapshot=$(curl -sS -u "proxy:$rs_secret" -o /dev/null --max-time 900 \
      -w '"snapshot_secs": %{time_total}, "snapshot_bytes": %{size_download}' \
      "http://127.0.0.1:$port/keys/enrolled")
    serve_after=$(kib "$serve_pid" VmRSS)
    pport=$(free_port $((port + 1)))
    started=$(date +%s.%N)
    HOLDFAST_LOG=warn HOLDFAST_PROXY_CLIENT_SECRET="$rs_secret" "$bin/holdfastd" proxy \
      --listen "127.0.0.1:$pport" --upstream "http://127.0.0.1:9" --issuer "http://127.0.0.1:$port" \
      --client-id proxy &
    proxy_pid=$!
    pids+=("$proxy_pid")
    # /healthz answers once the snapshot of every device is loaded; the
    # proxy exits instead if it cannot load it.
    if wait_ready "http://127.0.0.1:$pport/healthz" "$proxy_pid"; then
      ready=$(date +%s.%N)
      sleep 1
      proxy_ready=true
      proxy_rss=$(kib "$proxy_pid" VmRSS)
      proxy_hwm=$(kib "$proxy_pid" VmHWM)
      proxy_secs=$(awk "BEGIN { print $ready - $started }")
      stop "$proxy_pid"
    else
      proxy_ready=false
      wait "$proxy_pid" 2>/dev/null || true
    fi
  else
    snapshot='"snapshot_secs": null, "snapshot_bytes": null'
  fi
  local serve_hwm disk
  serve_hwm=$(kib "$serve_pid" VmHWM)
  stop "$serve_pid"
  disk=$(du -sk "$data/store" | cut -f1)
  rm -rf "$data"
  printf '{"devices": %s, "sessions": %s, "serve_rss_kib": %s, "serve_rss_after_snapshot_kib": %s, "serve_hwm_kib": %s, %s, "proxy_ready": %s, "proxy_rss_kib": %s, "proxy_hwm_kib": %s, "proxy_ready_secs": %s, "store_disk_kib": %s}\n' \
    "$devices" "$sessions" "$serve_idle" "$serve_after" "$serve_hwm" "$snapshot" "$proxy_ready" \
    "$proxy_rss" "$proxy_hwm" "$proxy_secs" "$disk"
}

points_json() { # points_json FILE POINT…
  local file=$1
  shift
  { echo '{"points": ['; local IFS=,; echo "$*"; echo ']}'; } > "$file"
  log "wrote $file"
}

if [[ $skip != *" devices "* ]]; then
  points=()
  for n in ${CURVES_DEVICES:-1000 10000 100000 1000000}; do
    log "an issuer with $n enrolled devices"
    measure "$n" 0 yes > "$work/point"
    points+=("$(cat "$work/point")")
    echo "${points[-1]}"
  done
  points_json "$out/devices.json" "${points[@]}"
  # One y field per plotted line.
  sed 's/"serve_rss_kib"/"kib"/g' "$out/devices.json" > "$out/devices-idle.json"
  sed 's/"serve_rss_kib"/"idle_kib"/g; s/"serve_rss_after_snapshot_kib"/"kib"/g' "$out/devices.json" \
    > "$out/devices-after.json"
  "$bin/holdfast-plot" points --series "holdfastd serve, idle=$out/devices-idle.json" \
    --series "holdfastd serve, after one snapshot (GET /keys/enrolled)=$out/devices-after.json" \
    --x devices --y kib --y-div 1024 --out docs/perf/memory_vs_devices_issuer.png \
    --x-label "enrolled devices" --y-label "VmRSS, MiB" \
    --title "Issuer memory against enrolled devices" --note "$note"
  "$bin/holdfast-plot" points --series "holdfastd proxy, VmRSS=$out/devices.json" \
    --x devices --y proxy_rss_kib --y-div 1024 --out docs/perf/memory_vs_devices_proxy.png \
    --x-label "enrolled devices (the proxy's registry)" --y-label "VmRSS, MiB" \
    --title "Verifying proxy memory against enrolled devices" --note "$note"
fi

if [[ $skip != *" sessions "* ]]; then
  points=()
  for n in ${CURVES_SESSIONS:-1000 10000 100000 1000000}; do
    log "an issuer with 1000 devices and $n live sessions"
    measure 1000 "$n" no > "$work/point"
    points+=("$(cat "$work/point")")
    echo "${points[-1]}"
  done
  points_json "$out/sessions.json" "${points[@]}"
  "$bin/holdfast-plot" points --series "holdfastd serve (idle)=$out/sessions.json" \
    --x sessions --y serve_rss_kib --y-div 1024 --out docs/perf/memory_vs_sessions_issuer.png \
    --x-label "live sessions in the store" --y-label "VmRSS, MiB" \
    --title "Issuer memory against live sessions" --note "$note"
fi

if [[ $skip != *" memory "* ]]; then
  for what in token-cache replay-memory replay-sled registry; do
    "$bin/holdfast-scale" memory --what "$what" --json "$out/memory-$what.json"
  done
  "$bin/holdfast-plot" points \
    --series "verifier: verified-token cache=$out/memory-token-cache.json" \
    --series "verifier: MemoryReplayGuard=$out/memory-replay-memory.json" \
    --series "verifier: SledReplayGuard (RSS)=$out/memory-replay-sled.json" \
    --x n --y rss_after_kib --y-div 1024 --out docs/perf/memory_vs_sessions_verifier.png \
    --x-label "live sessions (cached tokens) or live proofs (replay entries)" \
    --y-label "process VmRSS, MiB" \
    --title "Verifier state against live sessions and proofs" --note "$note"
fi
log "JSON in $out; PNGs in docs/perf/"
exit 0
