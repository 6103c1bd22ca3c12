#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium;
# Playwright's own browser download is never used). Needs root and apt-get.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "[install-chromium] $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "[install-chromium] run as root on Debian/Ubuntu, or install the chromium package yourself" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "[install-chromium] $(/usr/bin/chromium --version)"
