# Shared by scripts/demo and scripts/test: install what is missing, once.
# Sourced, not run.

set -euo pipefail

# Debian packages the build needs: a C toolchain, the TPM software stack
# (tss-esapi links tpm2-tss) and PC/SC (the yubikey crate links libpcsclite).
HOLDFAST_APT_PACKAGES=(gcc g++ make pkg-config libtss2-dev libpcsclite-dev)
# What the tests add: a TPM simulator and a PC/SC daemon with a virtual reader.
HOLDFAST_TEST_APT_PACKAGES=(swtpm swtpm-tools tpm2-tools pcscd vsmartcard-vpcd)

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
