"""Automated rules: conditions (AND), guards, every action, notifications and the history."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Campaign, LedgerEntry, Transition
from core.time import local_day
from core.webhooks import signature
from optimisation.models import Rule, RuleEvaluation
from optimisation.rules import conditions_check, rule_check, rule_evaluate, rule_preview, rules_due
from reporting.services import figures_ingest, rollup_run
from tests.factories import make_running_campaign

pytestmark = pytest.mark.django_db


def poor(campaign, *, impressions=10000, clicks=100, spend="200.00", revenue="100.00", days_ago=1, target=None):
    """Yesterday's figures: ROAS 0.5, CTR 1 % by default."""
    figures_ingest(
        rows=[
            {
                "campaign": campaign,
                "target": target,
                "channel": campaign.channels[0],
                "day": local_day(campaign.workspace, timezone.now() - timedelta(days=days_ago)),
                "source": "ads",
                "impressions": impressions,
                "clicks": clicks,
                "conversions": 4,
                "spend": Decimal(spend),
                "revenue": Decimal(revenue),
            }
        ]
    )
    rollup_run(workspace=campaign.workspace)


def make_rule(workspace, campaign=None, **fields):
    fields.setdefault("name", f"rule {Rule.objects.count() + 1}")
    fields.setdefault("conditions", [{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "1"}])
    fields.setdefault("basis", "reported")
    fields.setdefault("action", Rule.Action.PAUSE)
    rule = Rule(workspace=workspace, campaign=campaign, **fields)
    rule_check(rule=rule)
    rule.save()
    return rule


def test_a_rule_pauses_a_campaign_whose_roas_is_poor_and_records_why(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign)
    rule = make_rule(workspace, campaign)
    [evaluation] = rule_evaluate(rule=rule)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert evaluation.outcome == "acted" and evaluation.matched and evaluation.detail == "paused"
    [condition] = evaluation.seen["conditions"]
    assert (condition["kpi"], condition["value"], condition["holds"]) == ("roas", "0.5000", True)
    transition = Transition.objects.get(campaign=campaign, to_status="paused")
    assert transition.source == "rule" and "roas 0.5000 lt 1 over 7 days" in transition.reason
    rule.refresh_from_db()
    assert rule.next_run_at - rule.last_run_at == timedelta(hours=1)


def test_conditions_combine_with_and(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign)  # ROAS 0.5, CTR 0.01
    both = [
        {"kpi": "roas", "days": 7, "operator": "lt", "threshold": "1"},
        {"kpi": "ctr", "days": 3, "operator": "lt", "threshold": "0.005"},
    ]
    [evaluation] = rule_evaluate(rule=make_rule(workspace, campaign, conditions=both))
    assert evaluation.outcome == "not_met" and not evaluation.matched
    assert [c["holds"] for c in evaluation.seen["conditions"]] == [True, False]
    assert Campaign.objects.get(pk=campaign.pk).status == "active"
    both[1]["threshold"] = "0.02"
    [evaluation] = rule_evaluate(rule=make_rule(workspace, campaign, conditions=both))
    assert evaluation.outcome == "acted"


def test_the_guard_waits_for_enough_impressions_or_spend(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign, impressions=400)
    [evaluation] = rule_evaluate(rule=make_rule(workspace, campaign, min_impressions=1000))
    assert evaluation.outcome == "guarded" and not evaluation.matched
    assert evaluation.seen["guard"] == {
        "impressions": 400,
        "spend": "200.00",
        "min_impressions": 1000,
        "min_spend": "0.00",
    }
    [evaluation] = rule_evaluate(rule=make_rule(workspace, campaign, min_spend=Decimal("250")))
    assert evaluation.outcome == "guarded"
    assert Campaign.objects.get(pk=campaign.pk).status == "active"


def test_a_kpi_with_a_zero_denominator_never_holds(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    [evaluation] = rule_evaluate(rule=make_rule(workspace, campaign))  # no spend: ROAS is None
    assert evaluation.outcome == "not_met" and evaluation.seen["conditions"][0]["value"] is None


def test_the_window_only_sees_its_days(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign, days_ago=10)
    rule = make_rule(workspace, campaign, conditions=[{"kpi": "spend", "days": 7, "operator": "gt", "threshold": "0"}])
    assert rule_evaluate(rule=rule)[0].outcome == "not_met"
    rule.conditions = [{"kpi": "spend", "days": 11, "operator": "gt", "threshold": "0"}]
    rule.save()
    assert rule_evaluate(rule=rule)[0].outcome == "acted"


def test_cancel_and_resume(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status="paused")
    [evaluation] = rule_evaluate(
        rule=make_rule(
            workspace,
            campaign,
            action="resume",
            conditions=[{"kpi": "cpm", "days": 7, "operator": "lte", "threshold": "20"}],
        )
    )
    assert evaluation.detail == "resumed" and Campaign.objects.get(pk=campaign.pk).status == "active"
    rule = make_rule(workspace, campaign, action="cancel")
    assert rule_evaluate(rule=rule)[0].detail == "cancelled"
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"
    # nothing more to do: recorded, no error
    assert rule_evaluate(rule=rule)[0].outcome == "no_change"


def test_budget_by_percent_and_by_amount_within_bounds(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",), budget_total=Decimal("1000.00"))
    poor(campaign)  # 200 spent
    cut = make_rule(
        workspace, campaign, action="budget_percent", change_percent=Decimal("-30"), budget_min=Decimal("600")
    )
    assert rule_evaluate(rule=cut)[0].detail == "total budget 1000.00 -> 700.00 EUR"
    assert rule_evaluate(rule=cut)[0].detail == "total budget 700.00 -> 600.00 EUR"  # 490 is under the bound
    assert rule_evaluate(rule=cut)[0].outcome == "no_change"
    raise_daily = make_rule(
        workspace,
        campaign,
        action="budget_amount",
        budget_field="daily",
        change_amount=Decimal("50"),
        budget_max=Decimal("120"),
    )
    [evaluation] = rule_evaluate(rule=raise_daily)
    assert (evaluation.outcome, evaluation.detail) == ("no_change", "nothing to do: no daily budget to change")
    Campaign.objects.filter(pk=campaign.pk).update(budget_daily=Decimal("100.00"))
    assert rule_evaluate(rule=raise_daily)[0].detail == "daily budget 100.00 -> 120.00 EUR"
    changes = LedgerEntry.objects.filter(campaign=campaign, kind__startswith="budget").order_by("id")
    assert [(e.kind, e.amount, e.balance, e.source) for e in changes] == [
        ("budget_total", Decimal("-300.00"), Decimal("700.00"), "rule"),
        ("budget_total", Decimal("-100.00"), Decimal("600.00"), "rule"),
        ("budget_daily", Decimal("20.00"), Decimal("120.00"), "rule"),
    ]


def test_a_budget_cut_never_goes_below_the_spend(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",), budget_total=Decimal("250.00"))
    poor(campaign)
    rule = make_rule(workspace, campaign, action="budget_amount", change_amount=Decimal("-200"))
    assert rule_evaluate(rule=rule)[0].detail == "total budget 250.00 -> 200.00 EUR"


def test_notify_by_signed_webhook_and_by_e_mail(workspace, receiver, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign)
    handler, url = receiver
    rule = make_rule(
        workspace,
        campaign,
        action="notify",
        notify_url=url,
        notify_secret="s3cret",
        notify_email="ops@example.com",
    )
    [evaluation] = rule_evaluate(rule=rule)
    assert evaluation.outcome == "acted" and Campaign.objects.get(pk=campaign.pk).status == "active"
    [(headers, body)] = handler.calls
    assert headers["X-Cible-Signature"] == signature("s3cret", headers["X-Cible-Timestamp"], body)
    payload = json.loads(body)
    assert (payload["campaign"], payload["action"], payload["seen"]["conditions"][0]["value"]) == (
        campaign.pk,
        "notify",
        "0.5000",
    )
    [message] = mail.outbox
    assert message.to == ["ops@example.com"] and rule.name in message.subject
    # Written for a person, in the workspace's language (French by default).
    assert "Résultat : Action menée." in message.body and "sur 7 jours : 0.5000" in message.body
    workspace.language = "en"
    workspace.save(update_fields=["language"])
    rule_evaluate(rule=rule)
    assert "Outcome: Acted." in mail.outbox[-1].body and "over 7 days: 0.5000" in mail.outbox[-1].body


def test_a_failed_notification_is_in_the_history(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign)
    rule = make_rule(workspace, campaign, notify_url="http://127.0.0.1:9/none", notify_secret="x")
    rule_evaluate(rule=rule)
    outcomes = list(RuleEvaluation.objects.filter(rule=rule).order_by("id").values_list("action", "outcome"))
    assert outcomes == [("pause", "acted"), ("notify", "failed")]


def test_a_workspace_rule_covers_its_running_campaigns_only(workspace, other_workspace):
    good = make_running_campaign(workspace=workspace, channels=("display",))
    bad = make_running_campaign(workspace=workspace, channels=("display",))
    done = make_running_campaign(workspace=workspace, channels=("display",))
    foreign = make_running_campaign(workspace=other_workspace, channels=("display",))
    poor(good, revenue="900.00")
    poor(bad)
    poor(foreign)
    Campaign.objects.filter(pk=done.pk).update(status="completed")
    rule = make_rule(workspace)
    outcomes = {e.campaign_id: e.outcome for e in rule_evaluate(rule=rule)}
    assert outcomes == {good.pk: "not_met", bad.pk: "acted"}
    assert Campaign.objects.get(pk=foreign.pk).status == "active"


def test_the_preview_says_what_would_happen_and_changes_nothing(workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",), budget_total=Decimal("1000.00"))
    poor(campaign)
    rule = make_rule(workspace, campaign, action="budget_percent", change_percent=Decimal("-20"))
    [preview] = rule_preview(rule=rule)
    assert preview["would_act"] and preview["plan"] == "total budget 1000.00 -> 800.00 EUR"
    assert not RuleEvaluation.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).budget_total == Decimal("1000.00")


def test_schedules_make_rules_due(workspace, eager_tasks):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    poor(campaign)
    rule = make_rule(workspace, campaign, schedule="30min")
    disabled = make_rule(workspace, campaign, enabled=False)
    assert rules_due() == 1
    rule.refresh_from_db()
    assert rule.next_run_at - rule.last_run_at == timedelta(minutes=30)
    assert RuleEvaluation.objects.filter(rule=rule).count() == 1
    assert not RuleEvaluation.objects.filter(rule=disabled).exists()
    assert rules_due() == 0  # not due again before its time
    assert rules_due(now=timezone.now() + timedelta(minutes=31)) == 1


@pytest.mark.parametrize(
    "conditions, field",
    [
        ([], "conditions"),
        ([{"kpi": "mood", "operator": "lt", "threshold": 1}], "conditions[0].kpi"),
        ([{"kpi": "roas", "operator": "lt", "threshold": 1, "days": 0}], "conditions[0].days"),
        ([{"kpi": "roas", "operator": "below", "threshold": 1}], "conditions[0].operator"),
        ([{"kpi": "roas", "operator": "lt", "threshold": "lots"}], "conditions[0].threshold"),
        ([{"kpi": "roas", "operator": "lt", "threshold": 1, "extra": 2}], "conditions[0]"),
    ],
)
def test_bad_conditions_are_named(conditions, field):
    with pytest.raises(ValidationError) as caught:
        conditions_check(conditions)
    assert field in caught.value.message_dict
