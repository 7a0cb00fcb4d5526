"""The campaign dashboard: reporting's figures, with the reallocation plan and the rules that act on them."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from campaigns.models import Campaign
from optimisation.models import Rule, RuleEvaluation
from optimisation.reallocation import recommendation
from reporting import dashboards


def campaign_dashboard(*, campaign: Campaign, basis: str = "attributed", metric: str = "roas") -> dict[str, Any]:
    try:
        plan = recommendation(campaign=campaign, basis=basis, metric=metric)
        plan_error = ""
    except ValidationError as exc:
        plan, plan_error = None, "; ".join(exc.messages)
    rules = Rule.objects.filter(Q(campaign=campaign) | Q(campaign__isnull=True), workspace=campaign.workspace)
    return {
        **dashboards.campaign_dashboard(campaign=campaign, basis=basis),
        "plan": plan,
        "plan_error": plan_error,
        "rules": rules.order_by("name"),
        "evaluations": RuleEvaluation.objects.filter(campaign=campaign).select_related("rule")[:20],
    }
