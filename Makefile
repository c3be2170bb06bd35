# The two commands of the README, and the checks around them.
.PHONY: run test lint validate package bench bench-webhooks load openapi

run:            ## the platform locally: stack + API on 127.0.0.1:3000
	scripts/run-local.sh

test:           ## the whole test suite against its own local stack
	scripts/test.sh

lint:           ## formatting and clippy, warnings as errors
	cargo fmt --all -- --check
	eval "$$(infra/deps.sh)" && cargo clippy --workspace --all-targets --locked -- -D warnings

validate:       ## the SAM template: alarms current, sam validate --lint, checkov (installs the SAM CLI and checkov once)
	infra/validate.sh

# Lambda zips of every function in template.yaml (cargo-lambda, installed into
# the venv once) and their sizes; ARCH=arm64 where that Rust target exists.
ARCH ?= x86_64
package:        ## build every function's Lambda zip and print their sizes
	ARCH="$(ARCH)" scripts/package.sh

bench:          ## performance bench of the functions (docs/performance.md)
	scripts/bench.sh

bench-webhooks: ## deliveries per second of one webhook dispatcher (docs/performance.md)
	scripts/test.sh -- --test it -- --ignored webhook_delivery_throughput --nocapture

load:           ## seed 000's load scenarios with Locust against `make run` (bench/load/run.sh; --host for a stage)
	bench/load/run.sh

openapi:        ## regenerate docs/openapi.json, docs/events/ and the Postman collection from the code
	cargo run -q -p local --bin openapi -- --write
	scripts/postman.sh
