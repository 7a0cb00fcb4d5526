"""How privacy takes part in profile merges (PrivacyConfig.ready)."""

from privacy.audit import Action, audit_record
from privacy.models import ConsentRecord, DataSubjectRequest, RemovalNotice


def profile_merging(sender, *, journal, **kwargs) -> None:
    # The consent history moves whole: each record keeps its time, so the state in force
    # after the merge is the latest statement of either person.
    journal.move(model=ConsentRecord, name="consents")
    journal.move(model=DataSubjectRequest, name="privacy_requests")
    journal.move(model=RemovalNotice, name="removal_notices")


def profile_viewed(sender, *, workspace_id, actor, object_type, object_id, profile_id, via, **kwargs) -> None:
    audit_record(
        workspace_id=workspace_id,
        actor=actor,
        action=Action.PROFILE_VIEWED,
        object_type=object_type,
        object_id=object_id,
        profile_id=profile_id,
        detail={"via": via},
    )


def consent_timeline(profile, before, limit: int, channels):
    """The person's consent statements, for their timeline (customers.timeline)."""
    from django.utils.translation import gettext

    from customers.timeline import Entry
    from privacy.models import ConsentPurpose, ConsentRecord, ConsentStatus

    rows = ConsentRecord.objects.filter(profile=profile)
    if before is not None:
        rows = rows.filter(recorded_at__lte=before)
    if channels is not None:
        rows = rows.filter(channel__in=channels)
    purposes, statuses = dict(ConsentPurpose.choices), dict(ConsentStatus.choices)
    for pk, purpose, channel, status, at, source in rows.order_by("-recorded_at", "-pk").values_list(
        "pk", "purpose", "channel", "status", "recorded_at", "source"
    )[:limit]:
        label = gettext("Consent %(status)s: %(purpose)s") % {
            "status": str(statuses.get(status, status)).lower(),
            "purpose": purposes.get(purpose, purpose),
        }
        yield Entry(at, "consent", channel, label, source, f"consent:{pk}")
