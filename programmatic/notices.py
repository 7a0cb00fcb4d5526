"""The bidder's notices into the database: bid days and the spend ledger, exactly once.

The bidder appends each counted notice (win, billing, loss) to its workspace's Redis stream. A
worker reads the stream in batches after the last entry it recorded (`NoticeCursor`, under a
row lock, so two workers never read the same entries), adds each batch to the line items' days
(`BidDay`) and moves the cursor in one transaction: a worker killed mid-batch leaves the cursor
where it was, and the batch is read again whole.

Spend reaches the campaigns' ledger from the bid days: for each campaign and day, the billed
nanos rounded down to the cent, less what the ledger already holds from the bidder for that
day, is recorded as one spend entry (`billed`: it happened, caps or not). The ledger thus follows
the billing notices to the cent, never counts one twice, and reports, automated rules and
reallocation see programmatic spend like any other.
"""

import zoneinfo
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum

from accounts.models import Workspace
from campaigns.models import Campaign, CampaignChannel, LedgerEntry, Target
from campaigns.services.budget import spend_record
from programmatic import state as keys
from programmatic.models import BidDay, BidderDay, LineItem, NoticeCursor
from programmatic.publish import NOTICE_SOURCE, client

BATCH = 10_000
CENT = Decimal("0.01")


def notices_consume(*, workspace_id: int, redis_client=None, batches: int = 100) -> dict[str, int]:
    """Read the workspace's new notices (at most `batches` batches) into bid days and the ledger."""
    r = redis_client or client()
    done = {"notices": 0, "ledger_entries": 0}
    if r is None:
        return done
    for _ in range(batches):
        read = _batch(r, workspace_id)
        done["notices"] += read
        if read < BATCH:
            break
    done["ledger_entries"] = ledger_sync(workspace_id=workspace_id)
    stats_sync(workspace_id=workspace_id, redis_client=r)
    return done


def stats_sync(*, workspace_id: int, redis_client, days: int = 2) -> None:
    """The bidder's counters of the last `days` days (requests, bids, no-bid reasons) into the
    database. The counters are totals, so writing them again is harmless."""
    zone = zoneinfo.ZoneInfo(Workspace.objects.get(pk=workspace_id).time_zone)
    today = datetime.now(zone).date()
    lines = set(LineItem.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True))
    for back in range(days):
        day = today - timedelta(days=back)
        raw = redis_client.hgetall(keys.stats_key(workspace_id, day.strftime("%Y%m%d")))
        if not raw:
            continue
        counters = {k.decode(): int(v) for k, v in raw.items()}
        no_bid = {name[len("nobid:") :]: n for name, n in counters.items() if name.startswith("nobid:")}
        bid_requests, late = counters.get("requests_bid", 0), counters.get("late", 0)
        BidderDay.objects.update_or_create(
            workspace_id=workspace_id,
            day=day,
            defaults={
                "requests": bid_requests + late + sum(no_bid.values()),
                "bid_requests": bid_requests,
                "late": late,
                "no_bid": dict(sorted(no_bid.items())),
            },
        )
        for name, n in counters.items():
            line, _, counter = name.partition(":")
            if counter == "bid" and line.isdigit() and int(line) in lines:
                updated = BidDay.objects.filter(workspace_id=workspace_id, line_item_id=int(line), day=day).update(
                    bids=n
                )
                if not updated:
                    BidDay.objects.create(workspace_id=workspace_id, line_item_id=int(line), day=day, bids=n)


def _batch(r, workspace_id: int) -> int:
    with transaction.atomic():
        cursor, _ = NoticeCursor.objects.get_or_create(workspace_id=workspace_id)
        cursor = NoticeCursor.objects.select_for_update().get(pk=cursor.pk)
        entries = r.xrange(keys.notices_key(workspace_id), min=f"({cursor.last_id}", count=BATCH)
        if not entries:
            return 0
        zone = zoneinfo.ZoneInfo(Workspace.objects.get(pk=workspace_id).time_zone)
        counts: dict[tuple[int, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for entry_id, fields in entries:
            kind = fields[b"kind"].decode()
            line = int(fields[b"line"])
            # The day the bidder counted it on (its daily spend counter's), else the entry's moment.
            day = _day(fields.get(b"day", b"")) or (
                datetime.fromtimestamp(int(entry_id.split(b"-")[0]) / 1000, UTC).astimezone(zone).date()
            )
            row = counts[(line, day)]
            if kind == "bill":
                row["impressions"] += 1
                if fields[b"test"] != b"1":
                    row["spend_nanos"] += int(fields[b"nanos"])
            elif kind == "win":
                row["wins"] += 1
            else:
                row["losses"] += 1
        known = set(LineItem.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True))
        for (line, day), row in counts.items():
            if line not in known:
                continue  # a line item deleted since: its notices have nothing left to count on
            updated = BidDay.objects.filter(workspace_id=workspace_id, line_item_id=line, day=day).update(
                **{name: F(name) + value for name, value in row.items()}
            )
            if not updated:
                BidDay.objects.create(workspace_id=workspace_id, line_item_id=line, day=day, **row)
        cursor.last_id = entries[-1][0].decode()
        cursor.save(update_fields=["last_id", "updated_at"])
        return len(entries)


def _day(raw: bytes) -> date | None:
    try:
        return datetime.strptime(raw.decode(), "%Y%m%d").date() if len(raw) == 8 else None
    except ValueError:
        return None


def ledger_sync(*, workspace_id: int) -> int:
    """Record in the ledger the billed spend it does not hold yet, per campaign, target and day."""
    billed = list(
        BidDay.objects.filter(workspace_id=workspace_id)
        .values("line_item__target__campaign_id", "line_item__target_id", "day")
        .annotate(nanos=Sum("spend_nanos"))
    )
    recorded = {
        (row["campaign_id"], row["target_id"], row["day"]): row["amount"]
        for row in LedgerEntry.objects.filter(
            workspace_id=workspace_id, kind=LedgerEntry.Kind.SPEND, source=NOTICE_SOURCE
        )
        .values("campaign_id", "target_id", "day")
        .annotate(amount=Sum("amount"))
    }
    campaigns = Campaign.objects.in_bulk({row["line_item__target__campaign_id"] for row in billed})
    targets = Target.objects.in_bulk({row["line_item__target_id"] for row in billed})
    entries = 0
    for row in billed:
        campaign_id, target_id, day = row["line_item__target__campaign_id"], row["line_item__target_id"], row["day"]
        total = (Decimal(row["nanos"]) / keys.NANOS).quantize(CENT, rounding="ROUND_DOWN")
        missing = total - recorded.get((campaign_id, target_id, day), Decimal(0))
        if missing <= 0:
            continue
        spend_record(
            campaign=campaigns[campaign_id],
            target=targets[target_id],
            amount=missing,
            # The key names the total it brings the day to: the same total twice is the same entry.
            idempotency_key=f"rtb:{target_id}:{day.isoformat()}:{total}",
            source=NOTICE_SOURCE,
            channel=CampaignChannel.DISPLAY,
            day=day,
            billed=True,
        )
        entries += 1
    return entries
