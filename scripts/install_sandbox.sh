#!/usr/bin/env bash
# Install bubblewrap (Debian's `bubblewrap`), the tool ladkit.sandbox uses to give each execution of untrusted
# code its own mount, PID, IPC and network namespaces (see docs/sandbox.md). Idempotent: apt is only touched
# when `bwrap` is missing. Never fatal: without bubblewrap the sandbox falls back to its weaker in-process
# confinement and warns once per process, so a machine without apt (or without root/sudo) still works.
set -uo pipefail

if command -v bwrap >/dev/null 2>&1; then
    echo "bubblewrap already installed: $(bwrap --version)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "WARNING: no apt-get here; install bubblewrap (bwrap) with your package manager for the full sandbox" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends bubblewrap; }; then
    echo "bubblewrap installed: $(bwrap --version)"
else
    echo "WARNING: could not install bubblewrap; ladkit.sandbox will use its weaker fallback (docs/sandbox.md)" >&2
fi
exit 0
