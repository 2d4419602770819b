#!/usr/bin/env bash
# Installs the Debian packages vqprobe builds and tests with. Idempotent; needs root
# (or sudo) for apt-get. Rust itself comes from rustup (https://rustup.rs).
set -euo pipefail
pkgs=(libpcap-dev tshark sip-tester tcpreplay iproute2 prometheus systemd
      kamailio kamailio-sqlite-modules tcpdump baresip-core linphone-cli perl
      chromium chromium-driver)
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
command -v cargo >/dev/null || { echo "install Rust first: https://rustup.rs" >&2; exit 1; }
