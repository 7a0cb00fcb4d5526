"""The bidder's settings, from environment variables (documented in the README):

BIDDER_PORT                 the port bin/bidder listens on (8090)
BIDDER_REDIS_URL            the Redis holding the state (REDIS_URL, else redis://127.0.0.1:6379/0)
BIDDER_PUBLIC_URL           the bidder's address as exchanges reach it, for the notice URLs
                            (http://127.0.0.1:<port>)
BIDDER_NETWORK_MARGIN_MS    taken off tmax for the way back to the exchange (20)
BIDDER_DEFAULT_TMAX_MS      the time limit when a request states none (100)
BIDDER_SEAT                 the seat the bids are made in (cible)
BIDDER_TCF_VENDOR_ID        Cible's vendor id in the IAB's Global Vendor List, when it has one:
                            a TCF string must then grant it consent too
BIDDER_IDENTITY_TTL         seconds a cookie sync is kept (30 days)
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    port: int
    redis_url: str
    public_url: str
    network_margin_ms: int
    default_tmax_ms: int
    seat: str
    tcf_vendor_id: int | None
    identity_ttl: int

    @classmethod
    def from_environment(cls, environ=os.environ) -> "Settings":
        port = int(environ.get("BIDDER_PORT", "8090"))
        vendor = environ.get("BIDDER_TCF_VENDOR_ID", "").strip()
        return cls(
            port=port,
            redis_url=environ.get("BIDDER_REDIS_URL") or environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            public_url=environ.get("BIDDER_PUBLIC_URL", f"http://127.0.0.1:{port}").rstrip("/"),
            network_margin_ms=int(environ.get("BIDDER_NETWORK_MARGIN_MS", "20")),
            default_tmax_ms=int(environ.get("BIDDER_DEFAULT_TMAX_MS", "100")),
            seat=environ.get("BIDDER_SEAT", "cible"),
            tcf_vendor_id=int(vendor) if vendor else None,
            identity_ttl=int(environ.get("BIDDER_IDENTITY_TTL", str(30 * 86400))),
        )
