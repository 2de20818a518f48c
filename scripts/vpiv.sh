# A virtual YubiKey for the PIV tests: pcscd with a private vpcd reader and
# the holdfast-vpiv test card (tests/vpiv) connected to it, so tests run the
# real path: yubikey crate -> pcsc -> libpcsclite -> pcscd -> card.
#
# Sourced:
#   source scripts/vpiv.sh && vpiv_start DIR [card flags...]   # DIR: new or empty
#   cargo test -p holdfast-hw --features yubikey vcard
#   vpiv_stop
#
# Executed:
#   out=$(scripts/vpiv.sh start DIR [card flags...]) && eval "$out"   # export lines
#   scripts/vpiv.sh stop DIR
#
# Card flags (holdfast-vpiv run --help): --firmware 5.4.3 (3DES management
# key; default 5.7.4, AES-192), --serial N, --form-factor N, --trace.
#
# vpiv_start exports:
#   HOLDFAST_TEST_PIV_ROOT     PEM file of this run's test attestation root
#                              (trusted by nothing unless a test says so)
#   HOLDFAST_TEST_PIV_SERIAL   the card's serial (decimal)
#   HOLDFAST_TEST_PIV_CONTROL  the control file: faults a test injects at run
#                              time (pin-blocked, no-f9, imported 9a,
#                              touch-timeout, firmware X.Y.Z; tests/vpiv/README.md)
#   HOLDFAST_VPIV_PID, HOLDFAST_VPIV_PCSCD_PID, HOLDFAST_VPIV_DIR  for vpiv_stop
#
# pcscd is a machine-wide singleton (/run/pcscd/pcscd.comm): if one runs that
# this script did not start, vpiv_start stops with an error rather than touch
# it. Needs pcscd and vsmartcard-vpcd (apt-get install pcscd vsmartcard-vpcd).
# Functions return non-zero with a message instead of exiting, so sourcing
# this file never changes the caller's shell options.

_vpiv_log() { printf 'vpiv.sh: %s\n' "$*" >&2; }

_VPIV_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_VPIV_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
_VPIV_SOCKET=/run/pcscd/pcscd.comm

_vpiv_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The card binary: HOLDFAST_VPIV_BIN, or built here (a no-op when up to date).
_vpiv_binary() {
  if [ -n "${HOLDFAST_VPIV_BIN:-}" ]; then
    printf '%s\n' "$HOLDFAST_VPIV_BIN"
    return 0
  fi
  (cd "$_VPIV_REPO" && cargo build --quiet -p holdfast-tests --bin holdfast-vpiv) >&2 || {
    _vpiv_log "cargo build -p holdfast-tests --bin holdfast-vpiv failed"
    return 1
  }
  printf '%s\n' "${CARGO_TARGET_DIR:-$_VPIV_REPO/target}/debug/holdfast-vpiv"
}

# Refuses to run beside a pcscd that is not ours; clears a dead one's socket.
_vpiv_check_singleton() {
  local pids
  pids=$(pgrep -x pcscd 2>/dev/null | tr '\n' ' ')
  if [ -n "$pids" ]; then
    _vpiv_log "pcscd is already running (pid ${pids% }) and was not started by vpiv.sh for this run."
    _vpiv_log "pcscd is a machine-wide singleton ($_VPIV_SOCKET): stop that one first (vpiv_stop DIR if it was ours), then retry."
    return 1
  fi
  if [ -e "$_VPIV_SOCKET" ]; then
    _vpiv_log "removing the stale $_VPIV_SOCKET (no pcscd runs)"
    rm -f "$_VPIV_SOCKET" /run/pcscd/pcscd.pid || return 1
  fi
  if ! mkdir -p /run/pcscd 2>/dev/null; then
    _vpiv_log "cannot create /run/pcscd: run as root (pcscd needs it)"
    return 1
  fi
}

# vpiv_start DIR [card flags...]: start pcscd and the card, wait until the
# yubikey crate sees the card through pcscd, export the variables above.
vpiv_start() {
  local dir=${1:-}
  if [ -z "$dir" ]; then
    _vpiv_log "usage: vpiv_start DIR [card flags...]"
    return 2
  fi
  shift
  if ! command -v pcscd >/dev/null 2>&1 || [ ! -e "$_VPIV_DRIVER" ]; then
    _vpiv_log "pcscd or the vpcd driver is missing: apt-get install pcscd vsmartcard-vpcd"
    return 1
  fi
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd) || return 1
  if _vpiv_alive "$(cat "$dir/card.pid" 2>/dev/null)" || _vpiv_alive "$(cat "$dir/pcscd.pid" 2>/dev/null)"; then
    _vpiv_log "a virtual card already runs from $dir; vpiv_stop $dir first"
    return 1
  fi
  _vpiv_check_singleton || return 1
  local bin
  bin=$(_vpiv_binary) || return 1

  local port
  port=$("$bin" free-port) || return 1
  # The vpcd driver takes its port from DEVICENAME (/dev/null:PORT means
  # "listen"); it makes two readers, on PORT and PORT+1.
  mkdir -p "$dir/reader.conf.d" || return 1
  cat >"$dir/reader.conf.d/vpiv" <<EOF
FRIENDLYNAME "Holdfast vPIV"
DEVICENAME   /dev/null:$(printf '0x%X' "$port")
LIBPATH      $_VPIV_DRIVER
CHANNELID    $(printf '0x%X' "$port")
EOF
  rm -f "$dir/serial" "$dir/root.pem" "$dir/control"

  pcscd -f -a -c "$dir/reader.conf.d" >"$dir/pcscd.log" 2>&1 </dev/null &
  local pcscd_pid=$!
  echo "$pcscd_pid" >"$dir/pcscd.pid"
  local i
  for i in $(seq 1 100); do
    [ -S "$_VPIV_SOCKET" ] && break
    if ! _vpiv_alive "$pcscd_pid"; then
      _vpiv_log "pcscd exited at start; see $dir/pcscd.log"
      rm -f "$dir/pcscd.pid"
      return 1
    fi
    sleep 0.05
  done

  "$bin" run --port "$port" --dir "$dir" "$@" >"$dir/card.log" 2>&1 </dev/null &
  local card_pid=$!
  echo "$card_pid" >"$dir/card.pid"
  for i in $(seq 1 200); do
    [ -s "$dir/serial" ] && break
    _vpiv_alive "$card_pid" || break
    sleep 0.05
  done
  local serial
  serial=$(cat "$dir/serial" 2>/dev/null)
  if [ -z "$serial" ] || ! "$bin" probe --serial "$serial" --timeout-ms 15000 >>"$dir/card.log" 2>&1; then
    _vpiv_log "the card did not come up through pcscd; see $dir/card.log and $dir/pcscd.log"
    HOLDFAST_VPIV_PID=$card_pid HOLDFAST_VPIV_PCSCD_PID=$pcscd_pid vpiv_stop "$dir"
    return 1
  fi

  export HOLDFAST_TEST_PIV_ROOT="$dir/root.pem"
  export HOLDFAST_TEST_PIV_SERIAL="$serial"
  export HOLDFAST_TEST_PIV_CONTROL="$dir/control"
  export HOLDFAST_VPIV_PID="$card_pid"
  export HOLDFAST_VPIV_PCSCD_PID="$pcscd_pid"
  export HOLDFAST_VPIV_DIR="$dir"
}

# Sends SIGTERM to a PID and waits up to 2 s for it to go.
_vpiv_kill() {
  local pid=$1
  _vpiv_alive "$pid" || return 0
  kill "$pid" 2>/dev/null
  local i
  for i in $(seq 1 40); do
    _vpiv_alive "$pid" || return 0
    sleep 0.05
  done
  _vpiv_log "pid $pid did not stop on SIGTERM; sending SIGKILL"
  kill -9 "$pid" 2>/dev/null
}

# vpiv_stop [DIR]: stop the card and pcscd that vpiv_start started (by PID).
vpiv_stop() {
  local dir=${1:-${HOLDFAST_VPIV_DIR:-}}
  local card_pid=${HOLDFAST_VPIV_PID:-} pcscd_pid=${HOLDFAST_VPIV_PCSCD_PID:-}
  if [ -n "$dir" ]; then
    [ -f "$dir/card.pid" ] && card_pid=$(cat "$dir/card.pid")
    [ -f "$dir/pcscd.pid" ] && pcscd_pid=$(cat "$dir/pcscd.pid")
  fi
  if [ -z "$card_pid$pcscd_pid" ]; then
    _vpiv_log "nothing to stop (give the directory: vpiv_stop DIR)"
    return 1
  fi
  [ -n "$card_pid" ] && _vpiv_kill "$card_pid"
  [ -n "$pcscd_pid" ] && _vpiv_kill "$pcscd_pid"
  [ -n "$dir" ] && rm -f "$dir/card.pid" "$dir/pcscd.pid"
  unset HOLDFAST_TEST_PIV_ROOT HOLDFAST_TEST_PIV_SERIAL HOLDFAST_TEST_PIV_CONTROL
  unset HOLDFAST_VPIV_PID HOLDFAST_VPIV_PCSCD_PID HOLDFAST_VPIV_DIR
}

# Executed rather than sourced: `start DIR [flags]` prints export lines for
# eval, `stop DIR` stops it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      shift
      vpiv_start "${1:?usage: $0 start DIR [card flags...]}" "${@:2}"
      for var in HOLDFAST_TEST_PIV_ROOT HOLDFAST_TEST_PIV_SERIAL HOLDFAST_TEST_PIV_CONTROL \
        HOLDFAST_VPIV_PID HOLDFAST_VPIV_PCSCD_PID HOLDFAST_VPIV_DIR; do
        printf 'export %s=%q\n' "$var" "${!var}"
      done
      ;;
    stop)
      vpiv_stop "${2:?usage: $0 stop DIR}"
      ;;
    *)
      echo "usage: $0 start DIR [card flags...] | stop DIR   (or: source $0 && vpiv_start DIR)" >&2
      exit 2
      ;;
  esac
fi
