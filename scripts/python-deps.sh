#!/usr/bin/env bash
# Installs, through apt and only when absent, the Debian packages the Python side needs:
# pika and aio-pika (the kvworker package's clients), pytest (its tests), and pip,
# setuptools and venv (to install the package offline, as the README says).
# Called by scripts/services.sh and scripts/python-tests.sh.
set -euo pipefail

say() { printf '[python-deps] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
has_module() { /usr/bin/python3 -c "import $1" 2>/dev/null; }
has_module pika || missing+=(python3-pika)
has_module aio_pika || missing+=(python3-aio-pika)
has_module pytest || missing+=(python3-pytest)
has_module pip || missing+=(python3-pip)
has_module setuptools || missing+=(python3-setuptools)
# Debian ships the venv module without ensurepip's wheels unless python3-venv is installed.
dpkg -s python3-venv >/dev/null 2>&1 || missing+=(python3-venv)

[ "${#missing[@]}" -eq 0 ] && exit 0
say "apt-get update"
as_root apt-get update -qq >/dev/null
say "installing ${missing[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
