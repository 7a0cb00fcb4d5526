"""The lifecycle: every legal and illegal transition, logged with who, when and why."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Campaign, LedgerEntry, PendingSend, Touch, Transition
from campaigns.services import TRANSITIONS, campaign_activate, campaign_transition, campaigns_tick, spend_record
from tests.factories import make_campaign, make_profile, make_segment, make_user

S = Campaign.Status
LEGAL = {
    (S.DRAFT, S.SCHEDULED),
    (S.DRAFT, S.CANCELLED),
    (S.SCHEDULED, S.ACTIVE),
    (S.SCHEDULED, S.CANCELLED),
    (S.ACTIVE, S.PAUSED),
    (S.ACTIVE, S.COMPLETED),
    (S.ACTIVE, S.CANCELLED),
    (S.PAUSED, S.ACTIVE),
    (S.PAUSED, S.COMPLETED),
    (S.PAUSED, S.CANCELLED),
}


@pytest.fixture
def campaign(workspace, eager_tasks):
    make_profile(workspace=workspace, country="FR")
    return make_campaign(workspace=workspace, segment=make_segment(workspace=workspace))


def test_the_matrix_is_the_designed_one():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL


@pytest.mark.parametrize("source", S.values)
@pytest.mark.parametrize("to", S.values)
def test_every_transition_is_allowed_or_refused_with_a_clear_error(
    campaign, source, to, django_capture_on_commit_callbacks
):
    Campaign.objects.filter(pk=campaign.pk).update(status=source)
    actor = make_user(workspace=campaign.workspace)
    with django_capture_on_commit_callbacks(execute=False):
        if (source, to) in LEGAL:
            changed = campaign_transition(campaign=campaign, to=to, actor=actor, reason="because", source="api")
            assert changed.status == to
            log = Transition.objects.get(campaign=campaign)
            assert (log.from_status, log.to_status, log.actor, log.reason, log.source) == (
                source,
                to,
                actor,
                "because",
                "api",
            )
            assert abs(log.at - timezone.now()) < timedelta(seconds=5)
        else:
            with pytest.raises(ValidationError) as error:
                campaign_transition(campaign=campaign, to=to, actor=actor, reason="because")
            assert error.value.message_dict == {"status": [f"A {source} campaign cannot become {to}."]}
            assert Campaign.objects.get(pk=campaign.pk).status == source
            assert not Transition.objects.exists()


def test_cancelling_needs_a_reason(campaign):
    with pytest.raises(ValidationError) as error:
        campaign_transition(campaign=campaign, to=S.CANCELLED, reason="  ")
    assert "reason" in error.value.message_dict


def test_scheduling_needs_targets_and_a_future_end(workspace):
    empty = make_campaign(workspace=workspace)
    with pytest.raises(ValidationError) as error:
        campaign_transition(campaign=empty, to=S.SCHEDULED)
    assert error.value.message_dict["targets"] == ["Add at least one target."]


def test_activate_starts_a_campaign_whose_time_has_come_and_schedules_a_future_one(workspace, eager_tasks):
    make_profile(workspace=workspace, country="FR")
    segment = make_segment(workspace=workspace)
    now = timezone.now()
    started = campaign_activate(campaign=make_campaign(workspace=workspace, segment=segment))
    later = campaign_activate(
        campaign=make_campaign(workspace=workspace, segment=segment, starts_at=now + timedelta(days=1))
    )
    assert (started.status, later.status) == (S.ACTIVE, S.SCHEDULED)
    assert list(Transition.objects.filter(campaign=started).order_by("id").values_list("to_status", flat=True)) == [
        S.SCHEDULED,
        S.ACTIVE,
    ]


def test_beat_starts_and_ends_campaigns_on_time(workspace, eager_tasks, django_capture_on_commit_callbacks):
    make_profile(workspace=workspace, country="FR")
    segment = make_segment(workspace=workspace)
    now = timezone.now()
    soon = campaign_activate(
        campaign=make_campaign(workspace=workspace, segment=segment, starts_at=now + timedelta(minutes=5))
    )
    ending = campaign_activate(
        campaign=make_campaign(workspace=workspace, segment=segment, ends_at=now + timedelta(minutes=5))
    )
    assert campaigns_tick(now=now)["started"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_tick(now=now + timedelta(minutes=6))["started"] == 1
    soon.refresh_from_db()
    ending.refresh_from_db()
    assert (soon.status, ending.status) == (S.ACTIVE, S.COMPLETED)
    assert Transition.objects.filter(campaign=ending, to_status=S.COMPLETED, source="schedule").exists()


def test_cancel_takes_effect_at_once_everywhere(workspace, eager_tasks, django_capture_on_commit_callbacks):
    from campaigns.models import Target

    person = make_profile(workspace=workspace, country="FR")
    campaign = make_campaign(workspace=workspace, segment=make_segment(workspace=workspace), budget_total="100")
    Campaign.objects.filter(pk=campaign.pk).update(status=S.ACTIVE)
    target = campaign.targets.get()
    touch = Touch.objects.create(
        workspace=workspace,
        campaign=campaign,
        target=target,
        profile=person,
        channel="email",
        variant="A",
        created_at=timezone.now(),
    )
    from tests.factories import make_event

    event = make_event(profile=person, type="cart_abandoned")
    waiting = PendingSend.objects.create(
        workspace=workspace, target=target, profile=person, event=event, due_at=timezone.now() + timedelta(hours=1)
    )
    campaign_transition(campaign=campaign, to=S.CANCELLED, reason="poor results")
    touch.refresh_from_db()
    waiting.refresh_from_db()
    assert (touch.status, waiting.status) == (Touch.Status.CANCELLED, PendingSend.Status.CANCELLED)
    with pytest.raises(ValidationError) as error:
        spend_record(campaign=campaign, amount="1.00", idempotency_key="late")
    assert error.value.error_dict["non_field_errors"][0].code == "not_active"
    assert not LedgerEntry.objects.filter(kind="spend").exists()
    assert Target.objects.filter(pk=target.pk).exists()
