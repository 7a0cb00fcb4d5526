"""The bidder's state in Redis: the key names and encodings that Django (programmatic, which
publishes the state and reads the notices) and the bidder (which reads the state and writes the
notices) share. Plain Python: the bidder imports this module and nothing else of Cible's.

Every key of a workspace carries the hash tag `{w<id>}`, so on Redis Cluster a workspace's keys
live in one slot and a bid request is answered with pipelines that one node serves; workspaces
spread over the nodes. The only key outside a workspace is the directory of bid URLs.

    cible:workspaces                    hash: a workspace's slug -> its id (the bid URL names the slug)
    cible:{w<id>}:state                 JSON: the line items, their creatives, the currency table
    cible:{w<id>}:state:v               the state's version (the bidder reloads when it moves)
    cible:{w<id>}:ok                    set: profile ids that may be targeted on display: a grant in
                                        force for ad targeting, not suppressed, not erased
    cible:{w<id>}:m:<line>:<version>    set: the profile ids a line item targets (its audience,
                                        fine-mode threshold and restrictions applied)
    cible:{w<id>}:val:<model>           hash: profile id -> the person's value (a probability)
    cible:{w<id>}:t:<line>              hash: profile id -> the moment that triggers a retargeting line
                                        item for the person (JSON: from, until, and the product,
                                        HTML-escaped, that its creatives name)
    cible:{w<id>}:id:<kind>:<value>     a profile id, by buyer id (b), hashed e-mail (e), device id (i)
    cible:{w<id>}:sync:<exchange>:<uid> Cible's browser id for an exchange's user id (cookie sync)
    cible:{w<id>}:cap:<line>:<bucket>   hash: profile id -> impressions in a capping window
    cible:{w<id>}:spent:<campaign>[:<day>]        micro-units spent (from billing notices only)
    cible:{w<id>}:bid:<bid id>          JSON: what a bid was (line, campaign, price, currency, rate,
                                        profile, cap seconds, test, time zone)
    cible:{w<id>}:seen:<kind>:<bid id>  a notice already counted (exactly once per bid and kind)
    cible:{w<id>}:stats:<day>           hash: counters of the day (requests, bids, no-bid reasons...)
    cible:{w<id>}:notices               stream: win, billing and loss notices, for the ledger worker
"""

DIRECTORY = "cible:workspaces"
NANOS = 1_000_000_000  # money in the bidder's counters: billionths of the campaign's currency unit (a CPM to 6 decimals is exact)
IDENTITY_KINDS = {"buyer": "b", "email_sha256": "e", "device": "i"}
NOTICE_KINDS = ("win", "bill", "loss")
SEEN_TTL = 7 * 86400  # an exchange retries a notice for hours at most
BID_TTL = 86400  # a notice for a bid older than this is not counted


def tag(workspace_id: int) -> str:
    return f"cible:{{w{int(workspace_id)}}}"


def key(workspace_id: int, *parts: object) -> str:
    return ":".join((tag(workspace_id), *(str(p) for p in parts)))


def state_key(workspace_id: int) -> str:
    return key(workspace_id, "state")


def version_key(workspace_id: int) -> str:
    return key(workspace_id, "state", "v")


def consent_key(workspace_id: int) -> str:
    return key(workspace_id, "ok")


def members_key(workspace_id: int, line: int, version: int) -> str:
    return key(workspace_id, "m", line, version)


def value_key(workspace_id: int, model: int) -> str:
    return key(workspace_id, "val", model)


def trigger_key(workspace_id: int, line: int) -> str:
    return key(workspace_id, "t", line)


def identity_key(workspace_id: int, kind: str, value: str) -> str:
    return key(workspace_id, "id", IDENTITY_KINDS[kind], value)


def sync_key(workspace_id: int, exchange: str, uid: str) -> str:
    return key(workspace_id, "sync", exchange, uid)


def cap_prefix(workspace_id: int, line: int) -> str:
    """A line item's cap hashes, before the window's number (the bidder keeps it per state version)."""
    return key(workspace_id, "cap", line)


def cap_key(workspace_id: int, line: int, bucket: int) -> str:
    return f"{cap_prefix(workspace_id, line)}:{bucket}"


def spent_key(workspace_id: int, campaign: int, day: str | None = None) -> str:
    return key(workspace_id, "spent", campaign, day) if day else key(workspace_id, "spent", campaign)


def bid_key(workspace_id: int, bid_id: str) -> str:
    return key(workspace_id, "bid", bid_id)


def seen_key(workspace_id: int, kind: str, bid_id: str) -> str:
    return key(workspace_id, "seen", kind, bid_id)


def stats_key(workspace_id: int, day: str) -> str:
    return key(workspace_id, "stats", day)


def notices_key(workspace_id: int) -> str:
    return key(workspace_id, "notices")
