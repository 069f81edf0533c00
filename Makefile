# The two commands a newcomer needs:  make demo   and   make test
.PHONY: setup demo test test-unit test-process test-fuzz test-container test-push test-client bench clean

PYTEST := .venv/bin/python -m pytest

setup:            ## nginx + wrk from apt if missing, .venv with pinned dependencies
	@scripts/setup_host.sh

demo: setup       ## train on the bundled diabetes data, serve on localhost:8080, print a prediction
	@local_test/demo.sh

test: setup       ## the whole suite: unit, process (real nginx + gunicorn), container
	$(PYTEST) tests

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
