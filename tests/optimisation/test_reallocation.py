"""Budget reallocation: the arithmetic, the recommendation's figures, and ledger entries on apply."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import LedgerEntry, Target
from core.time import local_day
from optimisation.models import Rule
from optimisation.reallocation import TargetFigures, allocate, reallocation_apply, recommendation
from optimisation.rules import rule_evaluate
from reporting.services import figures_ingest, rollup_run
from tests.factories import make_running_campaign

pytestmark = pytest.mark.django_db


def figures(*rows):
    out = []
    for pk, share, spend, conversions, revenue in rows:
        target = Target(pk=pk)
        out.append(TargetFigures(target, Decimal(share), Decimal(spend), conversions, Decimal(revenue)))
    return out


def test_shares_follow_roas_with_a_minimum_share():
    new = allocate(
        figures((1, "33.34", 100, 10, 400), (2, "33.33", 100, 10, 200), (3, "33.33", 100, 10, 0)),
        metric="roas",
        min_share=Decimal(10),
        learning_conversions=5,
    )
    # ROAS 4 : 2 : 0 -> the third is held at 10 %, the other 90 % split 2:1
    assert new == {1: Decimal("60.00"), 2: Decimal("30.00"), 3: Decimal("10.00")}


def test_cpa_rewards_the_cheapest_conversions():
    new = allocate(
        figures((1, "50", 100, 20, 0), (2, "50", 100, 5, 0)),  # CPA 5 and 20
        metric="cpa",
        min_share=Decimal(0),
        learning_conversions=5,
    )
    assert new == {1: Decimal("80.00"), 2: Decimal("20.00")}


def test_learning_targets_keep_their_share():
    new = allocate(
        figures((1, "40", 100, 10, 300), (2, "40", 100, 10, 100), (3, "20", 30, 2, 500)),
        metric="roas",
        min_share=Decimal(5),
        learning_conversions=5,
    )
    # the third has 2 conversions: learning, 20 % kept; the first two share 80 % as 3:1
    assert new == {1: Decimal("60.00"), 2: Decimal("20.00"), 3: Decimal("20")}


def test_rounding_keeps_the_total():
    new = allocate(
        figures((1, "33.34", 10, 10, 10), (2, "33.33", 10, 10, 10), (3, "33.33", 10, 10, 10.01)),
        metric="roas",
        min_share=Decimal(1),
        learning_conversions=1,
    )
    assert sum(new.values()) == Decimal("100.00")
    assert new[3] == max(new.values())


def test_a_minimum_share_too_high_for_everyone_splits_evenly():
    new = allocate(
        figures((1, "50", 10, 10, 100), (2, "50", 10, 10, 1)),
        metric="roas",
        min_share=Decimal(60),
        learning_conversions=1,
    )
    assert new == {1: Decimal("50.00"), 2: Decimal("50.00")}


@pytest.fixture
def three_targets(workspace):
    campaign = make_running_campaign(
        workspace=workspace, targets=3, channels=("social",), budget_total=Decimal("10000.00")
    )
    a, b, c = campaign.targets.order_by("id")
    day = local_day(workspace, timezone.now() - timedelta(days=1))
    rows = []
    for target, spend, conversions, revenue in ((a, 300, 12, 1200), (b, 300, 9, 600), (c, 100, 1, 900)):
        rows.append(
            {
                "campaign": campaign,
                "target": target,
                "channel": "social",
                "day": day,
                "source": "meta",
                "impressions": 10000,
                "clicks": 200,
                "conversions": conversions,
                "spend": Decimal(spend),
                "revenue": Decimal(revenue),
            }
        )
    figures_ingest(rows=rows)
    rollup_run(workspace=workspace)
    return campaign, a, b, c


def test_the_recommendation_shows_its_figures(three_targets):
    campaign, a, b, c = three_targets
    plan = recommendation(campaign=campaign, basis="reported", min_share=Decimal(10))
    rows = {row["target"]: row for row in plan["targets"]}
    assert rows[a.pk]["roas"] == Decimal("4.0000") and rows[b.pk]["roas"] == Decimal("2.0000")
    assert rows[c.pk]["learning"] is True  # one conversion
    assert (rows[a.pk]["share"], rows[b.pk]["share"], rows[c.pk]["share"]) == (
        Decimal("33.34"),
        Decimal("33.33"),
        Decimal("33.33"),
    )
    # a and b share 66.67 % as 2:1
    assert (rows[a.pk]["new_share"], rows[b.pk]["new_share"], rows[c.pk]["new_share"]) == (
        Decimal("44.45"),
        Decimal("22.22"),
        Decimal("33.33"),
    )
    assert plan["moves"] == 2


def test_applying_moves_the_shares_with_a_ledger_entry_each(three_targets, workspace):
    campaign, a, b, c = three_targets
    reallocation_apply(campaign=campaign, basis="reported", reason="weekly review")
    assert [t.budget_share for t in campaign.targets.order_by("id")] == [
        Decimal("44.45"),
        Decimal("22.22"),
        Decimal("33.33"),
    ]
    moves = LedgerEntry.objects.filter(campaign=campaign, kind="budget_share").order_by("target_id")
    assert [(m.target_id, m.amount, m.balance) for m in moves] == [
        (a.pk, Decimal("1111.00"), Decimal("4445.00")),
        (b.pk, Decimal("-1111.00"), Decimal("2222.00")),
    ]
    assert "33.34% -> 44.45%" in moves[0].reason and "weekly review" in moves[0].reason
    # applied again: nothing moves
    reallocation_apply(campaign=campaign, basis="reported")
    assert LedgerEntry.objects.filter(campaign=campaign, kind="budget_share").count() == 2


def test_a_rule_can_reallocate(three_targets, workspace):
    campaign, *_ = three_targets
    rule = Rule.objects.create(
        workspace=workspace,
        campaign=campaign,
        name="move to ROAS",
        basis="reported",
        action="reallocate",
        conditions=[{"kpi": "spend", "days": 7, "operator": "gte", "threshold": "500"}],
    )
    [evaluation] = rule_evaluate(rule=rule)
    assert evaluation.outcome == "acted" and evaluation.detail.startswith("shares:")
    assert LedgerEntry.objects.filter(campaign=campaign, kind="budget_share", source="rule").count() == 2


def test_reallocation_needs_two_targets(workspace):
    campaign = make_running_campaign(workspace=workspace)
    with pytest.raises(ValidationError) as caught:
        recommendation(campaign=campaign)
    assert caught.value.message_dict["non_field_errors"] == ["Reallocation needs a campaign with two targets or more."]
