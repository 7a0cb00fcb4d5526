"""A real bidder process (bin/bidder's uvicorn command) on a Redis database of its own, and the
state it reads, published as programmatic publishes it (programmatic.state's keys)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis
import requests

from programmatic import state as keys

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CIBLE_BIDDER_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
WORKSPACE, SLUG = 7, "maison"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def bidder_url(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("bidder") / "bidder.log"
    env = {
        **os.environ,
        "BIDDER_REDIS_URL": REDIS_URL,
        "BIDDER_PORT": str(port),
        "BIDDER_NETWORK_MARGIN_MS": "20",
        "PYTHON": sys.executable,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen([str(ROOT / "bin" / "bidder")], cwd=ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"the bidder did not start: {log.read_text()}")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def store():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


def line_item(**overrides) -> dict:
    """A display target of a running campaign, as programmatic publishes it."""
    now = time.time()
    line = {
        "id": 11,
        "campaign": 3,
        "currency": "EUR",
        "starts": now - 3600,
        "ends": now + 86400,
        "inventory": ["site", "app"],
        "members": None,
        "value_model": None,
        "base_cpm": 2.5,
        "min_cpm": 1.0,
        "max_cpm": 6.0,
        "cap": None,
        "dayparts": None,
        "days": None,
        "area": None,
        "creatives": [
            {
                "id": 21,
                "w": 300,
                "h": 250,
                "adm": '<a href="https://shop.example/soldes"><img src="https://shop.example/300x250.png"></a>',
                "adomain": ["shop.example"],
                "cat": ["IAB22"],
            },
            {
                "id": 22,
                "w": 728,
                "h": 90,
                "adm": '<a href="https://shop.example/soldes"><img src="https://shop.example/728x90.png"></a>',
                "adomain": ["shop.example"],
                "cat": ["IAB22"],
            },
        ],
    }
    line.update(overrides)
    return line


def publish(store, *lines, campaigns=None, rates=None) -> None:
    state = {
        "workspace": WORKSPACE,
        "time_zone": "Europe/Paris",
        "currency": "EUR",
        "rates": rates or {"EUR": 1.0, "USD": 0.9},
        "campaigns": campaigns or {"3": {"total": None, "daily": None, "pacing": "asap"}},
        "lines": list(lines),
    }
    store.hset(keys.DIRECTORY, SLUG, WORKSPACE)
    store.set(keys.state_key(WORKSPACE), orjson.dumps(state))
    # A version that never repeats, even after Redis lost its data: the bidder reloads when it moves.
    store.set(keys.version_key(WORKSPACE), time.time_ns())
