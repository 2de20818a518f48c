# A software TPM 2.0 (swtpm) for the TPM tests, with EK certificates from a
# private local CA made for this run (never the machine-wide
# /var/lib/swtpm-localca).
#
# Sourced:
#   source scripts/swtpm.sh && swtpm_start DIR   # DIR: a new or empty directory
#   cargo test -p holdfast-hw --features tpm --test swtpm
#   swtpm_stop
#
# Executed:
#   eval "$(scripts/swtpm.sh start DIR)"   # prints the export lines
#   scripts/swtpm.sh stop DIR
#
# swtpm_start exports:
#   HOLDFAST_TEST_TPM_TCTI    swtpm:host=127.0.0.1,port=P (control port P+1)
#   HOLDFAST_TEST_TPM_EK_CA   PEM file with every certificate of the local CA
#                             (root and issuing CA): the EK trust anchors
#   HOLDFAST_SWTPM_PID, HOLDFAST_SWTPM_DIR   what swtpm_stop needs
#   TSS2_LOG=all+NONE         unless already set: tpm2-tss logs to stderr
#
# Needs swtpm, swtpm-tools (swtpm_setup, swtpm_localca) and, for the
# readiness check, nothing else: the port is probed with bash's /dev/tcp.
# Functions return non-zero with a message instead of exiting, so sourcing
# this file never changes the caller's shell options.

_swtpm_log() { printf 'swtpm.sh: %s\n' "$*" >&2; }

# A TCP port on 127.0.0.1 nobody listens on (probe only; swtpm may still lose
# a race for it, which swtpm_start retries).
_swtpm_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Writes the CA and swtpm_setup configuration into DIR and manufactures the
# TPM state: EK (RSA-2048 and ECC P-384) and platform certificates, NV locked.
_swtpm_manufacture() {
  local dir=$1
  mkdir -p "$dir/ca" "$dir/state" || return 1
  cat >"$dir/localca.conf" <<EOF
statedir = $dir/ca
signingkey = $dir/ca/signkey.pem
issuercert = $dir/ca/issuercert.pem
certserial = $dir/ca/certserial
EOF
  cat >"$dir/localca.options" <<EOF
--platform-manufacturer Holdfast
--platform-version 2.1
--platform-model holdfast-test
EOF
  cat >"$dir/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/localca.conf
create_certs_tool_options = $dir/localca.options
active_pcr_banks = sha256
EOF
  if ! swtpm_setup --tpm2 --tpmstate "$dir/state" --config "$dir/swtpm_setup.conf" \
    --create-ek-cert --create-platform-cert --lock-nvram --overwrite \
    --logfile "$dir/swtpm_setup.log" >/dev/null 2>&1; then
    _swtpm_log "swtpm_setup failed; see $dir/swtpm_setup.log"
    return 1
  fi
  # swtpm_localca makes a root CA and an issuing CA under it: the EK
  # certificates chain to the root through the issuing CA.
  local certs=()
  local f
  for f in "$dir"/ca/*.pem; do
    grep -q 'BEGIN CERTIFICATE' "$f" 2>/dev/null && certs+=("$f")
  done
  if [ "${#certs[@]}" -eq 0 ]; then
    _swtpm_log "no CA certificate found in $dir/ca"
    return 1
  fi
  cat "${certs[@]}" >"$dir/ek-ca.pem" || return 1
}

# swtpm_start DIR: manufacture a TPM in DIR, start swtpm on free loopback
# ports, wait until it answers, export the variables above.
swtpm_start() {
  local dir=${1:-}
  if [ -z "$dir" ]; then
    _swtpm_log "usage: swtpm_start DIR"
    return 2
  fi
  local tool
  for tool in swtpm swtpm_setup swtpm_localca; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      _swtpm_log "$tool not found: apt-get install swtpm swtpm-tools"
      return 1
    fi
  done
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd) || return 1
  if [ -f "$dir/swtpm.pid" ] && kill -0 "$(cat "$dir/swtpm.pid")" 2>/dev/null; then
    _swtpm_log "swtpm already runs from $dir (pid $(cat "$dir/swtpm.pid")); swtpm_stop first"
    return 1
  fi
  _swtpm_manufacture "$dir" || return 1

  local attempt port pid=
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    _swtpm_port_free "$port" && _swtpm_port_free "$((port + 1))" || continue
    rm -f "$dir/swtpm.pid"
    # --daemon: swtpm detaches once both sockets are bound and writes its pid.
    if swtpm socket --tpm2 --tpmstate "dir=$dir/state" \
      --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
      --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
      --flags not-need-init,startup-clear \
      --pid "file=$dir/swtpm.pid" --log "file=$dir/swtpm.log" \
      --daemon 2>>"$dir/swtpm.log"; then
      pid=$(cat "$dir/swtpm.pid" 2>/dev/null)
      [ -n "$pid" ] && break
    fi
    _swtpm_log "swtpm did not start on port $port (attempt $attempt), trying another"
  done
  if [ -z "$pid" ]; then
    _swtpm_log "could not start swtpm; see $dir/swtpm.log"
    return 1
  fi

  local i
  for i in $(seq 1 100); do
    if ! _swtpm_port_free "$port"; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      _swtpm_log "swtpm (pid $pid) exited; see $dir/swtpm.log"
      return 1
    fi
    sleep 0.05
  done
  if _swtpm_port_free "$port"; then
    _swtpm_log "swtpm (pid $pid) does not answer on 127.0.0.1:$port"
    kill "$pid" 2>/dev/null
    return 1
  fi

  export HOLDFAST_TEST_TPM_TCTI="swtpm:host=127.0.0.1,port=$port"
  export HOLDFAST_TEST_TPM_EK_CA="$dir/ek-ca.pem"
  export HOLDFAST_SWTPM_PID="$pid"
  export HOLDFAST_SWTPM_DIR="$dir"
  export TSS2_LOG="${TSS2_LOG:-all+NONE}"
}

# swtpm_stop [DIR]: stop the swtpm that swtpm_start started (by its PID).
swtpm_stop() {
  local dir=${1:-${HOLDFAST_SWTPM_DIR:-}}
  local pid=${HOLDFAST_SWTPM_PID:-}
  if [ -n "$dir" ] && [ -f "$dir/swtpm.pid" ]; then
    pid=$(cat "$dir/swtpm.pid")
  fi
  if [ -z "$pid" ]; then
    _swtpm_log "no swtpm to stop (give the directory: swtpm_stop DIR)"
    return 1
  fi
  if kill "$pid" 2>/dev/null; then
    local i
    for i in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  fi
  [ -n "$dir" ] && rm -f "$dir/swtpm.pid"
  unset HOLDFAST_TEST_TPM_TCTI HOLDFAST_TEST_TPM_EK_CA HOLDFAST_SWTPM_PID HOLDFAST_SWTPM_DIR
}

# Executed rather than sourced: `start DIR` prints export lines for eval,
# `stop DIR` stops it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      swtpm_start "${2:?usage: $0 start DIR}"
      printf 'export HOLDFAST_TEST_TPM_TCTI=%q\n' "$HOLDFAST_TEST_TPM_TCTI"
      printf 'export HOLDFAST_TEST_TPM_EK_CA=%q\n' "$HOLDFAST_TEST_TPM_EK_CA"
      printf 'export HOLDFAST_SWTPM_PID=%q\n' "$HOLDFAST_SWTPM_PID"
      printf 'export HOLDFAST_SWTPM_DIR=%q\n' "$HOLDFAST_SWTPM_DIR"
      printf 'export TSS2_LOG=%q\n' "$TSS2_LOG"
      ;;
    stop)
      swtpm_stop "${2:?usage: $0 stop DIR}"
      ;;
    *)
      echo "usage: $0 start DIR | stop DIR   (or: source $0 && swtpm_start DIR)" >&2
      exit 2
      ;;
  esac
fi
