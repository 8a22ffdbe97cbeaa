#!/usr/bin/env bash
# Set up a fresh machine: Korean fonts (Debian packages, when run as root) and a virtualenv in
# .venv with the CPU build of torch 2.13.0 and the project's requirements. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

# Nanum, Alee and Lexi render training images; Un and Baekmuk are held out for testing
FONT_PACKAGES="fonts-nanum fonts-nanum-extra fonts-alee fonts-lexi-gulim fonts-lexi-saebom fonts-unfonts-core fonts-baekmuk fontconfig"
fonts_missing() {
  [ ! -f /usr/share/fonts/truetype/nanum/NanumPen.ttf ] || [ ! -d /usr/share/fonts/truetype/alee ] \
    || [ ! -d /usr/share/fonts/truetype/lexi ] || [ ! -d /usr/share/fonts/truetype/unfonts-core ] \
    || [ ! -d /usr/share/fonts/truetype/baekmuk ] || ! command -v fc-list >/dev/null
}
if fonts_missing; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Korean fonts: $FONT_PACKAGES"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $FONT_PACKAGES >/dev/null
  else
    echo "Korean fonts are missing: install the Debian/Ubuntu packages $FONT_PACKAGES (as root)" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch first and pinned: an unpinned torch would pull gigabytes of CUDA packages
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
# when setup started and finished: README's first command (this, then korean/quickstart.py) has 15
# minutes in all, so a quickstart that starts right after counts its budget from setup's start
printf '%s %s\n' "$started" "$(date +%s)" > .venv/setup_times.tmp && mv .venv/setup_times.tmp .venv/setup_times
echo "setup done: .venv is ready"
