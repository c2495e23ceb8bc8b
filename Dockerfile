# forwarder: container image.
#
#   docker build -t forwarder:0.1.0 .
#
# Offline / air-gapped build (pip inside `docker build` cannot reach an index): fill a
# wheelhouse on the host with the project's wheel, its dependencies and the build backend,
# for the image's Python (3.11, Linux x86_64), then build with the index turned off:
#
#   python3.11 -m pip wheel --wheel-dir build/wheelhouse . 'setuptools>=77' wheel
#   docker build --build-arg PIP_NO_INDEX=1 -t forwarder:0.1.0 .
#
# (From another Python or platform: `pip download --only-binary=:all: --python-version 3.11
#  --platform manylinux2014_x86_64 --dest build/wheelhouse <the pyproject dependencies>
#  setuptools wheel`, then `pip wheel --no-deps --wheel-dir build/wheelhouse .`.)
#
# Run: the config is read from /etc/forwarder/config.yaml, state (checkpoints, dead letters,
# the lock) lives on a volume at /var/lib/forwarder, /tmp may be an emptyDir; the root
# filesystem can be read-only.
#
#   docker run --read-only --tmpfs /tmp -v forwarder-state:/var/lib/forwarder \
#     -v "$PWD/config.yaml:/etc/forwarder/config.yaml:ro" forwarder:0.1.0

# Both stages must use the same image: the virtual environment is copied between them.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# Build-time pip settings, read by pip from the environment. PIP_NO_INDEX=1 builds only from
# build/wheelhouse (copied to /src/build/wheelhouse; a missing wheelhouse is just ignored).
ARG PIP_NO_INDEX=0
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_FIND_LINKS=/src/build/wheelhouse \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# .dockerignore lets in only pyproject.toml, README.md, forwarder/ and build/wheelhouse/.
COPY . /src/

# The project's wheel and every dependency's wheel, then a virtual environment without pip
# holding only those wheels (the final stage copies just this environment).
RUN python3 -m pip wheel --wheel-dir /wheels /src \
    && python3 -m venv --without-pip /opt/forwarder \
    && python3 -m pip --python /opt/forwarder/bin/python install --no-index /wheels/*.whl \
    && /opt/forwarder/bin/forwarder --version

FROM ${PYTHON_IMAGE}

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="forwarder" \
      org.opencontainers.image.description="Streaming SIEM forwarder: Calendly and Google Calendar audit logs to Kafka, syslog, HTTP and files, with durable checkpoints" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A fixed numeric user and group (10001), so Kubernetes' runAsNonRoot can check it and
# fsGroup can match it; no home directory, no shell. The state and config directories are
# the only ones it owns; everything else stays root-owned and may be mounted read-only.
RUN groupadd --system --gid 10001 forwarder \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin forwarder \
    && mkdir -p /var/lib/forwarder /etc/forwarder \
    && chown 10001:10001 /var/lib/forwarder \
    && chmod 0750 /var/lib/forwarder

COPY --from=builder /opt/forwarder /opt/forwarder

# No bytecode written at run time (it was compiled at build time), unbuffered logs, and
# the health check's address (metrics.listen; the chart uses 0.0.0.0:9108).
ENV PATH=/opt/forwarder/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FORWARDER_HEALTH_URL=http://127.0.0.1:9108/healthz

WORKDIR /var/lib/forwarder
USER 10001:10001
EXPOSE 9108

# The daemon is PID 1 (exec form, no shell in between) and handles SIGTERM and SIGINT
# itself: stop polling, drain within pipeline.shutdown_grace, commit cursors, exit 0 (4 if
# the drain could not complete; a second signal stops at once). SIGHUP reopens the file
# sink's file. It starts no child processes: nothing for an init (tini) to reap.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['FORWARDER_HEALTH_URL'], timeout=4)"]

ENTRYPOINT ["forwarder"]
CMD ["run", "--config", "/etc/forwarder/config.yaml"]
