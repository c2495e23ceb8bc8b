#!/usr/bin/env bash
# Makes a local Debian bookworm base image with Python 3.11 for the image test, where no
# registry can be reached: debootstrap (from Debian's packages) + docker import.
#   tests/deploy/make_base_image.sh [TAG]      (default forwarder-test-base:bookworm; root)
# Then: FORWARDER_TEST_BASE_IMAGE=TAG .venv/bin/pytest tests/deploy -m slow
# (The image test runs it itself when the engine lacks the image.) $DOCKER names the docker
# CLI to use (default: docker on PATH); DOCKER_HOST is honoured as usual.
set -euo pipefail
tag="${1:-forwarder-test-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export PATH="$PATH:/usr/sbin:/sbin"  # debootstrap lives in sbin
command -v debootstrap >/dev/null || { echo "needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
# mktemp makes the directory 0700, and it becomes the image's "/": a non-root user (the
# image's 10001) could then open nothing at all ("python3": executable file not found).
chmod 0755 "$rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
  bookworm "$rootfs" "$mirror" >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "${DOCKER:-docker}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$tag"
echo "$tag"
