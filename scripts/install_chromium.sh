#!/usr/bin/env bash
# Install Debian's headless Chromium and its chromedriver for the browser tests (tests/browser/).
# Idempotent and fast when both are already present: apt is only touched when a binary is missing.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromedriver ]; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"  # CI runners are not root; the dev containers are
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
chromium --version
