#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test when it is missing. Never fails `make test`:
# when it cannot install, it says why and the browser test skips with the same reason.
set -u
mkdir -p build
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser test: no apt-get on this machine; install Chromium yourself to run it (it will be skipped)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "browser test: not root and no password-less sudo; cannot install chromium (it will be skipped)"
    exit 0
  fi
fi
echo "browser test: installing Debian packages chromium chromium-driver ..."
if ! ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver) >build/apt-chromium.log 2>&1; then
  echo "browser test: apt-get could not install chromium (see build/apt-chromium.log); it will be skipped"
fi
exit 0
