#!/usr/bin/env bash
# `make bench`: every benchmark of issue 14 that exists, in one go, then bench/REPORT.md.
# Runs on a 2-core Linux box with no AWS and no Stripe: criterion benches (release profile),
# stripe-node and stripe-python on the same signed bytes, one release build of every function
# (reused for sizes and cold start), the cold-start harness, an strace of one cold start (which
# files init opens) and the same cold starts in a network namespace with loopback only.
# Each phase records the load average before it: benchmarks measured while something else runs
# are noisy, and the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out=$target/bench-out
rm -rf "$out"; mkdir -p "$out"
FUNCTIONS="authorizer checkout keys ops subscription sync usage webhook-intake webhook-worker"
RUNS=${COLDSTART_RUNS:-30}
phase() { echo "$1 $(date -u +%FT%TZ) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/phases.txt"; echo "== $1" >&2; }

phase criterion
cargo bench -p webhook-intake --bench verify
cargo bench -p subscription --bench read
cargo bench -p usage --bench decision
cargo bench -p authorizer --bench authorize
cargo bench -p webhook-worker --bench apply

phase peers
bench/peers/run.sh "$out"

phase release-build
start=$(date +%s)
cargo build --release $(printf -- '-p %s ' $FUNCTIONS) -p tollgate-coldstart
echo $(( $(date +%s) - start )) > "$out/release-build-seconds"

phase sizes
python3 bench/sizes.py "$target/release" "$out/sizes.json" $FUNCTIONS hello-lambda

phase coldstart
"$target/release/coldstart" "$out/coldstart.json" "$target/release" "$RUNS"

phase trust-store
# The same cold starts with an empty system trust store (rustls-native-certs reads these two
# variables): what loading the certificate store at init costs, if anything.
empty=$out/empty-certs; mkdir -p "$empty"; : > "$empty/none.pem"
SSL_CERT_FILE=$empty/none.pem SSL_CERT_DIR=$empty \
  "$target/release/coldstart" "$out/coldstart-nocerts.json" "$target/release" "$RUNS" hello-lambda webhook-intake subscription

phase strace
if command -v strace >/dev/null; then
  strace -f -qq -e trace=openat,connect -o "$out/strace-intake.txt" \
    "$target/release/coldstart" "$out/coldstart-strace.json" "$target/release" 1 webhook-intake >/dev/null
fi

phase netns
if unshare -n true 2>/dev/null; then
  unshare -n sh -c "ip link set lo up && '$target/release/coldstart' '$out/coldstart-netns.json' '$target/release' 3" \
    > "$out/netns.txt" 2>&1 || echo "failed" >> "$out/netns.txt"
else
  echo "unshare -n is not permitted here" > "$out/netns.txt"
fi

phase warm
# CPU per warm invocation and peak RSS of each release binary against moto (its own server, on
# WARM_MOTO_PORT), with the local stack's real handlers seeding each function's fresh table.
MOTO_PORT=${WARM_MOTO_PORT:-4801} cargo run -q -p tollgate-warm -- "$out/warm.json" "$target/release" "${WARM_INVOCATIONS:-1000}"

phase aarch64
# aarch64 (Graviton) binaries: the aarch64 standard library for this rustc (`rustup target add
# aarch64-unknown-linux-gnu`) and a cross C compiler and linker for aws-lc (Debian's
# gcc-aarch64-linux-gnu). Built and sized when both are there; otherwise, or if the build fails,
# the report says which was missing instead of stopping the run.
if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  echo "not built: the aarch64-unknown-linux-gnu standard library is not installed" > "$out/aarch64.txt"
elif ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  echo "not built: no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)" > "$out/aarch64.txt"
elif CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    cargo build --release --target aarch64-unknown-linux-gnu $(printf -- '-p %s ' $FUNCTIONS) > "$out/aarch64-build.log" 2>&1; then
  STRIP=aarch64-linux-gnu-strip python3 bench/sizes.py "$target/aarch64-unknown-linux-gnu/release" "$out/sizes-aarch64.json" $FUNCTIONS
  echo "built with aarch64-linux-gnu-gcc as the linker" > "$out/aarch64.txt"
else
  echo "not built: the aarch64 build failed ($(grep -m1 -E '^error' "$out/aarch64-build.log"))" > "$out/aarch64.txt"
fi

phase requests
# DynamoDB, SQS and Stripe requests, capacity units and cost of each operation, through the real
# handlers on a fresh local moto that with-moto.sh starts and stops (dev profile: request counts
# do not depend on the build profile).
scripts/with-moto.sh "${REQUESTS_MOTO_PORT:-4851}" cargo run -q -p tollgate-requests -- "$out/requests.json"

phase scale
# The meter pass at 100,000 and 1,000,000 accounts, simulated on virtual time (bench/scale): the
# figures do not depend on the build profile or the machine.
cargo run -q -p tollgate-scale --bin scale -- "$out/scale.json"
# DELETE /account of a 1,000,000-entry ledger and 10,000 invoices, the same way.
cargo run -q -p tollgate-scale --bin deletion -- "$out/deletion.json"
# 50,000 renewals in an hour through the worker at 2 and 5 workers, the same way.
cargo run -q -p tollgate-scale --bin renewals -- "$out/renewals.json"

phase report
python3 bench/report.py "$out" "$target/criterion" bench/REPORT.md
echo "wrote bench/REPORT.md" >&2
