"""The lifecycle: one transition service for every state change, checked, recorded, effective at once."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from campaigns.errors import CampaignErrorCode
from campaigns.models import Campaign, PendingSend, Target, Touch, Transition
from campaigns.services.setup import campaign_ready_check
from campaigns.signals import campaign_changed
from core.errors import CommonErrorCode

Status = Campaign.Status

# The lifecycle: draft -> scheduled -> active <-> paused -> completed; cancelled from any non-final state.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.SCHEDULED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.ACTIVE, Status.CANCELLED}),
    Status.ACTIVE: frozenset({Status.PAUSED, Status.COMPLETED, Status.CANCELLED}),
    Status.PAUSED: frozenset({Status.ACTIVE, Status.COMPLETED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def campaign_transition(
    *, campaign: Campaign, to: str, actor=None, source: str = "api", reason: str = "", now: datetime | None = None
) -> Campaign:
    """The one way a campaign changes state: checked, logged, and effective at once."""
    from campaigns.tasks import campaign_activate_task

    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if to not in TRANSITIONS[locked.status]:
            raise ValidationError(
                {
                    "status": ValidationError(
                        gettext("A %(status)s campaign cannot become %(to)s.") % {"status": locked.status, "to": to},
                        code=CampaignErrorCode.ILLEGAL_TRANSITION,
                    )
                }
            )
        if to == Status.CANCELLED and not reason.strip():
            raise ValidationError(
                {
                    "reason": ValidationError(
                        gettext("Say why the campaign is cancelled."), code=CommonErrorCode.REQUIRED
                    )
                }
            )
        if to == Status.SCHEDULED:
            campaign_ready_check(campaign=locked, now=now)
        previous = locked.status
        locked.status = to
        if to == Status.ACTIVE and locked.activated_at is None:
            locked.activated_at = now
        locked.save(update_fields=["status", "activated_at", "updated_at"])
        Transition.objects.create(
            campaign=locked, from_status=previous, to_status=to, actor=actor, source=source, reason=reason, at=now
        )
        if to in (Status.CANCELLED, Status.COMPLETED):
            # Nothing more goes out: deliveries not yet handed off and triggered sends waiting.
            Touch.objects.filter(campaign=locked, status=Touch.Status.PENDING).update(status=Touch.Status.CANCELLED)
            PendingSend.objects.filter(target__campaign=locked, status=PendingSend.Status.WAITING).update(
                status=PendingSend.Status.CANCELLED, reason=f"campaign {to}"
            )
        if to == Status.ACTIVE:
            campaign_activate_task.delay_on_commit(campaign_id=locked.pk)
        transaction.on_commit(
            lambda: campaign_changed.send(
                sender=Campaign, workspace_id=locked.workspace_id, campaign_id=locked.pk, status=to
            )
        )
    return locked


def campaign_activate(*, campaign: Campaign, actor=None, source: str = "api", reason: str = "") -> Campaign:
    """Schedule a draft; it starts at once when its start time has come."""
    now = timezone.now()
    campaign = campaign_transition(
        campaign=campaign, to=Status.SCHEDULED, actor=actor, source=source, reason=reason, now=now
    )
    if campaign.starts_at <= now:
        campaign = campaign_transition(
            campaign=campaign, to=Status.ACTIVE, actor=actor, source=source, reason=reason or "start time reached"
        )
    return campaign


def campaign_resume(*, campaign: Campaign, actor=None, source: str = "api", reason: str = "") -> Campaign:
    if campaign.status == Status.PAUSED and campaign.ends_at <= timezone.now():
        return campaign_transition(
            campaign=campaign, to=Status.COMPLETED, actor=actor, source=source, reason="ended while paused"
        )
    return campaign_transition(campaign=campaign, to=Status.ACTIVE, actor=actor, source=source, reason=reason)


def campaigns_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat, every minute: start the scheduled campaigns whose time has come, end those past their end."""
    now = now or timezone.now()
    started = ended = 0
    for campaign in Campaign.objects.filter(status=Status.SCHEDULED, starts_at__lte=now, ends_at__gt=now):
        campaign_transition(campaign=campaign, to=Status.ACTIVE, source="schedule", reason="start time", now=now)
        started += 1
    for campaign in Campaign.objects.filter(
        status__in=[Status.SCHEDULED, Status.ACTIVE, Status.PAUSED], ends_at__lte=now
    ):
        to = Status.CANCELLED if campaign.status == Status.SCHEDULED else Status.COMPLETED
        campaign_transition(campaign=campaign, to=to, source="schedule", reason="end time", now=now)
        ended += 1
    # A running campaign reaches the newcomers of each refreshed audience.
    from campaigns.tasks import campaign_activate_task

    refreshed = sorted(
        set(
            Target.objects.filter(campaign__status=Status.ACTIVE, trigger_event="", segment__isnull=False)
            .filter(segment__audience__current_version__gt=F("activated_version"))
            .values_list("campaign_id", flat=True)
        )
    )
    for campaign_id in refreshed:
        campaign_activate_task.delay(campaign_id=campaign_id)
    return {"started": started, "ended": ended, "refreshed": len(refreshed)}
