#!/usr/bin/env bash
# Installs the Debian packages vqprobe builds and tests with. Idempotent; needs root
# (or sudo) for apt-get. Rust itself comes from rustup (https://rustup.rs).
set -euo pipefail
pkgs=(libpcap-dev tshark sip-tester tcpreplay iproute2 prometheus systemd
      tcpdump baresip-core linphone-cli perl chromium chromium-driver)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
# schemathesis (scripts/schemathesis.sh) comes from PyPI; Debian has no package of it.
# --break-system-packages is needed where pip guards the system Python (PEP 668).
if ! command -v schemathesis >/dev/null; then
    python3 -m pip install --quiet schemathesis 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages schemathesis
fi
command -v cargo >/dev/null || { echo "install Rust first: https://rustup.rs" >&2; exit 1; }
