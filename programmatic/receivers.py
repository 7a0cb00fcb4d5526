"""How programmatic follows the apps below it: a campaign paused or cancelled stops bidding at
once, consent withdrawn or a person erased leaves the consent set at once, and a new audience
version or an activated campaign is published by a worker, and new events reach the retargeting
line items."""

from collections.abc import Sequence

from campaigns.models import Campaign, CampaignChannel


def campaign_changed(sender, *, workspace_id: int, campaign_id: int, status: str, **kwargs) -> None:
    from programmatic.publish import campaign_withdraw
    from programmatic.tasks import state_publish_task

    if status != Campaign.Status.ACTIVE:
        campaign_withdraw(workspace_id=workspace_id, campaign_id=campaign_id)
    state_publish_task.delay(workspace_id=workspace_id)


def consent_ending(sender, *, workspace_id: int, ended: dict[int, set[str] | None], **kwargs) -> dict[str, int]:
    from programmatic.publish import people_forget

    gone = [pk for pk, channels in ended.items() if channels is None or CampaignChannel.DISPLAY in channels]
    people_forget(workspace_id=workspace_id, profile_ids=gone)
    return {"bidder_consent_removed": len(gone)}


def profiles_erasing(
    sender, *, workspace_id: int, profile_ids: list[int], identities: Sequence[tuple[str, str]] = (), **kwargs
) -> dict[str, int]:
    from programmatic.publish import people_forget

    people_forget(workspace_id=workspace_id, profile_ids=list(profile_ids), identities=identities)
    return {"bidder_consent_removed": len(profile_ids), "bidder_identifiers_removed": len(identities)}


def events_retarget(*, workspace_id: int, event_ids: list[int]) -> None:
    """Registered with customers' event follow-ups: a cart abandoned (or any trigger event) reaches
    the retargeting line items, and a purchase takes its person out, within seconds."""
    from programmatic.models import LineItem
    from programmatic.publish import triggers_follow

    # Cheap check first: most workspaces have no retargeting line item running.
    if (
        LineItem.objects.filter(workspace_id=workspace_id, target__campaign__status=Campaign.Status.ACTIVE)
        .exclude(target__trigger_event="")
        .exists()
    ):
        triggers_follow(workspace_id=workspace_id, event_ids=event_ids)


def audience_computed(sender, *, workspace_id: int, **kwargs) -> None:
    from programmatic.tasks import state_publish_task

    state_publish_task.delay(workspace_id=workspace_id)


def profiles_regrouped(sender, *, workspace_id: int, profile_ids: list[int], gone_ids: list[int], **kwargs) -> None:
    """A merge or an unmerge: the bidder's identity map and consent set follow at once."""
    from programmatic.publish import people_refresh

    people_refresh(workspace_id=workspace_id, profile_ids=list(profile_ids), gone_ids=list(gone_ids))


def audience_members_followed(sender, *, workspace_id: int, profile_ids: list[int], **kwargs) -> None:
    """Their memberships changed in place: the live member sets follow."""
    from programmatic.publish import people_refresh

    people_refresh(workspace_id=workspace_id, profile_ids=list(profile_ids))
