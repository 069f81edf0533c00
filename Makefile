# The two commands a newcomer needs:  make demo   and   make test
.PHONY: setup demo lint test test-fast test-unit test-process test-fuzz test-container test-push test-client bench clean

PYTEST := .venv/bin/python -m pytest

setup:            ## nginx + wrk from apt if missing, .venv with pinned dependencies
	@scripts/setup_host.sh

demo: setup       ## train on the bundled diabetes data, serve on localhost:8080, print a prediction
	@local_test/demo.sh

lint: setup       ## format, lint rules, types and the package's layers (configured in pyproject.toml)
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy
	cd container/program && ../../.venv/bin/lint-imports --cache-dir ../../build/import-linter ../../pyproject.toml

test: setup lint  ## lint, then the whole suite: unit, process (real nginx + gunicorn), container, client, push
	$(PYTEST) tests

test-fast: setup  ## the edit-run loop, in seconds: unit and in-process tiers, in-process fuzz
	$(PYTEST) tests/unit tests/fuzz/test_fuzz_in_process.py

test-unit: setup
	$(PYTEST) tests/unit

test-process: setup
	$(PYTEST) tests/process

test-fuzz: setup   ## generated hostile requests (Hypothesis), in-process and against the real serve
	$(PYTEST) tests/fuzz

test-container: setup
	$(PYTEST) tests/container

test-push: setup  ## build_and_push.sh against a local registry and moto (an AWS API emulator)
	$(PYTEST) tests/push

test-client: setup  ## SageMaker Python SDK local mode against the real image, and the notebook headless
	$(PYTEST) tests/client

bench: setup      ## latency/throughput against the classic-sample baseline (not a test)
	.venv/bin/python bench/run.py

clean:
	rm -rf build .pytest_cache
