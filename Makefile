# Tollgate: the two commands are `make dev` (run the bundle locally) and `make test` (every check).
# Both install what they need: Python tools into .venv (moto's server, cfn-lint), Rust crates
# through cargo. Nothing is installed system-wide and nothing talks to AWS or Stripe.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PORT ?= 3000
MOTO_PORT ?= 4566
MOTO_URL := http://127.0.0.1:$(MOTO_PORT)
VENV := .venv

.PHONY: dev test venv moto lint fmt clippy cfn-lint unit bench clean

## Run the whole bundle on http://127.0.0.1:$(PORT) (Ctrl-C stops everything).
dev: venv
	PORT=$(PORT) MOTO_PORT=$(MOTO_PORT) cargo run -p tollgate-dev -- up

## Every check: formatting, clippy, cfn-lint, and the whole test suite against a local moto.
test: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	scripts/with-moto.sh $(MOTO_PORT) cargo test --workspace --no-fail-fast

venv:
	scripts/venv.sh

## The local DynamoDB/SQS server alone, in the foreground (for running single tests).
moto: venv
	$(VENV)/bin/moto_server -H 127.0.0.1 -p $(MOTO_PORT)

lint: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

fmt:
	cargo fmt --all

## Criterion benchmarks (numbers go in the issue notes, never in assertions).
bench:
	cargo bench -p subscription --bench read

clean:
	rm -rf $(VENV) target
