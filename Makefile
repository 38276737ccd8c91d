# Tollgate: the two commands are `make dev` (run the bundle locally) and `make test` (every check).
# Both install what they need: Python tools into .venv (moto's server, cfn-lint, Schemathesis), Rust
# crates through cargo, npm packages into each node folder's node_modules (pinned in its
# package-lock.json: the TypeScript client, the billing page, the browser tests). Nothing is
# installed system-wide but one thing: `make test` installs Debian's `chromium` with apt-get when
# /usr/bin/chromium is missing (the browser tests; browser downloads are not reachable). Nothing
# talks to AWS or Stripe.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PORT ?= 3000
MOTO_PORT ?= 4566
MOTO_URL := http://127.0.0.1:$(MOTO_PORT)
VENV := .venv

.PHONY: dev test venv moto lint fmt clippy cfn-lint unit bench clean vectors vectors-check sigv4-vectors sigv4-vectors-check openapi client-test schemathesis browser-test

## Run the whole bundle on http://127.0.0.1:$(PORT), the billing page at / (Ctrl-C stops everything).
dev: venv
	examples/billing-page/build.sh
	PORT=$(PORT) MOTO_PORT=$(MOTO_PORT) cargo run -p tollgate-dev -- up

## Every check: formatting, clippy, cfn-lint, the signature vectors against Stripe's own
## libraries, and the whole test suite against a local single-threaded moto.
test: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/openapi-spec-validator openapi.json
	$(MAKE) vectors-check
	$(MAKE) sigv4-vectors-check
	$(MAKE) client-test
	$(MAKE) schemathesis
	$(MAKE) browser-test
	scripts/with-moto.sh $(MOTO_PORT) cargo test --workspace --no-fail-fast

## Rewrites openapi.json from the Rust types (a test fails while the committed file is stale).
openapi:
	cargo run -q -p tollgate-dev -- openapi > openapi.json

## Regenerates events/signature-vectors.json with stripe-python and stripe-node.
vectors: venv
	scripts/signature-vectors/generate.sh events/signature-vectors.json

## Regenerates the vectors with both libraries and checks they are the committed ones (which
## `cargo test` verifies against Tollgate's own check).
vectors-check: venv
	tmp=$$(mktemp); scripts/signature-vectors/generate.sh "$$tmp" >/dev/null; \
	  cmp -s "$$tmp" events/signature-vectors.json || { rm -f "$$tmp"; echo "events/signature-vectors.json differs from what stripe-python and stripe-node make now: run make vectors" >&2; exit 1; }; \
	  rm -f "$$tmp"; echo "signature vectors: stripe-python and stripe-node agree with the committed file"

## Regenerates events/sigv4-vectors.json: the operator routes' SigV4 signatures made by aws4fetch,
## @smithy/signature-v4 and botocore (fails unless the three agree; docs/operator.md).
sigv4-vectors: venv
	scripts/sigv4-vectors/generate.sh events/sigv4-vectors.json

## Regenerates the SigV4 vectors with the three libraries and checks they are the committed ones
## (which `cargo test` verifies against the aws-sigv4 crate).
sigv4-vectors-check: venv
	tmp=$$(mktemp); scripts/sigv4-vectors/generate.sh "$$tmp" >/dev/null; \
	  cmp -s "$$tmp" events/sigv4-vectors.json || { rm -f "$$tmp"; echo "events/sigv4-vectors.json differs from what aws4fetch, @smithy/signature-v4 and botocore make now: run make sigv4-vectors" >&2; exit 1; }; \
	  rm -f "$$tmp"; echo "SigV4 vectors: aws4fetch, @smithy/signature-v4 and botocore agree with the committed file"

## The TypeScript client (clients/typescript, @tollgate/client): installs its npm packages, builds
## it with types generated from openapi.json, and runs its tests against a local stack on ports
## 3310 and 4610 (clients/typescript/README.md).
client-test: venv
	clients/typescript/test.sh

## Schemathesis (pinned in requirements-dev.txt) against a local stack on ports 3320 and 4620,
## from openapi.json, with the three route sets' identities: a fixed seed and number of examples
## per operation (none saved by an earlier run: --generation-database none), zero failures.
## tests/schemathesis/ holds its configuration and the hooks that stand in for API Gateway and
## sign webhooks. Every check runs but these:
## - ignored_auth: the local stack takes the identity from x-tollgate-account and
##   x-tollgate-operator, stand-ins for what API Gateway verifies (a JWT, a SigV4 signature), so
##   it cannot refuse a forged credential; the gateway does, and template tests check it is there.
## - unsupported_method: API Gateway answers a method a path does not declare with
##   404 {"message": "Not Found"} (documented in openapi.json), not the 405 the check expects; the
##   webhook function URL, which answers 405 with Allow: POST, is checked by the local stack's tests.
## - missing_required_header on the operator routes only: IAM answers a request without its SigV4
##   Authorization with 403, where the check expects 401 (schemathesis.toml says more).
SCHEMATHESIS_SEED := 20261206
SCHEMATHESIS_EXAMPLES := 50
schemathesis: venv
	scripts/schemathesis.sh --seed $(SCHEMATHESIS_SEED) --max-examples $(SCHEMATHESIS_EXAMPLES) \
	  --generation-database none --exclude-checks ignored_auth,unsupported_method

## The billing page and the stand-in's hosted pages clicked through in headless Chromium
## (Debian's, installed with apt-get when missing) by playwright-core, against a local stack on
## ports 3330 and 4630; screenshots of failures in target/browser-artifacts/ (tests/browser/).
browser-test: venv
	tests/browser/test.sh

venv:
	scripts/venv.sh

## The local DynamoDB/SQS server alone, in the foreground (for running single tests); single-
## threaded, so that transactions are isolated as in DynamoDB.
moto: venv
	$(VENV)/bin/python scripts/moto_single.py 127.0.0.1 $(MOTO_PORT)

lint: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

fmt:
	cargo fmt --all

## Every benchmark (criterion benches, stripe-node and stripe-python on the same signed bytes,
## one release build reused for sizes and cold start), then bench/REPORT.md. Never part of
## `make test`: timings are reported, never asserted. Takes 20-40 minutes on 2 cores.
bench: venv
	bench/run.sh

clean:
	rm -rf $(VENV) target
