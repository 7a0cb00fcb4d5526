"""Cible's bidder: an ASGI application answering OpenRTB 2.6 bid requests from the state Django
publishes to Redis (programmatic.state), without Django and without SQL.

    POST /openrtb2/<workspace slug>[?exchange=<name>]   a bid request: 200 with a bid, 204 no bid,
                                                        400 (empty body) when malformed
    GET  /notice/<workspace slug>/<win|bill|loss>/<bid id>?price=${AUCTION_PRICE}[&reason=${AUCTION_LOSS}]
                                                        an exchange's notice: 204, counted once per
                                                        bid and kind; 400 when its price is not a
                                                        price or above the bid; 404 for an unknown bid
    GET  /sync/<workspace slug>?exchange=<name>&uid=<exchange's user id>
                                                        cookie sync: Cible's browser id (cookie
                                                        `cible_uid`, set when missing) recorded for
                                                        the exchange's id; a 1x1 GIF
    GET  /health                                        200 when Redis answers

Each bid request costs two pipelined Redis round trips at most (the state's version and the
person's identifiers, then consent, membership, caps, values and spend), plus one write (the
bid, the day's counters) when it bids. Past `tmax` minus BIDDER_NETWORK_MARGIN_MS, the answer
is a 204 whatever was found.
"""

import functools
import secrets
import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote

import hiredis
import orjson
import redis.asyncio as redis

from bidder import config, decide, openrtb, tcf
from programmatic import state as keys

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NOTICE_SCRIPT = """
-- KEYS: seen, spent, spent of the day, cap, stats, notices
-- ARGV: kind, nanos, line, campaign, profile, reason, bid id, cap seconds, test, price, currency,
--       seconds a counted notice is remembered, the day (of the workspace's calendar) it counts on
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[12]) then return 0 end
local line = ARGV[3]
if ARGV[1] == 'bill' then
  if ARGV[9] ~= '1' then
    redis.call('INCRBY', KEYS[2], ARGV[2])
    redis.call('INCRBY', KEYS[3], ARGV[2])
    redis.call('EXPIRE', KEYS[3], 259200)
    redis.call('HINCRBY', KEYS[5], line .. ':spend', ARGV[2])
  end
  redis.call('HINCRBY', KEYS[5], line .. ':imp', 1)
  if ARGV[8] ~= '0' and ARGV[5] ~= '' then
    redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
    redis.call('EXPIRE', KEYS[4], ARGV[8])
  end
elseif ARGV[1] == 'win' then
  redis.call('HINCRBY', KEYS[5], line .. ':win', 1)
else
  redis.call('HINCRBY', KEYS[5], line .. ':loss', 1)
  redis.call('HINCRBY', KEYS[5], 'loss:' .. ARGV[6], 1)
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', 1000000, '*', 'kind', ARGV[1], 'bid', ARGV[7], 'line', line,
  'campaign', ARGV[4], 'profile', ARGV[5], 'price', ARGV[10], 'currency', ARGV[11], 'nanos', ARGV[2],
  'reason', ARGV[6], 'test', ARGV[9], 'day', ARGV[13])
return 1
"""

ANSWER_SCRIPT = """
-- KEYS: the state's version, identity keys, [the cookie sync key], the consent set, then the
--       member sets, cap hashes, value and trigger hashes and spend counters of the fitting
--       line items
-- ARGV: the version the caller holds, number of identity keys, 1 with a sync key, then the
--       numbers of member sets, cap hashes, value and trigger hashes (the rest are spend counters)
-- Returns: version, profile id ('' unknown), synced browser id (''), consent (1/0), then one
-- answer per remaining key (1/0 for sets, the value or '' for the others). Only the version
-- when it is not the caller's.
local version = redis.call('GET', KEYS[1]) or ''
if version ~= ARGV[1] then return {version} end
local ids, syncs = tonumber(ARGV[2]), tonumber(ARGV[3])
local members, caps, values = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local p = ''
for i = 2, 1 + ids do
  if p == '' then p = redis.call('GET', KEYS[i]) or '' end
end
local at = 2 + ids
local synced = ''
if syncs == 1 then
  synced = redis.call('GET', KEYS[at]) or ''
  at = at + 1
end
local out = {version, p, synced, 0}
if p ~= '' then out[4] = redis.call('SISMEMBER', KEYS[at], p) end
at = at + 1
local first = at
for i = first, #KEYS do
  local k = i - first
  if p == '' and k < members + caps + values then
    out[#out + 1] = ''
  elseif k < members then
    out[#out + 1] = redis.call('SISMEMBER', KEYS[i], p)
  elseif k < members + caps + values then
    out[#out + 1] = redis.call('HGET', KEYS[i], p) or ''
  else
    out[#out + 1] = redis.call('GET', KEYS[i]) or ''
  end
end
return out
"""


class _Reads:
    """The keys the answer script reads for the fitting line items, and what their answers say.
    Without any identifier in the request, nothing is read of the person (only the budgets)."""

    def __init__(self, workspace: int, fitting: list[dict], now: float, day: str, person: bool = True):
        mine = fitting if person else []
        self.members = [line for line in mine if line.get("members") is not None]
        self.caps = [(line, int(now // line["cap"]["seconds"])) for line in mine if line.get("cap")]
        self.models = sorted({line["value_model"] for line in mine if line.get("value_model") is not None})
        self.triggers = [line for line in mine if line.get("trigger")]
        self.campaigns = sorted({line["campaign"] for line in fitting})
        self.keys = [
            *(_cached(line, "_mkey", keys.members_key, workspace, line["id"], line["members"]["version"])
              for line in self.members),
            *(f"{_cached(line, '_ckey', keys.cap_prefix, workspace, line['id'])}:{bucket}" for line, bucket in self.caps),
            *(keys.value_key(workspace, model) for model in self.models),
            *(_cached(line, "_tkey", keys.trigger_key, workspace, line["id"]) for line in self.triggers),
            *(_spent_key(workspace, c, None) for c in self.campaigns),
            *(_spent_key(workspace, c, day) for c in self.campaigns),
        ]  # fmt: skip
        # The script reads the value and trigger hashes alike (HGET of the person).
        self.counts = [len(self.members), len(self.caps), len(self.models) + len(self.triggers)]

    def read(self, answers: list, person: decide.Person, budgets: decide.Budgets) -> None:
        at = 0
        for line in self.members:
            person.members[line["id"]] = answers[at] == 1
            at += 1
        for line, _ in self.caps:
            person.caps[line["id"]] = int(answers[at] or 0)
            at += 1
        for model in self.models:
            person.values[model] = float(answers[at]) if answers[at] else None
            at += 1
        for line in self.triggers:
            if answers[at]:
                person.moments[line["id"]] = orjson.loads(answers[at])
            at += 1
        for campaign in self.campaigns:
            budgets.spent[campaign] = int(answers[at] or 0)
            at += 1
        for campaign in self.campaigns:
            budgets.spent_today[campaign] = int(answers[at] or 0)
            at += 1


class _PackedConnection(redis.Connection):
    """redis-py's asyncio connection, its commands packed by hiredis (C) rather than in Python: a
    bid request's script call carries some sixty keys and arguments."""

    def pack_command(self, *args):
        if isinstance(args[0], str) and " " in args[0]:  # 'SCRIPT LOAD': separate arguments
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


class Bidder:
    """The application. `clock` gives the time in seconds since the epoch: the wall clock, or an
    exchange simulator's (bench/exchange.py plays a day in minutes)."""

    def __init__(self, settings: config.Settings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self.redis = redis.from_url(
            settings.redis_url, decode_responses=False, max_connections=256, connection_class=_PackedConnection
        )
        self.states: dict[int, tuple[int, dict]] = {}  # workspace -> (version, state)
        self.directory: dict[str, tuple[float, int | None]] = {}  # slug -> (read at, workspace id)
        self.notice_script = self.redis.register_script(NOTICE_SCRIPT)
        self.answer_script = self.redis.register_script(ANSWER_SCRIPT)
        self.zones: dict[str, zoneinfo.ZoneInfo] = {}

    # --- the ASGI interface ----------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        parts = [p for p in path.split("/") if p]
        try:
            if parts[:1] == ["openrtb2"] and len(parts) == 2:
                if method != "POST":
                    await _answer(send, 405)
                    return
                body = await _body(receive, openrtb.MAX_BODY)
                status, payload = await self.bid(parts[1], body, scope, started)
                await _answer(send, status, payload, b"application/json" if payload else None)
            elif parts[:1] == ["notice"] and len(parts) == 4 and method == "GET":
                status = await self.notice(parts[1], parts[2], parts[3], _query(scope))
                await _answer(send, status)
            elif parts[:1] == ["sync"] and len(parts) == 2 and method == "GET":
                await self.sync(parts[1], scope, send)
            elif parts == ["health"]:
                await self.redis.ping()
                await _answer(send, 200, b'{"status":"ok"}', b"application/json")
            else:
                await _answer(send, 404)
        except _TooLarge:
            await _answer(send, 413)
        except redis.RedisError:
            # Without the state there is nothing to bid with: no bid, and no error an exchange
            # would count against the bidder's health.
            await _answer(send, 204 if parts[:1] == ["openrtb2"] else 503)

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- bids -------------------------------------------------------------------------------------

    async def workspace(self, slug: str) -> int | None:
        cached = self.directory.get(slug)
        now = time.monotonic()
        if cached and now - cached[0] < 5:
            return cached[1]
        raw = await self.redis.hget(keys.DIRECTORY, slug)
        found = int(raw) if raw else None
        self.directory[slug] = (now, found)
        return found

    async def bid(self, slug: str, body: bytes, scope, started: float, again: bool = True) -> tuple[int, bytes]:
        workspace = await self.workspace(slug)
        if workspace is None:
            return 404, b""
        try:
            request = openrtb.parse(orjson.loads(body))
        except (orjson.JSONDecodeError, openrtb.Malformed):
            return 400, b""
        budget_ms = (request.tmax or self.settings.default_tmax_ms) - self.settings.network_margin_ms
        deadline = started + budget_ms / 1000
        exchange = _query(scope).get("exchange", "")[:64]
        # One round trip: the state's version, who the person is, and for the line items the
        # request's context leaves (schedule, inventory, sizes, area) consent, membership, caps,
        # values and spend, in one script call. When the state moved meanwhile, once more.
        identities = []
        if request.buyeruid:
            identities.append(keys.identity_key(workspace, "buyer", request.buyeruid))
        for hashed in request.hashed_emails:
            identities.append(keys.identity_key(workspace, "email_sha256", hashed))
        if request.ifa:
            identities.append(keys.identity_key(workspace, "device", request.ifa))
        sync = keys.sync_key(workspace, exchange, request.user_id) if exchange and request.user_id else None
        cached = self.states.get(workspace)
        if cached is None:
            raw_version = await self.redis.get(keys.version_key(workspace))
            if raw_version is None and again:
                # No state for the workspace the slug named a moment ago: read the directory again.
                self.directory.pop(slug, None)
                return await self.bid(slug, body, scope, started, again=False)
            cached = (int(raw_version or 0), await self.state(workspace, int(raw_version or 0)))
        for _ in range(3):
            version, state = cached
            zone = self.zone(state.get("time_zone", "UTC"))
            now = self.clock()
            local = datetime.fromtimestamp(now, zone)
            weekday = local.weekday()
            day = local.strftime("%Y%m%d")
            lines = state.get("lines", [])
            fitting = decide.fitting_lines(state, request, now, local.hour, weekday)
            reads = _Reads(workspace, fitting, now, day, person=bool(identities or sync))
            answers = await self.answer_script(
                keys=[
                    keys.version_key(workspace),
                    *identities,
                    *([sync] if sync else []),
                    keys.consent_key(workspace),
                    *reads.keys,
                ],
                args=[version, len(identities), 1 if sync else 0, *reads.counts],
            )
            current = int(answers[0] or 0)
            if current == version:
                break
            if not answers[0] and again:
                self.directory.pop(slug, None)
                return await self.bid(slug, body, scope, started, again=False)
            cached = (current, await self.state(workspace, current))
        if len(answers) < 4:  # no state to bid with (none published, or it keeps moving)
            return 204, b""
        profile = int(answers[1]) if answers[1] else None
        if profile is None and answers[2]:
            # Known through cookie sync: Cible's browser id for the exchange's user, then its person.
            synced = _text(answers[2])
            answers = await self.answer_script(
                keys=[
                    keys.version_key(workspace),
                    keys.identity_key(workspace, "buyer", synced),
                    keys.consent_key(workspace),
                    *reads.keys,
                ],
                args=[version, 1, 0, *reads.counts],
            )
            profile = int(answers[1]) if answers[1] else None
        stats = keys.stats_key(workspace, day)
        if not lines:
            await self._count(stats, "nobid:no_line")
            return 204, b""
        person = decide.Person(profile, answers[3] == 1, True, {}, {}, {})
        if request.gdpr and profile is not None:
            person.tcf_ok = _tcf_allows(request.consent, self.settings.tcf_vendor_id)
        budgets = decide.Budgets({}, {})
        reads.read(answers[4:], person, budgets)
        day_fraction = (local.hour * 3600 + local.minute * 60 + local.second) / 86400
        currency = state.get("currency", "EUR")
        if currency not in request.currencies:
            currency = request.currencies[0]
        bids, reasons = [], []
        for imp in request.imps:
            choice, reason = decide.choose(
                state=state,
                lines=fitting or lines,
                in_context=bool(fitting),
                imp=imp,
                request=request,
                person=person,
                budgets=budgets,
                now=now,
                local_hour=local.hour,
                local_weekday=weekday,
                day_fraction=day_fraction,
                currency=currency,
            )
            if choice is None:
                reasons.append(reason)
            else:
                bids.append((imp, choice))
        if time.perf_counter() > deadline:
            await self._count(stats, "late")
            return 204, b""
        if not bids:
            await self._count(stats, f"nobid:{reasons[0] if reasons else 'no_line'}")
            return 204, b""
        pipe = self.redis.pipeline(transaction=False)
        seatbid = []
        for imp, choice in bids:
            bid_id = secrets.token_hex(12)
            line, creative = choice.line, choice.creative
            rate = decide.convert(1.0, currency, line["currency"], state.get("rates", {})) or 1.0
            record = {
                "line": line["id"],
                "campaign": line["campaign"],
                "price": repr(choice.price),
                "currency": currency,
                "rate": repr(rate),
                "profile": "" if profile is None else profile,
                "cap": line["cap"]["seconds"] if line.get("cap") else 0,
                "test": 1 if request.test else 0,
                "zone": state.get("time_zone", "UTC"),
            }
            pipe.set(keys.bid_key(workspace, bid_id), orjson.dumps(record), ex=keys.BID_TTL)
            pipe.hincrby(stats, f"{line['id']}:bid", 1)
            notice = f"{self.settings.public_url}/notice/{quote(slug)}"
            seatbid.append(
                {
                    "id": bid_id,
                    "impid": imp.id,
                    "price": choice.price,
                    "adm": choice.markup,
                    "nurl": f"{notice}/win/{bid_id}?price=${{AUCTION_PRICE}}",
                    "burl": f"{notice}/bill/{bid_id}?price=${{AUCTION_PRICE}}",
                    "lurl": f"{notice}/loss/{bid_id}?price=${{AUCTION_PRICE}}&reason=${{AUCTION_LOSS}}",
                    "adomain": creative.get("adomain", []),
                    "crid": str(creative["id"]),
                    "cid": str(line["campaign"]),
                    "w": creative["w"],
                    "h": creative["h"],
                    "mtype": 1,
                }
            )
        pipe.hincrby(stats, "requests_bid", 1)
        await pipe.execute()
        response = {"id": request.id, "cur": currency, "seatbid": [{"seat": self.settings.seat, "bid": seatbid}]}
        return 200, orjson.dumps(response)

    async def _count(self, stats: str, counter: str) -> None:
        await self.redis.hincrby(stats, counter, 1)

    async def state(self, workspace: int, version: int) -> dict:
        cached = self.states.get(workspace)
        if cached and cached[0] == version:
            return cached[1]
        raw = await self.redis.get(keys.state_key(workspace))
        state = decide.compile_state(orjson.loads(raw)) if raw else {}
        self.states[workspace] = (version, state)
        return state

    def zone(self, name: str) -> zoneinfo.ZoneInfo:
        if name not in self.zones:
            try:
                self.zones[name] = zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.zones[name] = zoneinfo.ZoneInfo("UTC")
        return self.zones[name]

    # --- notices and cookie sync ------------------------------------------------------------------

    async def notice(self, slug: str, kind: str, bid_id: str, query: dict[str, str]) -> int:
        if kind not in keys.NOTICE_KINDS or not (0 < len(bid_id) <= 64 and bid_id.isalnum()):
            return 404
        workspace = await self.workspace(slug)
        if workspace is None:
            return 404
        raw = await self.redis.get(keys.bid_key(workspace, bid_id))
        if not raw:
            return 404
        fields = {k: str(v) for k, v in orjson.loads(raw).items()}
        try:
            price = Decimal(query.get("price", ""))
        except InvalidOperation:
            price = Decimal(-1)
        if not price.is_finite() or price < 0 or price > Decimal(fields["price"]):
            if kind != "loss":
                return 400
            price = Decimal(0)  # a loss notice's price is informative only
        # Spend: one impression at the clearing CPM, in nanos of the campaign's currency.
        nanos = int(price * 1_000_000 * Decimal(fields["rate"])) if kind == "bill" else 0
        line, profile = fields["line"], fields["profile"]
        cap_seconds = int(fields["cap"])
        now = self.clock()
        bucket = int(now // cap_seconds) if cap_seconds else 0
        day = datetime.fromtimestamp(now, self.zone(fields.get("zone", "UTC"))).strftime("%Y%m%d")
        counted = await self.notice_script(
            keys=[
                keys.seen_key(workspace, kind, bid_id),
                keys.spent_key(workspace, int(fields["campaign"])),
                keys.spent_key(workspace, int(fields["campaign"]), day),
                keys.cap_key(workspace, int(line), bucket),
                keys.stats_key(workspace, day),
                keys.notices_key(workspace),
            ],
            args=[
                kind,
                nanos,
                line,
                fields["campaign"],
                profile,
                query.get("reason", "")[:8] if kind == "loss" else "",
                bid_id,
                cap_seconds,
                fields["test"],
                str(price),
                fields["currency"],
                keys.SEEN_TTL,
                day,
            ],
        )
        return 204 if counted in (0, 1) else 500

    async def sync(self, slug: str, scope, send) -> None:
        query = _query(scope)
        exchange, uid = query.get("exchange", ""), query.get("uid", "")
        workspace = await self.workspace(slug)
        if workspace is None or not (0 < len(exchange) <= 64 and 0 < len(uid) <= 256):
            await _answer(send, 400)
            return
        cookie = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookie.load(value.decode("latin-1"))
        ours = cookie["cible_uid"].value if "cible_uid" in cookie else ""
        headers = [(b"content-type", b"image/gif"), (b"cache-control", b"no-store")]
        if not (0 < len(ours) <= 64 and ours.isalnum()):
            ours = secrets.token_hex(16)
            headers.append(
                (
                    b"set-cookie",
                    f"cible_uid={ours}; Max-Age=31536000; Path=/; Secure; HttpOnly; SameSite=None".encode(),
                )
            )
        await self.redis.set(keys.sync_key(workspace, exchange, uid), ours, ex=self.settings.identity_ttl)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": GIF})


@functools.lru_cache(maxsize=8192)
def _spent_key(workspace: int, campaign: int, day: str | None) -> str:
    return keys.spent_key(workspace, campaign, day)


def _cached(line: dict, name: str, make, *parts) -> str:
    """A key of the line item's, made once per state version (the compiled line keeps it)."""
    found = line.get(name)
    if found is None:
        found = line[name] = make(*parts)
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _tcf_allows(consent: str, vendor: int | None) -> bool:
    try:
        return tcf.decode(consent).allows(purposes=tcf.PERSONALISED_ADS, vendor=vendor)
    except tcf.TcfError:
        return False


def _query(scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


class _TooLarge(Exception):
    pass


async def _body(receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send, status: int, body: bytes = b"", content_type: bytes | None = None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type))
    if status in (200, 204):
        headers.append((b"x-openrtb-version", b"2.6"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = Bidder(config.Settings.from_environment())
