#!/usr/bin/env bash
# Creates .venv and installs requirements-dev.txt into it, once per change of that file.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.installed-$(sha256sum requirements-dev.txt | cut -c1-16)
if [ -f "$stamp" ]; then exit 0; fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
rm -f .venv/.installed-*
touch "$stamp"
