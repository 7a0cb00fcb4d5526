"""Campaigns and their targets: creation, edits and the checks before a campaign may run."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from accounts.models import Workspace
from campaigns.errors import CampaignErrorCode
from campaigns.models import Campaign, Target, shares_over_100
from campaigns.rendering import unknown_tokens
from core.errors import CommonErrorCode
from insights.selectors import fine_members
from segments.errors import SegmentErrorCode
from segments.rules import validate_definition

Status = Campaign.Status

GEOGRAPHIC_FIELDS = {"city", "postal_code", "region", "country"}
TEMPLATE_FIELDS = ("subject_template", "body_template")
# Targets of one campaign: each is a message to a segment; a hundred is more than any team writes by
# hand, and keeps a campaign's save, forecast and activation bounded (15,000 took 121 s to save).
MAX_TARGETS = 100


def _check_channels(channels: Any) -> None:
    from campaigns.models import CampaignChannel

    if not isinstance(channels, list) or not channels:
        raise ValidationError(
            {"channels": ValidationError(gettext("Give at least one channel."), code=CommonErrorCode.REQUIRED)}
        )
    unknown = [c for c in channels if c not in CampaignChannel.values]
    if unknown or len(set(channels)) != len(channels):
        raise ValidationError(
            {
                "channels": ValidationError(
                    gettext("Unknown or repeated channels %(value)s; choose among %(values)s.")
                    % {"value": unknown or channels, "values": CampaignChannel.values},
                    code=CommonErrorCode.INVALID_CHOICE,
                )
            }
        )


def target_check(*, target: Target) -> None:
    """A target's own rules: its audience, mode, area and trigger (field errors by name)."""
    errors: dict[str, ValidationError] = {}
    campaign = target.campaign
    if target.segment is not None and target.segment.workspace_id != campaign.workspace_id:
        errors["segment"] = ValidationError(
            gettext("This segment belongs to another workspace."), code=CommonErrorCode.DOES_NOT_EXIST
        )
    if not target.segment_id and not target.trigger_event:
        errors["segment"] = ValidationError(
            gettext("Choose a segment (or a trigger event)."), code=CommonErrorCode.REQUIRED
        )
    if target.split_weight and not target.segment_id:
        errors["split_weight"] = ValidationError(
            gettext("Only targets on a segment share its audience in an A/B test."),
            code=CampaignErrorCode.SPLIT_TRIGGERED,
        )
    if target.mode == Target.Mode.FINE and target.min_probability is None:
        errors["min_probability"] = ValidationError(
            gettext("A fine target needs a minimum probability."), code=CommonErrorCode.REQUIRED
        )
    if target.restriction is not None:
        try:
            validate_definition(target.restriction, attribute_types={})
            _only_geographic(target.restriction, "restriction")
        except ValidationError as exc:
            errors["restriction"] = ValidationError(exc.messages, code=SegmentErrorCode.INVALID_RULE)
    if target.trigger_event:
        from customers.models import EventType

        if target.trigger_event not in EventType.values:
            errors["trigger_event"] = ValidationError(
                gettext("Unknown event type %(value)s.") % {"value": repr(target.trigger_event)},
                code=CommonErrorCode.INVALID,
            )
        if target.trigger_delay is None or target.trigger_delay.total_seconds() < 0:
            errors["trigger_delay"] = ValidationError(
                gettext("Give the delay after the event (0 or more)."), code=CommonErrorCode.REQUIRED
            )
    properties = target.trigger_properties
    if (
        not isinstance(properties, dict)
        or len(properties) > 100
        or any(
            not isinstance(v, str | int | float | bool) or (isinstance(v, str) and len(v) > 1000)
            for v in properties.values()
        )
    ):
        errors["trigger_properties"] = ValidationError(
            gettext(
                "An object of at most 100 property: value pairs (texts of at most 1,000 characters, numbers or true/false)."
            ),
            code=CommonErrorCode.INVALID,
        )
    for name in TEMPLATE_FIELDS:
        unknown = unknown_tokens(getattr(target, name))
        if unknown:
            errors[name] = ValidationError(
                gettext("Unknown tokens: %(value)s.") % {"value": ", ".join(sorted(unknown))},
                code=CommonErrorCode.INVALID,
            )
    if errors:
        raise ValidationError(errors)


def _only_geographic(node: Any, path: str) -> None:
    for key in ("all", "any"):
        if key in node:
            for i, child in enumerate(node[key]):
                _only_geographic(child, f"{path}.{key}[{i}]")
            return
    if "not" in node:
        _only_geographic(node["not"], f"{path}.not")
        return
    if "geo" in node or node.get("field") in GEOGRAPHIC_FIELDS:
        return
    raise ValidationError(
        gettext("%(path)s: an area uses geographic criteria only (city, postal code, region, country, geo).")
        % {"path": path}
    )


@transaction.atomic
def campaign_create(*, workspace: Workspace, owner=None, targets: list[dict] | None = None, **fields) -> Campaign:
    _check_channels(fields.get("channels"))
    _targets_count_check(len(targets or []))
    fields.setdefault("currency", workspace.currency)
    campaign = Campaign(workspace=workspace, owner=owner, **fields)
    campaign.full_clean()
    campaign.save()
    for spec in targets or []:
        target_add(campaign=campaign, **spec)
    return campaign


def _shares_check(campaign: Campaign) -> None:
    over = shares_over_100(list(campaign.targets.values_list("budget_share", flat=True)))
    if over is not None:
        raise ValidationError({"targets": over})


@transaction.atomic
def campaign_update(*, campaign: Campaign, targets: list[dict] | None = None, **fields) -> Campaign:
    """Edit a campaign that has not started; once it runs, use pause, cancel and budget instead."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Status.DRAFT, Status.SCHEDULED):
        raise ValidationError(
            {
                "status": ValidationError(
                    gettext("A %(status)s campaign cannot be edited.") % {"status": campaign.status},
                    code=CampaignErrorCode.NOT_EDITABLE,
                )
            }
        )
    for money in ("budget_total", "budget_daily"):
        if money in fields and fields[money] != getattr(campaign, money) and campaign.status != Status.DRAFT:
            raise ValidationError(
                {
                    money: ValidationError(
                        gettext("Change the budget of a scheduled campaign through the budget action.")
                    )
                }
            )
    if "channels" in fields:
        _check_channels(fields["channels"])
    if targets is not None:
        _targets_count_check(len(targets))
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.full_clean()
    campaign.save()
    if targets is not None:
        campaign.targets.all().delete()
        for spec in targets:
            target_add(campaign=campaign, **spec)
    return campaign


def _targets_count_check(count: int) -> None:
    if count > MAX_TARGETS:
        raise ValidationError(
            {
                "targets": ValidationError(
                    gettext(
                        "A campaign has at most %(max_targets)s targets (%(count)s given): use a segment of segments to reach more people with one message."
                    )
                    % {"max_targets": MAX_TARGETS, "count": count},
                    code=CommonErrorCode.MAX_LENGTH,
                )
            }
        )


@transaction.atomic
def target_add(*, campaign: Campaign, **fields) -> Target:
    target = Target(campaign=campaign, **fields)
    target.full_clean(exclude=["campaign"])
    target_check(target=target)
    target.save()
    _shares_check(campaign)  # inside the caller's transaction: refused, nothing is written
    return target


def connector_check(*, kind: str, url: str, secret: str) -> None:
    """A webhook needs its receiver's URL and a secret long enough to sign with."""
    from campaigns.models import Connector

    if kind != Connector.Kind.WEBHOOK:
        return
    errors = {}
    if not url:
        errors["url"] = ValidationError(
            gettext("A webhook needs the receiver's URL."), code=CampaignErrorCode.URL_REQUIRED
        )
    if len(secret or "") < 16:
        errors["secret"] = ValidationError(
            gettext("A webhook needs a secret of 16 characters or more."), code=CampaignErrorCode.TOO_SHORT
        )
    if errors:
        raise ValidationError(errors)


def campaign_ready_check(*, campaign: Campaign, now: datetime) -> None:
    """What scheduling needs: targets, a future end, budget shares within 100 %, usable targets."""
    errors: dict[str, list[ValidationError]] = {}
    targets = list(campaign.targets.select_related("segment__audience"))
    if not targets:
        errors.setdefault("targets", []).append(
            ValidationError(gettext("Add at least one target."), code=CommonErrorCode.REQUIRED)
        )
    if campaign.ends_at <= now:
        errors.setdefault("ends_at", []).append(
            ValidationError(gettext("The campaign ends in the past."), code=CampaignErrorCode.ENDED)
        )
    over = shares_over_100([t.budget_share for t in targets])
    if over is not None:
        errors.setdefault("targets", []).append(over)
    audiences = [t for t in targets if t.segment is not None and not t.trigger_event]
    for target in audiences:
        assert target.segment is not None
        if target.segment.audience.current_version == 0:
            errors.setdefault("targets", []).append(
                ValidationError(
                    gettext(
                        "Target %(target)s: the audience of segment %(value)s has never been computed; refresh it first (segments/{id}/refresh/)."
                    )
                    % {"target": target, "value": repr(target.segment.name)},
                    code=CampaignErrorCode.NO_AUDIENCE,
                )
            )
    computed = [t for t in audiences if t.segment is not None and t.segment.audience.current_version > 0]
    if computed and len(computed) == len(targets) and all(t.segment.audience.size == 0 for t in computed):  # type: ignore[union-attr]
        errors.setdefault("targets", []).append(
            ValidationError(
                gettext("The campaign would reach nobody: the audiences of its targets are empty."),
                code=CampaignErrorCode.EMPTY_AUDIENCE,
            )
        )
    for target in targets:
        if (
            target.mode == Target.Mode.FINE
            and target.segment is not None
            and (fine_members(segment=target.segment, min_probability=target.min_probability or 0) is None)
        ):
            errors.setdefault("targets", []).append(
                ValidationError(
                    gettext(
                        "Target %(target)s: segment %(value)s has no membership model with scores yet. Train one (POST /api/insights/models/ with kind membership and the segment, or Insights > Models in the admin), or use macro mode."
                    )
                    % {"target": target, "value": repr(target.segment.name)},
                    code=CampaignErrorCode.NO_SCORES,
                )
            )
    if errors:
        raise ValidationError(errors)
