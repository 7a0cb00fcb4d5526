"""The lean read path of campaigns (core.lean): the campaign list and a campaign, with their targets."""

import functools
import operator

from campaigns.api import serializers as s
from campaigns.models import Campaign, Target
from campaigns.services import spend_allowed_today
from core.lean import Plan


@functools.cache
def _campaign_plan() -> Plan:
    # Made here for each campaign, and handed to the plan with its row.
    computed = {name: operator.itemgetter(name) for name in ("targets", "spend_allowed_today")}
    return Plan(s.CampaignOutput, computed=computed)


@functools.cache
def _target_plan() -> Plan:
    return Plan(s.TargetIO)


def campaign_answers(campaigns: list[Campaign]) -> list[dict]:
    """CampaignOutput's answers for these campaigns (read with `with_spent_today`, without their
    targets, which come here in one query as values)."""
    plan, target_plan = _campaign_plan(), _target_plan()
    targets: dict[int, list[dict]] = {campaign.pk: [] for campaign in campaigns}
    rows = (
        Target.objects.filter(campaign_id__in=list(targets)).order_by("id").values("campaign_id", *target_plan.columns)
    )
    for row in rows:
        targets[row["campaign_id"]].append(target_plan.row(row))
    answers = []
    for campaign in campaigns:
        allowed = spend_allowed_today(campaign=campaign)
        made = {"targets": targets[campaign.pk], "spend_allowed_today": None if allowed is None else str(allowed)}
        answers.append(plan.row({**campaign.__dict__, **made}))
    return answers
