"""Automated rules: look at a campaign's figures over a window and act when they are poor (or good).

A rule's conditions all hold (AND) or it does nothing; a guard (minimum impressions or spend in
the window) keeps it from judging on too little data. A KPI with a zero denominator is None and
a condition on it does not hold. Every evaluation is recorded, previews included only when asked.
"""

import json
import re
import zoneinfo
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from campaigns.experiments import incremental_figures
from campaigns.models import Campaign
from campaigns.services import budget_change, campaign_resume, campaign_transition
from core.errors import CommonErrorCode
from core.time import local_day
from core.webhooks import signed_headers
from optimisation.errors import OptimisationErrorCode
from optimisation.models import Rule, RuleEvaluation
from reporting.kpis import KPI_NAMES

# A threshold sent as text: a decimal as JSON writes numbers (the schema states the same pattern).
THRESHOLD_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,6})?$"
THRESHOLD_TEXT = re.compile(THRESHOLD_PATTERN)
THRESHOLD_MAX_TEXT = 40

OPERATORS = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
}
# Against the campaign's control group (campaigns.experiments): None without one.
INCREMENTAL = ("uplift", "incremental_conversions", "incremental_revenue", "incremental_roas")
KPIS = (*KPI_NAMES, "frequency", *INCREMENTAL)
SUMS = ("impressions", "clicks", "spend", "conversions", "revenue", "sends", "reach")
INTERVALS = {
    Rule.Schedule.EVERY_30_MINUTES: timedelta(minutes=30),
    Rule.Schedule.HOURLY: timedelta(hours=1),
    Rule.Schedule.DAILY: timedelta(days=1),
}
Status = Campaign.Status


def conditions_check(conditions: Any) -> list[dict]:
    """Validate and normalise a rule's conditions; errors name the condition and the field."""
    if not isinstance(conditions, list) or not conditions:
        raise ValidationError(
            {"conditions": ValidationError(gettext("Give at least one condition."), code=CommonErrorCode.REQUIRED)}
        )
    if len(conditions) > 10:
        raise ValidationError(
            {"conditions": ValidationError(gettext("At most 10 conditions."), code=CommonErrorCode.INVALID)}
        )
    out = []
    for index, condition in enumerate(conditions):
        where = f"conditions[{index}]"
        if not isinstance(condition, dict):
            raise ValidationError(
                {where: ValidationError(gettext("Expected an object."), code=CommonErrorCode.INVALID)}
            )
        unknown = set(condition) - {"kpi", "days", "operator", "threshold"}
        if unknown:
            raise ValidationError(
                {
                    where: ValidationError(
                        gettext("Unknown keys: %(value)s.") % {"value": ", ".join(sorted(unknown))},
                        code=CommonErrorCode.INVALID,
                    )
                }
            )
        kpi = condition.get("kpi")
        if kpi not in KPIS + SUMS:
            raise ValidationError(
                {
                    f"{where}.kpi": ValidationError(
                        gettext("Choose among %(value)s.") % {"value": ", ".join(KPIS + SUMS)},
                        code=CommonErrorCode.INVALID_CHOICE,
                    )
                }
            )
        days = condition.get("days", 7)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
            raise ValidationError(
                {f"{where}.days": ValidationError(gettext("Between 1 and 90 days."), code=CommonErrorCode.INVALID)}
            )
        operator = condition.get("operator")
        if not isinstance(operator, str) or operator not in OPERATORS:
            raise ValidationError(
                {
                    f"{where}.operator": ValidationError(
                        gettext("Choose among %(value)s.") % {"value": ", ".join(OPERATORS)},
                        code=CommonErrorCode.INVALID_CHOICE,
                    )
                }
            )
        raw = condition.get("threshold")
        try:
            written = not isinstance(raw, str) or (len(raw) <= THRESHOLD_MAX_TEXT and THRESHOLD_TEXT.fullmatch(raw))
            threshold = Decimal(str(raw)) if written else None
        except (InvalidOperation, ValueError):
            threshold = None
        if threshold is None or not threshold.is_finite() or isinstance(condition.get("threshold"), bool):
            raise ValidationError(
                {f"{where}.threshold": ValidationError(gettext("Expected a number."), code=CommonErrorCode.INVALID)}
            )
        out.append({"kpi": kpi, "days": days, "operator": operator, "threshold": str(threshold)})
    return out


def rule_check(*, rule: Rule) -> None:
    """Everything a rule needs for its action, checked before it is saved."""
    rule.conditions = conditions_check(rule.conditions)
    errors = {}
    if rule.campaign is not None and rule.campaign.workspace_id != rule.workspace_id:
        errors["campaign"] = ValidationError(
            gettext("Not a campaign of this workspace."), code=CommonErrorCode.DOES_NOT_EXIST
        )
    if rule.action == Rule.Action.BUDGET_PERCENT and rule.change_percent in (None, Decimal(0)):
        errors["change_percent"] = ValidationError(
            gettext("Give the change, e.g. -20."), code=OptimisationErrorCode.CHANGE_REQUIRED
        )
    if rule.action == Rule.Action.BUDGET_AMOUNT and rule.change_amount in (None, Decimal(0)):
        errors["change_amount"] = ValidationError(
            gettext("Give the change, e.g. -500."), code=OptimisationErrorCode.CHANGE_REQUIRED
        )
    if rule.budget_min is not None and rule.budget_max is not None and rule.budget_min > rule.budget_max:
        errors["budget_max"] = ValidationError(
            gettext("The upper bound is below the lower one."), code=CommonErrorCode.INVALID
        )
    if rule.action == Rule.Action.NOTIFY and not (rule.notify_url or rule.notify_email):
        errors["notify_url"] = ValidationError(
            gettext("Give a webhook URL or an e-mail address."), code=OptimisationErrorCode.NOTIFY_TARGET_REQUIRED
        )
    if rule.notify_url and not rule.notify_secret:
        errors["notify_secret"] = ValidationError(
            gettext("A webhook needs a secret to sign with."), code=OptimisationErrorCode.SECRET_REQUIRED
        )
    if errors:
        raise ValidationError(errors)


def window_figures(*, campaign: Campaign, days: int, basis: str, now: datetime) -> dict[str, Any]:
    """A campaign's sums, reach and KPIs over its last `days` days (today included): its report's totals."""
    from reporting.reports import ReportQuery, report_totals

    today = local_day(campaign.workspace, now)
    since = today - timedelta(days=days - 1)
    query = ReportQuery(
        workspace=campaign.workspace, campaigns=[campaign.pk], date_from=since, date_to=today, basis=basis
    )
    totals = report_totals(query=query)
    start = datetime.combine(since, time(), tzinfo=zoneinfo.ZoneInfo(campaign.workspace.time_zone))
    incremental = incremental_figures(campaign=campaign, since=start, now=now)
    revenue = incremental["incremental_revenue"]
    spend = totals.get("spend")
    incremental["incremental_roas"] = (
        None if revenue is None or not spend else (revenue / Decimal(spend)).quantize(Decimal("0.0001"))
    )
    return {"from": since.isoformat(), "to": today.isoformat(), **totals, **incremental}


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def rule_campaigns(*, rule: Rule):
    campaigns = Campaign.objects.filter(workspace_id=rule.workspace_id).select_related("workspace")
    if rule.campaign_id:
        return campaigns.filter(pk=rule.campaign_id)
    return campaigns.running()


def rule_assess(*, rule: Rule, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """What the rule sees on the campaign and whether it would act (no side effect)."""
    windows: dict[int, dict] = {}
    seen = []
    matched = True
    for condition in rule.conditions:
        days = condition["days"]
        if days not in windows:
            windows[days] = window_figures(campaign=campaign, days=days, basis=rule.basis, now=now)
        value = windows[days][condition["kpi"]]
        threshold = Decimal(condition["threshold"])
        holds = value is not None and OPERATORS[condition["operator"]](Decimal(value), threshold)
        matched = matched and holds
        seen.append({**condition, "value": _jsonable(value), "holds": holds})
    longest = windows[max(windows)]
    guard = {
        "impressions": longest["impressions"],
        "spend": str(longest["spend"]),
        "min_impressions": rule.min_impressions,
        "min_spend": str(Decimal(rule.min_spend).quantize(Decimal("0.01"))),
    }
    guarded = longest["impressions"] < rule.min_impressions or longest["spend"] < rule.min_spend
    return {"conditions": seen, "guard": guard, "guarded": guarded, "matched": matched and not guarded}


def _bounded_budget(rule: Rule, campaign: Campaign) -> tuple[Decimal | None, Decimal | None]:
    field = "budget_total" if rule.budget_field == Rule.BudgetField.TOTAL else "budget_daily"
    old = getattr(campaign, field)
    if old is None:
        return None, None
    if rule.action == Rule.Action.BUDGET_PERCENT:
        new = old * (Decimal(100) + (rule.change_percent or Decimal(0))) / Decimal(100)
    else:
        new = old + (rule.change_amount or Decimal(0))
    if rule.budget_min is not None:
        new = max(new, rule.budget_min)
    if rule.budget_max is not None:
        new = min(new, rule.budget_max)
    if field == "budget_total":
        new = max(new, campaign.spent)  # never below what is spent
    return old, max(new, Decimal(0)).quantize(Decimal("0.01"))


def planned_action(*, rule: Rule, campaign: Campaign) -> tuple[bool, str]:
    """(would change something, what): the action as it would apply to the campaign now."""
    action = rule.action
    if action == Rule.Action.PAUSE:
        return campaign.status == Status.ACTIVE, f"pause ({campaign.status} now)"
    if action == Rule.Action.CANCEL:
        return not campaign.is_final, f"cancel ({campaign.status} now)"
    if action == Rule.Action.RESUME:
        return campaign.status == Status.PAUSED, f"resume ({campaign.status} now)"
    if action in (Rule.Action.BUDGET_PERCENT, Rule.Action.BUDGET_AMOUNT):
        old, new = _bounded_budget(rule, campaign)
        if old is None:
            return False, f"no {rule.budget_field} budget to change"
        return (not campaign.is_final and new != old), f"{rule.budget_field} budget {old} -> {new} {campaign.currency}"
    if action == Rule.Action.REALLOCATE:
        from optimisation.reallocation import recommendation

        try:
            plan = recommendation(campaign=campaign, **_reallocation_options(rule))
        except ValidationError as exc:
            return False, "; ".join(exc.messages)
        moves = [f"{t['name']}: {t['share']}% -> {t['new_share']}%" for t in plan["targets"] if t["change"]]
        return (bool(moves) and not campaign.is_final), "reallocate " + (", ".join(moves) or "nothing to move")
    return True, "notify"


def _reallocation_options(rule: Rule) -> dict:
    days = max((c["days"] for c in rule.conditions), default=7)
    return {
        "metric": rule.reallocation_metric or "roas",
        "days": days,
        "min_share": rule.min_share,
        "learning_conversions": rule.learning_conversions,
        "basis": rule.basis,
    }


def rule_preview(*, rule: Rule, now: datetime | None = None) -> list[dict[str, Any]]:
    """What the rule would do now, campaign by campaign; nothing is changed or recorded."""
    now = now or timezone.now()
    out = []
    for campaign in rule_campaigns(rule=rule):
        assessment = rule_assess(rule=rule, campaign=campaign, now=now)
        changes, what = planned_action(rule=rule, campaign=campaign)
        out.append(
            {
                "campaign": campaign.pk,
                "campaign_name": campaign.name,
                **assessment,
                "would_act": assessment["matched"] and changes,
                "action": rule.action,
                "plan": what,
            }
        )
    return out


def _act(rule: Rule, campaign: Campaign, reason: str) -> str:
    action = rule.action
    if action == Rule.Action.PAUSE:
        campaign_transition(campaign=campaign, to=Status.PAUSED, source="rule", reason=reason)
        return "paused"
    if action == Rule.Action.CANCEL:
        campaign_transition(campaign=campaign, to=Status.CANCELLED, source="rule", reason=reason)
        return "cancelled"
    if action == Rule.Action.RESUME:
        campaign_resume(campaign=campaign, source="rule", reason=reason)
        return "resumed"
    if action in (Rule.Action.BUDGET_PERCENT, Rule.Action.BUDGET_AMOUNT):
        old, new = _bounded_budget(rule, campaign)
        key = "total" if rule.budget_field == Rule.BudgetField.TOTAL else "daily"
        budget_change(campaign=campaign, actor=None, reason=reason, source="rule", **{key: new})
        return f"{key} budget {old} -> {new} {campaign.currency}"
    if action == Rule.Action.REALLOCATE:
        from optimisation.reallocation import reallocation_apply

        plan = reallocation_apply(campaign=campaign, source="rule", reason=reason, **_reallocation_options(rule))
        return "shares: " + ", ".join(f"{t['name']} {t['share']}% -> {t['new_share']}%" for t in plan["targets"])
    return "notified"


def notification_text(*, rule: Rule, campaign: Campaign, evaluation: RuleEvaluation) -> tuple[str, str]:
    """The e-mail a rule sends, in the workspace's language: what it saw and what it did."""
    with translation.override(campaign.workspace.language):
        zone = zoneinfo.ZoneInfo(campaign.workspace.time_zone)
        at = evaluation.at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        subject = f"[Cible] {rule.name}: {evaluation.get_outcome_display()}"[:200]
        lines = [
            gettext("The rule “%(rule)s” evaluated the campaign “%(campaign)s” at %(at)s (%(zone)s).")
            % {"rule": rule.name, "campaign": campaign.name, "at": at, "zone": campaign.workspace.time_zone},
            gettext("Outcome: %(outcome)s.") % {"outcome": evaluation.get_outcome_display()},
            gettext("Action: %(action)s.") % {"action": evaluation.get_action_display()},
            gettext("Detail: %(detail)s") % {"detail": evaluation.detail or "-"},
            "",
            gettext("What it saw:"),
        ]
        for condition in (evaluation.seen or {}).get("conditions", []):
            lines.append(
                "- "
                + gettext("%(kpi)s over %(days)s days: %(value)s (condition: %(operator)s %(threshold)s)")
                % {
                    "kpi": condition.get("kpi"),
                    "days": condition.get("days"),
                    "value": condition.get("value", "-"),
                    "operator": condition.get("operator"),
                    "threshold": condition.get("threshold"),
                }
            )
        return subject, "\n".join(lines) + "\n"


def notify(*, rule: Rule, campaign: Campaign, evaluation: RuleEvaluation) -> list[str]:
    """Tell the rule's webhook (signed like deliveries) and e-mail address what it did."""
    payload = {
        "rule": rule.pk,
        "rule_name": rule.name,
        "campaign": campaign.pk,
        "campaign_name": campaign.name,
        "action": evaluation.action,
        "outcome": evaluation.outcome,
        "detail": evaluation.detail,
        "seen": evaluation.seen,
        "at": evaluation.at.isoformat(),
    }
    problems = []
    if rule.notify_url:
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            response = requests.post(
                rule.notify_url, data=body, headers=signed_headers(rule.notify_secret, body), timeout=10
            )
            if not 200 <= response.status_code < 300:
                problems.append(f"webhook answered {response.status_code}")
        except requests.RequestException as exc:
            problems.append(f"webhook: {type(exc).__name__}")
    if rule.notify_email:
        subject, message = notification_text(rule=rule, campaign=campaign, evaluation=evaluation)
        try:
            send_mail(
                subject=subject,
                message=message,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[rule.notify_email],
            )
        except OSError as exc:
            problems.append(f"e-mail: {exc}")
    return problems


def rule_evaluate(*, rule: Rule, source: str = "schedule", now: datetime | None = None) -> list[RuleEvaluation]:
    """Evaluate the rule on each of its campaigns, act where it holds, and record every evaluation."""
    now = now or timezone.now()
    evaluations = []
    for campaign in rule_campaigns(rule=rule):
        assessment = rule_assess(rule=rule, campaign=campaign, now=now)
        seen = {"conditions": assessment["conditions"], "guard": assessment["guard"]}
        changes, what = planned_action(rule=rule, campaign=campaign)
        if assessment["guarded"]:
            outcome, detail = RuleEvaluation.Outcome.GUARDED, "not enough data in the window"
        elif not assessment["matched"]:
            outcome, detail = RuleEvaluation.Outcome.NOT_MET, "conditions not met"
        elif not changes:
            outcome, detail = RuleEvaluation.Outcome.NO_CHANGE, f"nothing to do: {what}"
        else:
            reason = f"rule {rule.name!r}: " + " and ".join(
                f"{c['kpi']} {c['value']} {c['operator']} {c['threshold']} over {c['days']} days"
                for c in assessment["conditions"]
            )
            try:
                detail = _act(rule, campaign, reason)
                outcome = RuleEvaluation.Outcome.ACTED
            except ValidationError as exc:
                outcome, detail = RuleEvaluation.Outcome.FAILED, "; ".join(exc.messages)
        evaluation = RuleEvaluation.objects.create(
            rule=rule,
            campaign=campaign,
            at=now,
            source=source,
            seen=seen,
            matched=assessment["matched"],
            outcome=outcome,
            action=rule.action,
            detail=detail,
        )
        if outcome == RuleEvaluation.Outcome.ACTED and (rule.notify_url or rule.notify_email):
            problems = notify(rule=rule, campaign=campaign, evaluation=evaluation)
            if problems:
                evaluation = RuleEvaluation.objects.create(
                    rule=rule,
                    campaign=campaign,
                    at=timezone.now(),
                    source=source,
                    seen=seen,
                    matched=True,
                    outcome=RuleEvaluation.Outcome.FAILED,
                    action=Rule.Action.NOTIFY,
                    detail="notification failed: " + "; ".join(problems),
                )
        evaluations.append(evaluation)
    Rule.objects.filter(pk=rule.pk).update(last_run_at=now, next_run_at=now + INTERVALS[Rule.Schedule(rule.schedule)])
    return evaluations


def rule_run(*, rule: Rule, source: str) -> list[RuleEvaluation]:
    """Bring the workspace's roll-up up to date, then evaluate the rule on it."""
    from reporting.services import rollup_run

    rollup_run(workspace=rule.workspace)
    return rule_evaluate(rule=rule, source=source)


def rules_due(*, now: datetime | None = None) -> int:
    """Beat: queue the enabled rules whose time has come (a rule never run is due at once)."""
    from optimisation.tasks import rule_evaluate_task

    now = now or timezone.now()
    due = list(
        Rule.objects.filter(enabled=True)
        .filter(Q(next_run_at__isnull=True) | Q(next_run_at__lte=now))
        .values_list("pk", flat=True)
    )
    for rule_id in due:
        # pushed forward at once, so the next beat does not queue it again while it runs
        Rule.objects.filter(pk=rule_id).update(next_run_at=now + timedelta(minutes=29))
        rule_evaluate_task.delay(rule_id=rule_id)
    return len(due)
