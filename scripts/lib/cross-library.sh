# Sourced by the generators of cross-library test vectors (scripts/signature-vectors,
# scripts/sigv4-vectors): checks the usage, installs the pinned Python and Node libraries, runs
# the folder's generate.py and generate.mjs, and leaves their outputs in $tmp/python.json and
# $tmp/node.json (removed on exit), with $out the absolute path of the file to write and the
# working directory at the repository's root.
# Usage (in a generator): source "$(dirname "$0")/../lib/cross-library.sh" "$@"
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT.json" >&2
  exit 2
fi
out=$(realpath -m "$1")
dir=$(realpath --relative-to="$(dirname "${BASH_SOURCE[0]}")/../.." "$(dirname "$0")")
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

scripts/venv.sh
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python "$dir/generate.py" "$tmp/python.json"
node "$dir/generate.mjs" "$tmp/node.json"
