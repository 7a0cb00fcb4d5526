"""Signed webhook calls: deliveries to connectors, removal notices, rule notifications.

Every call carries `X-Cible-Timestamp` and `X-Cible-Signature: sha256=<hex>`, the
HMAC-SHA256 of "<timestamp>.<body>" with the receiver's secret, so a receiver can
check both the origin and the freshness of a call.
"""

import hashlib
import hmac
import json
import time
from typing import Any

import requests
from django.conf import settings


class DeliveryError(Exception):
    pass


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 of "<timestamp>.<body>" with the secret, hex, as `sha256=<hex>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """The headers of every signed webhook call Cible makes."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "Cible-Webhook/1",
        "X-Cible-Timestamp": timestamp,
        "X-Cible-Signature": signature(secret, timestamp, body),
    }


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def webhook_post(
    *,
    url: str,
    secret: str,
    payload: dict,
    max_attempts: int = 3,
    timeout: float = 10,
    extra_headers: dict[str, str] | None = None,
) -> int:
    """POST one signed body; retries with exponential backoff on errors, timeouts, 429 and 5xx.

    Returns the number of attempts. A 4xx other than 429 is not retried: the receiver refused it.
    """
    body = json_body(payload)
    backoff = settings.CIBLE_WEBHOOK_BACKOFF_SECONDS
    last = ""
    for attempt in range(1, max_attempts + 1):
        headers = {**signed_headers(secret, body), **(extra_headers or {})}
        try:
            response = requests.post(url, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            last = type(exc).__name__
        else:
            if 200 <= response.status_code < 300:
                return attempt
            # The receiver's reply is not kept: providers echo the recipient (a phone, a name) in it.
            last = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code != 429:
                raise DeliveryError(f"Refused by the receiver after {attempt} attempt(s): {last}")
        if attempt < max_attempts:
            time.sleep(min(backoff * 2 ** (attempt - 1), 60))
    raise DeliveryError(f"Failed after {max_attempts} attempt(s): {last}")
