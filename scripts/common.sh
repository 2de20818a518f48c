# Shared by scripts/demo and scripts/test: install what is missing, once.
# Sourced, not run.

set -euo pipefail

# Debian packages the build needs. Later issues add swtpm, pcscd and friends.
HOLDFAST_APT_PACKAGES=(gcc g++ make pkg-config)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust 1.89 or newer (https://rustup.rs), then run this again" >&2
    exit 1
  fi
}

ensure_deps() {
  ensure_packages "${HOLDFAST_APT_PACKAGES[@]}"
  ensure_rust
}
