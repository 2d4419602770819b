#!/usr/bin/env bash
# Installs the Debian packages vqprobe builds and tests with. Idempotent; needs root
# (or sudo) for apt-get. Rust itself comes from rustup (https://rustup.rs).
set -euo pipefail
pkgs=(libpcap-dev tshark sip-tester tcpreplay iproute2 prometheus systemd
      kamailio kamailio-sqlite-modules tcpdump baresip-core linphone-cli perl
      chromium chromium-driver nats-server postgresql util-linux)
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
# The oracle of tests/numbers_oracle.rs and tests/number_cli.rs: Google's libphonenumber
# as the Python package the compiled-in numbering data was generated from
# (scripts/gen-numbering-data.py). Debian's python3-phonenumbers is years older than the
# data, so it comes from PyPI; a Debian python3 without pip gets python3-pip, and one
# that refuses pip installs (PEP 668, "externally managed") is overridden for this one
# pure-Python package.
phonenumbers_version=9.0.43
if [ "$(python3 -c 'import phonenumbers; print(phonenumbers.__version__)' 2>/dev/null)" != "$phonenumbers_version" ]; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-pip
    fi
    pip=(python3 -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" "phonenumbers==$phonenumbers_version" 2>/dev/null \
        || "${pip[@]}" --break-system-packages "phonenumbers==$phonenumbers_version"
fi
# schemathesis (scripts/schemathesis.sh) comes from PyPI; Debian has no package of it.
# --break-system-packages is needed where pip guards the system Python (PEP 668).
if ! command -v schemathesis >/dev/null; then
    python3 -m pip install --quiet schemathesis 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages schemathesis
fi
command -v cargo >/dev/null || { echo "install Rust first: https://rustup.rs" >&2; exit 1; }
