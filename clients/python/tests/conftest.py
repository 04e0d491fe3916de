"""Shared fixtures of the kvworker tests, which run against a worker named by $KV_RABBITMQ_URL.

scripts/python-tests.sh starts one on a fresh virtual host, whose broker user may act as
the personas "tester" (read and write, its default) and "reader" (read only), with the
Redis provider registered. Without a worker the tests fail; they never skip.
"""
import asyncio
import functools
import os
import subprocess
import uuid
from pathlib import Path

import pytest

import kvworker

URL = os.environ.get("KV_RABBITMQ_URL") or kvworker.DEFAULT_URL
REPO_ROOT = Path(__file__).resolve().parents[3]
# The stand-in for ATLAS's modules/Tools/Base_Tools/kv_store.py.
ATLAS_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "atlas"
CLOSED_PORT_URL = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens on port 1


def new_namespace():
    return "py-" + uuid.uuid4().hex


@pytest.fixture
def ns():
    return new_namespace()


@pytest.fixture
def kv():
    with kvworker.KvStoreClient(URL) as client:
        yield client


def run_async(test):
    """Runs an async test function in its own event loop (no pytest plugin needed)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return run


def close_connection_named(name):
    """Has RabbitMQ close the connections that gave themselves ``name`` (as a broker restart would)."""
    listing = subprocess.run(["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "pid", "client_properties"],
                             capture_output=True, text=True, check=True).stdout
    pids = [line.split("\t")[0] for line in listing.splitlines() if f'{{"connection_name","{name}"}}' in line]
    assert pids, f"no connection named {name}"
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "closed by a test"], check=True)
    return len(pids)
