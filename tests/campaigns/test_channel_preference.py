"""Channel preference: computed set-based from deliveries and responses, checked against an
independent computation; a rule criterion; and a campaign option that sends each person one
delivery on their preferred channel among those they consent to."""

from datetime import timedelta

from django.utils import timezone

from audiences.models import AudienceMember
from audiences.services import audience_compute
from campaigns.activation import campaign_deliveries, campaign_forecast
from campaigns.models import ChannelPreference, Touch
from campaigns.preferences import channel_preferences_compute
from tests.factories import (
    make_consent,
    make_event,
    make_order,
    make_profile,
    make_running_campaign,
    make_segment,
    make_touch,
)


def history(workspace):
    """Anne opens e-mails and ignores texts; Bruno clicks texts and buys after one."""
    past = make_running_campaign(workspace=workspace, channels=("email", "sms"), name="Before")
    target = past.targets.get()
    anne = make_profile(workspace=workspace, external_id="ANNE", country="FR")
    bruno = make_profile(workspace=workspace, external_id="BRUNO", country="FR")
    now = timezone.now()
    for days in (30, 20, 10):
        make_touch(campaign=past, target=target, profile=anne, channel="email", sent_at=now - timedelta(days=days))
    for days in (29, 19):
        make_event(profile=anne, type="email_open", channel="email", occurred_at=now - timedelta(days=days))
    for days in (25, 15):
        make_touch(campaign=past, target=target, profile=anne, channel="sms", sent_at=now - timedelta(days=days))
    for days in (28, 18):
        make_touch(campaign=past, target=target, profile=bruno, channel="email", sent_at=now - timedelta(days=days))
        make_touch(campaign=past, target=target, profile=bruno, channel="sms", sent_at=now - timedelta(days=days - 1))
        make_event(profile=bruno, type="sms_click", channel="sms", occurred_at=now - timedelta(days=days - 1))
    make_order(profile=bruno, ordered_at=now - timedelta(days=15))  # 2 days after the SMS of day 17
    make_touch(campaign=past, target=target, profile=bruno, channel="sms", sent_at=now - timedelta(days=400))  # too old
    return anne, bruno


def expected(workspace):
    """The same figures, computed independently in Python from the rows."""
    since = timezone.now() - timedelta(days=180)
    rows = {}
    for touch in Touch.objects.filter(workspace=workspace, status="sent", sent_at__gte=since):
        row = rows.setdefault((touch.profile_id, touch.channel), [0, 0])
        row[0] += 1
        orders = touch.profile.orders.filter(
            status="completed", ordered_at__gte=touch.sent_at, ordered_at__lte=touch.sent_at + timedelta(days=7)
        )
        row[1] += orders.exists()
    from customers.models import Event

    for event in Event.objects.filter(
        workspace=workspace, type__in=["email_open", "email_click", "sms_click", "push_open", "ad_click"]
    ):
        rows.setdefault((event.profile_id, event.channel), [0, 0])[1] += 1
    return {key: (t, r, (r + 1) / (t + 2)) for key, (t, r) in rows.items()}


def test_preferences_match_an_independent_computation(workspace):
    anne, bruno = history(workspace)
    written = channel_preferences_compute(workspace=workspace)
    found = {
        (p.profile_id, p.channel): (p.touches, p.responses, p.score)
        for p in ChannelPreference.objects.filter(workspace=workspace)
    }
    want = expected(workspace)
    assert written == len(want) == 4
    assert found.keys() == want.keys()
    for key, (touches, responses, score) in want.items():
        assert found[key][:2] == (touches, responses), key
        assert abs(found[key][2] - score) < 1e-9
    preferred = dict(ChannelPreference.objects.filter(rank=1).values_list("profile_id", "channel"))
    assert preferred == {anne.pk: "email", bruno.pk: "sms"}
    # Computing again replaces, never adds.
    assert channel_preferences_compute(workspace=workspace) == 4
    assert ChannelPreference.objects.count() == 4


def test_the_preferred_channel_is_a_rule_criterion(workspace):
    anne, bruno = history(workspace)
    channel_preferences_compute(workspace=workspace)
    segment = make_segment(workspace=workspace, definition={"preferred_channel": "sms"})
    members = set(AudienceMember.objects.current_of(segment.audience).values_list("profile_id", flat=True))
    assert members == {bruno.pk}
    both = make_segment(workspace=workspace, definition={"preferred_channel": ["sms", "email"]})
    assert AudienceMember.objects.current_of(both.audience).count() == 2


def test_a_bad_preferred_channel_rule_is_refused_with_its_path(marketer, workspace):
    for bad in ("fax", [], ["email", 3], {"channel": "sms"}, ["sms", "sms"]):
        r = marketer.post(
            "/api/workspaces/maison/segments/",
            {"name": "x", "definition": {"all": [{"preferred_channel": bad}]}},
            format="json",
        )
        assert r.status_code == 400 and "definition" in r.json(), bad


def test_a_campaign_on_preferred_channels_sends_each_person_once_on_their_best_consented_one(workspace):
    anne, bruno = history(workspace)
    carla = make_profile(workspace=workspace, external_id="CARLA", country="FR")  # no history
    dora = make_profile(workspace=workspace, external_id="DORA", country="FR")  # prefers e-mail, consents to SMS only
    make_event(profile=dora, type="email_open", channel="email")
    channel_preferences_compute(workspace=workspace)
    for person in (anne, bruno, carla):
        make_consent(profile=person, channel="email")
        make_consent(profile=person, channel="sms")
    make_consent(profile=dora, channel="sms")
    campaign = make_running_campaign(
        workspace=workspace, channels=("email", "sms"), name="Soldes", channel_choice="preferred"
    )
    audience_compute(segment_id=campaign.targets.get().segment_id)
    forecast = campaign_forecast(campaign=campaign)
    per_channel = {c["channel"]: c for c in forecast["targets"][0]["channels"]}
    assert per_channel["email"]["will_receive"] == 2 and per_channel["email"]["on_preferred_channel_elsewhere"] == 1
    assert per_channel["sms"]["will_receive"] == 2 and per_channel["sms"]["on_preferred_channel_elsewhere"] == 2
    campaign_deliveries(campaign_id=campaign.pk)
    sent = set(Touch.objects.filter(campaign=campaign).values_list("profile__external_id", "channel"))
    assert sent == {("ANNE", "email"), ("BRUNO", "sms"), ("CARLA", "email"), ("DORA", "sms")}


def test_every_channel_stays_the_default(workspace):
    anne, _ = history(workspace)
    channel_preferences_compute(workspace=workspace)
    make_consent(profile=anne, channel="email")
    make_consent(profile=anne, channel="sms")
    campaign = make_running_campaign(workspace=workspace, channels=("email", "sms"), name="Tous")
    audience_compute(segment_id=campaign.targets.get().segment_id)
    campaign_deliveries(campaign_id=campaign.pk)
    assert set(Touch.objects.filter(campaign=campaign, profile=anne).values_list("channel", flat=True)) == {
        "email",
        "sms",
    }


def test_the_admin_lists_preferences_of_the_users_workspaces_and_computes_them_again(
    client, workspace, other_workspace, eager_tasks
):
    from django.urls import reverse

    from tests.factories import make_user

    anne, _ = history(workspace)
    channel_preferences_compute(workspace=workspace)
    client.force_login(make_user(workspace=workspace, role="marketer"))
    url = reverse("admin:campaigns_channelpreference_changelist")
    page = client.get(url)
    assert page.status_code == 200 and "ANNE" in page.content.decode()
    ChannelPreference.objects.filter(workspace=workspace).update(rank=9)
    chosen = list(ChannelPreference.objects.filter(workspace=workspace).values_list("pk", flat=True)[:1])
    r = client.post(url, {"action": "compute_now", "_selected_action": chosen}, follow=True)
    assert "queued for computation in 1 workspace" in r.content.decode()
    assert ChannelPreference.objects.filter(workspace=workspace, rank=1).count() == 2  # computed again
    outsider = make_user(workspace=other_workspace, role="admin")
    client.force_login(outsider)
    assert "ANNE" not in client.get(url).content.decode()
