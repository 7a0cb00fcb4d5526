from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Profile
from privacy.models import ConsentRecord
from privacy.selectors import profiles_contactable
from tests.factories import make_consent, make_profile


@pytest.fixture
def profile(workspace):
    return make_profile(workspace=workspace, external_id="C1")


def test_the_state_in_force_is_the_latest_record_and_past_states_are_answerable(profile, viewer):
    t0 = timezone.now() - timedelta(days=10)
    make_consent(profile=profile, status="granted", recorded_at=t0)
    make_consent(profile=profile, status="withdrawn", recorded_at=t0 + timedelta(days=5))
    make_consent(profile=profile, channel="sms", status="granted", recorded_at=t0 + timedelta(days=1))
    url = reverse("profile-consents", kwargs={"workspace": "maison", "pk": profile.pk})
    now = viewer.get(url).json()
    assert [(c["channel"], c["status"]) for c in now] == [("email", "withdrawn"), ("sms", "granted")]
    before = viewer.get(url, {"at": (t0 + timedelta(days=2)).isoformat()}).json()
    assert [(c["channel"], c["status"]) for c in before] == [("email", "granted"), ("sms", "granted")]
    first_day = viewer.get(url, {"at": (t0 + timedelta(hours=1)).isoformat()}).json()
    assert [(c["channel"], c["status"]) for c in first_day] == [("email", "granted")]
    assert viewer.get(url, {"at": "last tuesday"}).status_code == 400


def test_contactable_for_follows_the_latest_record(workspace):
    granted = make_profile(workspace=workspace)
    withdrawn = make_profile(workspace=workspace)
    silent = make_profile(workspace=workspace)
    t0 = timezone.now() - timedelta(days=3)
    make_consent(profile=granted, recorded_at=t0)
    make_consent(profile=withdrawn, recorded_at=t0)
    make_consent(profile=withdrawn, status="withdrawn", recorded_at=t0 + timedelta(days=1))
    make_consent(profile=silent, channel="sms", recorded_at=t0)
    contactable = profiles_contactable(
        profiles=Profile.objects.for_workspace(workspace),
        workspace_id=workspace.pk,
        purpose="direct_marketing",
        channel="email",
    )
    assert list(contactable.values_list("pk", flat=True)) == [granted.pk]


def test_consent_records_cannot_be_updated_or_deleted_through_the_orm(profile):
    record = make_consent(profile=profile)
    record.status = "denied"
    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        record.delete()
    with pytest.raises(PermissionError):
        ConsentRecord.objects.filter(pk=record.pk).update(status="denied")
    with pytest.raises(PermissionError):
        ConsentRecord.objects.filter(pk=record.pk).delete()
    record.refresh_from_db()
    assert record.status == "granted"


def test_the_api_appends_and_never_edits(profile, marketer):
    url = reverse("consent-list", kwargs={"workspace": "maison"})
    r = marketer.post(
        url,
        {
            "profile": profile.pk,
            "purpose": "ad_targeting",
            "channel": "display",
            "status": "granted",
            "source": "cookie-banner",
            "notice_version": "v3",
            "ip_address": "82.64.1.2",
        },
    )
    assert r.status_code == 201
    record = ConsentRecord.objects.get(pk=r.json()["id"])
    assert (record.created_by, record.ip_address, record.legal_basis) == (marketer.user, "82.64.1.2", "consent")
    detail = reverse("consent-detail", kwargs={"workspace": "maison", "pk": record.pk})
    assert marketer.patch(detail, {"status": "denied"}).status_code == 405
    assert marketer.delete(detail).status_code == 405
    assert ConsentRecord.objects.get(pk=record.pk).status == "granted"


def test_a_consent_in_the_future_or_with_a_bad_purpose_is_refused(profile, marketer):
    url = reverse("consent-list", kwargs={"workspace": "maison"})
    base = {
        "profile": profile.pk,
        "purpose": "direct_marketing",
        "channel": "email",
        "status": "granted",
        "source": "x",
    }
    r = marketer.post(url, {**base, "recorded_at": (timezone.now() + timedelta(days=2)).isoformat()})
    assert r.status_code == 400 and r.json()["recorded_at"][0]["code"] == "future"
    r = marketer.post(url, {**base, "purpose": "telepathy"})
    assert r.status_code == 400 and r.json()["purpose"][0]["code"] == "invalid_choice"
    assert not ConsentRecord.objects.exists()


def test_new_profiles_have_no_consent_and_are_not_contactable(workspace):
    profile = make_profile(workspace=workspace)
    people = Profile.objects.filter(pk=profile.pk)
    assert not profiles_contactable(
        profiles=people, workspace_id=profile.workspace_id, purpose="direct_marketing", channel="email"
    ).exists()
