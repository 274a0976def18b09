# The two commands a user needs: `make demo` and `make test`. Both install what they
# need into .venv, start their own Kafka and Redis, and stop them afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Tests and the demo get their own ports and state, so a developer's stack is untouched;
# TEST_ENV from the environment wins (another checkout's `.ci/run` on the same machine).
TEST_ENV ?= CDP_STATE_DIR=$(CURDIR)/.cdp/test CDP_KAFKA_BOOTSTRAP=127.0.0.1:19092 \
	CDP_REDIS_URL=redis://127.0.0.1:16379/0 CDP_HTTP_PORT=16066
DEMO_ENV := CDP_STATE_DIR=$(CURDIR)/.cdp/demo

.PHONY: install lint test test-unit test-integration test-faults demo demo-viewer bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
		echo "error: cannot create a virtualenv; install python3-venv (apt-get install python3-venv)"; exit 2; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,tools]'
	@touch $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check pipeline cdp_tools tests
	$(BIN)/ruff format --check pipeline cdp_tools tests
	$(BIN)/mypy

PYTEST = $(TEST_ENV) $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Runs the given commands between `stack up` and `stack down`; the stack is stopped
# whatever happened, also when `up` failed half-way.
with_stack = $(TEST_ENV) $(BIN)/cdp stack up --fresh; status=$$?; \
	if [ $$status -eq 0 ]; then $(1); status=$$?; fi; \
	$(TEST_ENV) $(BIN)/cdp stack down; exit $$status

# The suite in pytest-xdist processes, a file at a time per process (a file's tests
# share its module's worker, browser or stack), longest files first (the order
# tests/conftest.py gives them): they mostly wait on Kafka and the workers, so four
# processes on two cores. The fault tests that stop Kafka or Redis, or flood Redis, have
# their own (tests/faults/conftest.py), so they run alongside the rest. The fault
# workloads run at FAULT_SCALE of their full size (50,000 events killed into, 100,000
# hostile inputs, ...); `make test-faults` runs them whole.
TEST_JOBS ?= 4
FAULT_SCALE ?= 0.3
XDIST = -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder

# Everything: lint, unit, property, integration, browser and fault tests against real
# services.
test: lint
	$(call with_stack,CDP_FAULT_SCALE=$(FAULT_SCALE) $(PYTEST) $(XDIST))

test-unit: install
	$(BIN)/python -m pytest -p no:cacheprovider -m "not integration" $(XDIST) $(PYTEST_ARGS)

test-integration: install
	$(call with_stack,$(PYTEST) -m "integration and not faults" $(XDIST))

test-faults: install
	$(call with_stack,CDP_FAULT_SCALE=1 $(PYTEST) -m faults)

demo: install
	$(DEMO_ENV) $(BIN)/cdp demo

# The demo, then the stack and the worker stay up for the profile viewer until Ctrl-C.
demo-viewer: install
	$(DEMO_ENV) $(BIN)/cdp demo --stay

# Benchmarks print figures and assert nothing; they use their own Redis DB (wiped).
BENCH_ENV := $(TEST_ENV) CDP_REDIS_URL=redis://127.0.0.1:16379/3

bench: install
	$(BENCH_ENV) $(BIN)/cdp stack up --fresh; status=$$?; \
	if [ $$status -eq 0 ]; then \
		$(BENCH_ENV) $(BIN)/cdp bench e2e && $(BENCH_ENV) $(BIN)/cdp bench identity --yes && \
		$(BENCH_ENV) $(BIN)/cdp bench lookup; status=$$?; \
	fi; $(BENCH_ENV) $(BIN)/cdp stack down; exit $$status

clean:
	-$(TEST_ENV) $(BIN)/cdp stack down
	-$(DEMO_ENV) $(BIN)/cdp stack down
	rm -rf $(VENV) .cdp .mypy_cache .ruff_cache .pytest_cache .hypothesis
