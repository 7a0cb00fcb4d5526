"""The bidder under load, next to its limit measured in the same run.

    python -m bench.bidder                      # 1M profiles in audiences, 100 line items
    python -m bench.bidder --profiles 200000

A Redis database of its own (BENCH_BIDDER_REDIS_URL, default redis://127.0.0.1:6379/10) gets a
realistic state (untimed): a million profiles that may be targeted, each with a buyer id; 100
line items of one workspace, 20 of them on audiences of 200,000 people each, the others contextual
with areas and day parts; the bidder (bin/bidder, one process) and the limit (bench/_bidder_limit:
uvicorn, orjson, one pipelined Redis round trip, one process) are started side by side.

  1. saturation: requests per second with `wrk` (one thread, 20 connections, 10 s, a Lua script
     drawing known and unknown people, sizes and floors), the bidder against the limit; goal:
     at least a third of the limit;
  2. a fixed rate: 2,000 requests per second with `hey` (20 workers at 100/s each, 10 s), the
     bidder's p50, p99 and maximum latency as the client sees them on loopback (an upper bound of
     the server's); goal: p99 <= 5 ms, and no answer later than tmax (100 ms);
  3. notices: billing notices at saturation (`wrk`, each bid billed once) into the stream.
The clients are compiled programs (Debian's wrk and hey), so they do not eat the bidder's CPU
as a Python client would; both share the machine's two cores with the servers.
"""

import argparse
import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import PROJECT, free_port
from programmatic import state as keys

WORKSPACE, SLUG = 1, "bench"


def seed(r, profiles: int) -> None:
    started = time.perf_counter()
    r.flushdb()
    rng = random.Random(7)
    pipe = r.pipeline(transaction=False)
    for start in range(1, profiles + 1, 10_000):
        ids = list(range(start, min(start + 10_000, profiles + 1)))
        pipe.sadd(keys.consent_key(WORKSPACE), *ids)
        for i in ids:
            pipe.set(keys.identity_key(WORKSPACE, "buyer", f"u{i}"), i)
        pipe.execute()
    now = time.time()
    lines = []
    for line in range(1, 101):
        audience = line <= 20
        if audience:
            members = rng.sample(range(1, profiles + 1), min(200_000, profiles // 5))
            for start in range(0, len(members), 10_000):
                r.sadd(keys.members_key(WORKSPACE, line, 1), *members[start : start + 10_000])
        lines.append(
            {
                "id": line,
                "campaign": 1 + line % 10,
                "currency": "EUR",
                "starts": now - 3600,
                "ends": now + 86400,
                "inventory": ["site", "app"],
                "members": {"version": 1} if audience else None,
                "value_model": None,
                "base_cpm": 0.5 + (line % 7) * 0.4,
                "min_cpm": 0.2,
                "max_cpm": 8.0,
                "cap": {"max": 5, "seconds": 86400} if audience else None,
                "dayparts": None if line % 3 else [[0, 24]],
                "days": None,
                "area": None if line % 4 else {"countries": ["FRA"], "regions": [], "cities": [], "circles": []},
                "creatives": [
                    {
                        "id": line * 10 + k,
                        "w": w,
                        "h": h,
                        "adm": f"<a href='https://shop.example/{line}'><img src='https://shop.example/{w}x{h}.png'></a>",
                        "adomain": ["shop.example"],
                        "cat": ["IAB22"],
                    }
                    for k, (w, h) in enumerate(((300, 250), (728, 90), (320, 50)))
                ],
            }
        )
    state = {
        "workspace": WORKSPACE,
        "time_zone": "Europe/Paris",
        "currency": "EUR",
        "rates": {"EUR": 1.0, "USD": 0.92},
        "campaigns": {str(c): {"total": 10**15, "daily": 10**14, "pacing": "asap"} for c in range(1, 11)},
        "lines": lines,
    }
    r.hset(keys.DIRECTORY, SLUG, WORKSPACE)
    r.set(keys.state_key(WORKSPACE), orjson.dumps(state))
    r.set(keys.version_key(WORKSPACE), time.time_ns())
    print(f"state: {profiles:,} profiles, 100 line items, seeded in {time.perf_counter() - started:.1f} s", flush=True)


def request(rng: random.Random, profiles: int) -> dict:
    known = rng.random() < 0.6
    w, h = rng.choice(((300, 250), (728, 90), (320, 50), (160, 600)))
    body = {
        "id": f"r{rng.getrandbits(48):x}",
        "at": 2,
        "tmax": 100,
        "cur": ["EUR", "USD"],
        "imp": [{"id": "1", "bidfloor": round(rng.uniform(0.1, 2.0), 2), "banner": {"w": w, "h": h}}],
        "site": {"id": "s1", "domain": "news.example", "cat": ["IAB12"], "page": "https://news.example/a"},
        "device": {"ua": "Mozilla/5.0", "geo": {"country": "FRA", "lat": 48.85, "lon": 2.35}},
        "user": {"id": f"x{rng.getrandbits(32)}"},
    }
    if known:
        body["user"]["buyeruid"] = f"u{rng.randint(1, profiles)}"
    return body


def lua_script(bodies: list[bytes], path: Path) -> None:
    quoted = ",\n".join("[==[" + b.decode() + "]==]" for b in bodies)
    path.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["x-openrtb-version"] = "2.6"\n'
        f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )


def wrk(url: str, script: Path, seconds: int = 10) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c20", f"-d{seconds}s", "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("Requests/sec"))
    return float(line.split()[1])


def start(command: list[str], env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a busy machine may take a while to start it, or to answer
        try:
            requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
            return process
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    process.kill()
    sys.exit(f"{command[0]} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_BIDDER_REDIS_URL", "redis://127.0.0.1:6379/10"))
    parser.add_argument("--profiles", type=int, default=1_000_000)
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (Debian: apt-get install {tool}).")
    r = redis.Redis.from_url(args.redis_url)
    seed(r, args.profiles)
    env = {**os.environ, "BIDDER_REDIS_URL": args.redis_url, "PYTHON": sys.executable}
    bidder_port, limit_port = free_port(), free_port()
    bidder = start([str(PROJECT / "bin" / "bidder")], {**env, "BIDDER_PORT": str(bidder_port)}, bidder_port)
    limit = start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench._bidder_limit:app",
            "--port",
            str(limit_port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        env,
        limit_port,
    )
    try:
        rng = random.Random(11)
        bodies = [orjson.dumps(request(rng, args.profiles)) for _ in range(500)]
        bid_url = f"http://127.0.0.1:{bidder_port}/openrtb2/{SLUG}"
        check = [requests.post(bid_url, data=b, timeout=5).status_code for b in bodies[:200]]
        print(f"answers of 200 requests: {check.count(200)} bids, {check.count(204)} no bids", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "bids.lua"
            lua_script(bodies, script)
            wrk(bid_url, script, 3)  # warm up
            ours = wrk(bid_url, script)
            theirs = wrk(f"http://127.0.0.1:{limit_port}/", script)
            print(
                f"saturation     bidder {ours:8.0f} req/s   minimal handler {theirs:8.0f} req/s   "
                f"ratio {ours / theirs:.2f} (goal >= 0.33)",
                flush=True,
            )
            body = Path(tmp) / "body.json"
            body.write_bytes(bodies[0])
            out = subprocess.run(
                [
                    "hey",
                    "-z",
                    "10s",
                    "-c",
                    "20",
                    "-q",
                    "100",
                    "-m",
                    "POST",
                    "-T",
                    "application/json",
                    "-D",
                    str(body),
                    "-o",
                    "csv",
                    bid_url,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows = list(csv.DictReader(io.StringIO(out)))
            latencies = sorted(float(row["response-time"]) * 1000 for row in rows)
            n = len(latencies)
            p50, p99 = latencies[n // 2], latencies[min(n - 1, int(n * 0.99))]
            late = sum(1 for v in latencies if v > 100)
            print(
                f"fixed rate     {n / 10:8.0f} req/s sent   p50 {p50:.2f} ms   p99 {p99:.2f} ms (goal <= 5)   "
                f"max {latencies[-1]:.2f} ms   later than tmax: {late}",
                flush=True,
            )
            # Notices: bids recorded as the bidder records them, then billed once each at saturation.
            pipe = r.pipeline(transaction=False)
            for i in range(200_000):
                pipe.set(
                    keys.bid_key(WORKSPACE, f"b{i}"),
                    orjson.dumps(
                        {
                            "line": 1 + i % 100,
                            "campaign": 1 + i % 10,
                            "price": "3.0",
                            "currency": "EUR",
                            "rate": "1.0",
                            "profile": 1 + i,
                            "cap": 0,
                            "test": 0,
                            "zone": "Europe/Paris",
                        }
                    ),
                    ex=keys.BID_TTL,
                )
                if i % 10_000 == 9_999:
                    pipe.execute()
            pipe.execute()
            notices = Path(tmp) / "notices.lua"
            notices.write_text(
                "local i = -1\nrequest = function()\n  i = i + 1\n"
                f'  return wrk.format("GET", "/notice/{SLUG}/bill/b" .. i .. "?price=2.5")\nend\n'
            )
            rate = wrk(f"http://127.0.0.1:{bidder_port}", notices)
            counted = r.xlen(keys.notices_key(WORKSPACE))
            print(
                f"notices        {rate:8.0f} billing notices/s into the stream ({counted:,} counted once)", flush=True
            )
    finally:
        for process in (bidder, limit):
            process.send_signal(signal.SIGTERM)
            process.wait(10)
        r.flushdb()


if __name__ == "__main__":
    main()
