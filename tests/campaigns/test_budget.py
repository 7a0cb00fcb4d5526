"""Budgets: caps that hold under concurrent writers, idempotent spend, budget changes, pacing."""

import json
import os
import subprocess
import sys
import zoneinfo
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from campaigns.models import Campaign, LedgerEntry
from campaigns.services import budget_change, spend_allowed_today, spend_record
from tests.factories import make_campaign, make_user, make_workspace

ROOT = Path(__file__).resolve().parents[2]


def active(workspace, **fields) -> Campaign:
    campaign = make_campaign(workspace=workspace, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    campaign.refresh_from_db()
    return campaign


def ledger_sum(campaign) -> Decimal:
    return LedgerEntry.objects.filter(campaign=campaign, kind="spend").aggregate(s=Sum("amount"))["s"] or Decimal(0)


def test_spend_within_the_caps_is_recorded_and_beyond_them_refused(workspace):
    campaign = active(workspace, budget_total="100.00", budget_daily="30.00")
    spend_record(campaign=campaign, amount="20.00", idempotency_key="a")
    with pytest.raises(ValidationError) as error:
        spend_record(campaign=campaign, amount="10.01", idempotency_key="b")
    assert error.value.error_dict["amount"][0].code == "daily_budget_exceeded"
    assert "10.00 EUR left" in error.value.messages[0]
    yesterday = timezone.now() - timedelta(days=1)
    spend_record(campaign=campaign, amount="30.00", idempotency_key="c", occurred_at=yesterday)
    spend_record(campaign=campaign, amount="10.00", idempotency_key="d")
    spend_record(campaign=campaign, amount="30.00", idempotency_key="e", occurred_at=yesterday - timedelta(days=1))
    with pytest.raises(ValidationError) as error:
        spend_record(campaign=campaign, amount="10.01", idempotency_key="f", occurred_at=yesterday - timedelta(days=2))
    assert error.value.error_dict["amount"][0].code == "budget_exceeded"
    campaign.refresh_from_db()
    assert campaign.spent == ledger_sum(campaign) == Decimal("90.00")


def test_a_replayed_notice_counts_once_and_a_reused_key_is_refused(workspace):
    campaign = active(workspace, budget_total="100.00")
    first = spend_record(campaign=campaign, amount="12.34", idempotency_key="notice-1")
    again = spend_record(campaign=campaign, amount="12.34", idempotency_key="notice-1")
    assert (first.created, again.created, again.entry.pk) == (True, False, first.entry.pk)
    with pytest.raises(ValidationError) as error:
        spend_record(campaign=campaign, amount="99.00", idempotency_key="notice-1")
    assert error.value.error_dict["idempotency_key"][0].code == "idempotency_conflict"
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("12.34") and LedgerEntry.objects.filter(kind="spend").count() == 1


@pytest.mark.parametrize("amount", ["0", "-1", "1.001", "abc", "NaN", "Infinity", "1e20"])
def test_bad_amounts_are_refused_by_field(workspace, amount):
    campaign = active(workspace)
    with pytest.raises(ValidationError) as error:
        spend_record(campaign=campaign, amount=amount, idempotency_key="k")
    assert "amount" in error.value.message_dict


@pytest.mark.parametrize("status", ["draft", "scheduled", "paused", "completed", "cancelled"])
def test_only_an_active_campaign_accepts_spend(workspace, status):
    campaign = active(workspace)
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    with pytest.raises(ValidationError) as error:
        spend_record(campaign=campaign, amount="1.00", idempotency_key="k")
    assert error.value.error_dict["non_field_errors"][0].code == "not_active"


def test_budget_changes_are_ledger_entries_with_author_and_reason(workspace):
    campaign = active(workspace, budget_total="100.00")
    spend_record(campaign=campaign, amount="60.00", idempotency_key="s")
    manager = make_user(workspace=workspace, role="manager")
    with pytest.raises(ValidationError) as error:
        budget_change(campaign=campaign, actor=manager, reason="cut", total="50.00")
    assert error.value.error_dict["total"][0].code == "below_spent"
    with pytest.raises(ValidationError):
        budget_change(campaign=campaign, actor=manager, reason="", total="150.00")
    changed = budget_change(campaign=campaign, actor=manager, reason="good ROAS", total="150.00", daily="20.00")
    assert (changed.budget_total, changed.budget_daily) == (Decimal("150.00"), Decimal("20.00"))
    entries = {e.kind: e for e in LedgerEntry.objects.filter(campaign=campaign).exclude(kind="spend")}
    assert (entries["budget_total"].amount, entries["budget_total"].balance) == (Decimal("50.00"), Decimal("150.00"))
    assert (entries["budget_daily"].amount, entries["budget_daily"].author, entries["budget_daily"].reason) == (
        Decimal("20.00"),
        manager,
        "good ROAS",
    )


def test_pacing_gives_the_spend_allowed_today(workspace):
    # Noon yesterday in Paris: the campaign's last day is then exactly 9 days later, whatever the time now.
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    yesterday = timezone.now().astimezone(paris).date() - timedelta(days=1)
    now = datetime.combine(yesterday, time(12), tzinfo=paris)
    even = active(
        workspace,
        budget_total="100.00",
        budget_daily="30.00",
        pacing="even",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=9, hours=1),
    )
    # 100 left over 10 calendar days (today included), under the daily cap of 30.
    allowed = spend_allowed_today(campaign=even, now=now)
    assert allowed == Decimal("10.00")
    spend_record(campaign=even, amount="4.00", idempotency_key="x", occurred_at=now)
    even.refresh_from_db()
    assert spend_allowed_today(campaign=even, now=now) == allowed - Decimal("4.00")
    asap = active(
        workspace, budget_total="100.00", budget_daily="30.00", pacing="asap", starts_at=now - timedelta(days=1)
    )
    assert spend_allowed_today(campaign=asap, now=now) == Decimal("30.00")
    assert spend_allowed_today(campaign=active(workspace, starts_at=now - timedelta(days=1)), now=now) is None


def _writers(env: dict, campaign_id: int, processes: int, threads: int, per_thread: int, amount: str) -> list[dict]:
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.campaigns.spend_writer",
                str(campaign_id),
                f"p{n}",
                str(threads),
                str(per_thread),
                amount,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    results = []
    for process in started:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_writers_on_postgresql_never_pass_the_cap():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    workspace = make_workspace()
    campaign = active(workspace, budget_total="100.00")
    env = {**os.environ, "CIBLE_TEST_DATABASE_NAME": connection.settings_dict["NAME"]}
    # 10 processes x 5 threads = 50 writers, 4 entries of 1.50 each, every one sent twice: 300 EUR asked.
    results = _writers(env, campaign.pk, processes=10, threads=5, per_thread=4, amount="1.50")
    accepted = sum(r["accepted"] for r in results)
    campaign.refresh_from_db()
    assert accepted == 66  # 66 x 1.50 = 99.00; the 67th would pass 100
    assert campaign.spent == ledger_sum(campaign) == Decimal("99.00")
    assert sum(r["replayed"] for r in results) + sum(r["refused"] for r in results) == 400 - accepted


@pytest.mark.slow
def test_concurrent_writers_on_the_embedded_sqlite_never_pass_the_cap(tmp_path):
    """The embedded mode: a SQLite file shared by several processes, each with several threads."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CIBLE_TEST_DATABASE_NAME")}
    env["SQLITE_PATH"] = str(tmp_path / "cible.sqlite3")
    env["DJANGO_SETTINGS_MODULE"] = "config.test_settings"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    setup = (
        "from tests.factories import make_workspace; from tests.campaigns.test_budget import active;"
        "print(active(make_workspace(), budget_total='20.00').pk)"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {setup}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    campaign_id = int(out.strip().splitlines()[-1])
    results = _writers(env, campaign_id, processes=4, threads=3, per_thread=3, amount="1.00")
    check = (
        "from django.db.models import Sum; from campaigns.models import Campaign, LedgerEntry;"
        f"c = Campaign.objects.get(pk={campaign_id});"
        "print(c.spent, LedgerEntry.objects.filter(campaign=c, kind='spend').aggregate(s=Sum('amount'))['s'])"
    )
    totals = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {check}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sum(r["accepted"] for r in results) == 20
    assert [Decimal(t) for t in totals] == [Decimal("20.00"), Decimal("20.00")]
