"""The lean read path of campaigns (core.lean): the campaign list and a campaign, with their targets."""

import functools

from campaigns.api import serializers as s
from campaigns.models import Campaign, Target
from campaigns.services import spend_allowed_today
from core.lean import Plan


def _filled_below(row: object) -> None:
    return None  # its place in the answer; the value is set by campaign_answers


@functools.cache
def _campaign_plan() -> Plan:
    return Plan(s.CampaignOutput, computed={"targets": _filled_below, "spend_allowed_today": _filled_below})


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
        answer = plan.row(campaign.__dict__)
        answer["targets"] = targets[campaign.pk]
        allowed = spend_allowed_today(campaign=campaign)
        answer["spend_allowed_today"] = None if allowed is None else str(allowed)
        answers.append(answer)
    return answers
