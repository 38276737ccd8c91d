#!/usr/bin/env bash
# `make browser-test`: the billing page (examples/billing-page) and the Stripe stand-in's hosted
# pages clicked through in headless Chromium, driven by playwright-core (tests/browser/), against
# a local stack it starts and stops on ports TOLLGATE_BROWSER_PORT (3330) and
# TOLLGATE_BROWSER_MOTO_PORT (4630). Chromium is Debian's (/usr/bin/chromium, or CHROMIUM):
# browser downloads are not reachable, so when it is missing this installs Debian's `chromium`
# with apt-get (the one thing `make test` installs system-wide; these machines run as root).
# TOLLGATE_DEV=<binary> runs that binary instead of building tollgate-dev. Screenshots of failed
# tests go to target/browser-artifacts/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${TOLLGATE_BROWSER_PORT:-3330}
moto_port=${TOLLGATE_BROWSER_MOTO_PORT:-4630}
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "$chromium is missing: install Debian's chromium (apt-get install chromium) or set CHROMIUM" >&2
    exit 1
  fi
  echo "installing Debian's chromium for the browser tests (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# npm ci once per change of package-lock.json (it empties node_modules, stamp included).
cd "$here"
stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
"$root/examples/billing-page/build.sh"

cd "$root"
scripts/venv.sh
. scripts/local-stack.sh
start_local_stack "$port" "$moto_port"

rm -rf "$root/target/browser-artifacts"
cd "$here"
TOLLGATE_URL="http://127.0.0.1:$port" TOLLGATE_ARTIFACTS="$root/target/browser-artifacts" CHROMIUM="$chromium" \
  npm run -s test
