"""The limit the bidder is measured against: a minimal ASGI handler that reads a bid request
with orjson, makes one pipelined Redis round trip and answers (uvicorn, one process)."""

import os

import orjson
import redis.asyncio as redis

client = redis.from_url(os.environ.get("BIDDER_REDIS_URL", "redis://127.0.0.1:6379/10"))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = orjson.loads(body)
    user = (request.get("user") or {}).get("buyeruid", "")
    pipe = client.pipeline(transaction=False)
    pipe.get("cible:{w1}:state:v")
    pipe.get(f"cible:{{w1}}:id:b:{user}")
    await pipe.execute()
    await send({"type": "http.response.start", "status": 204, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
