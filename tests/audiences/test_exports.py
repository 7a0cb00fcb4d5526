import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audiences.exports import normalised_identifiers, sha256_identifier
from audiences.models import AudienceExport
from audiences.services import audience_compute
from segments.services import segment_create
from tests.factories import make_consent, make_profile

# SHA-256 reference vectors (as ad platforms compute them on normalised identifiers)
EMAIL_SHA256 = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"  # test@example.com
PHONE_SHA256 = "42d573cfc315801d4cd8eddd5416b416a0bf298b9b9e12d6b07442c91db42bd8"  # +33612345678


def test_identifiers_are_normalised_then_hashed_against_known_vectors():
    email, phone = normalised_identifiers("  Test@Example.COM ", "06 12 34 56 78", default_region="FR")
    assert (email, phone) == ("test@example.com", "+33612345678")
    assert sha256_identifier(email) == EMAIL_SHA256
    assert sha256_identifier(phone) == PHONE_SHA256
    assert normalised_identifiers("not an email", "12", default_region="FR") == ("", "")


@pytest.fixture
def audience(workspace):
    granted = make_profile(
        workspace=workspace, external_id="G", city="Lyon", email="Test@Example.com", phone="+33 6 12 34 56 78"
    )
    withdrawn = make_profile(workspace=workspace, external_id="W", city="Lyon", email="w@example.com")
    make_profile(workspace=workspace, external_id="N", city="Lyon", email="n@example.com")  # never consented
    sms_only = make_profile(workspace=workspace, external_id="S", city="Lyon", email="s@example.com")
    past = timezone.now() - timedelta(days=5)
    make_consent(profile=granted, purpose="ad_targeting", channel="social", recorded_at=past)
    make_consent(profile=withdrawn, purpose="ad_targeting", channel="social", recorded_at=past)
    make_consent(
        profile=withdrawn,
        purpose="ad_targeting",
        channel="social",
        status="withdrawn",
        recorded_at=past + timedelta(days=1),
    )
    make_consent(profile=sms_only, purpose="direct_marketing", channel="sms", recorded_at=past)
    segment = segment_create(
        workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    audience_compute(segment_id=segment.pk)
    return segment


def export(client, segment, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            reverse("segment-export", kwargs={"workspace": "maison", "pk": segment.pk}), body, format="json"
        )
    return r


def test_an_export_holds_only_members_consented_for_its_purpose_and_channel_hashed(
    marketer, audience, eager_tasks, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    r = export(marketer, audience, django_capture_on_commit_callbacks, purpose="ad_targeting", channel="social")
    assert r.status_code == 202
    record = AudienceExport.objects.get(pk=r.json()["id"])
    assert (record.status, record.row_count, record.audience_size, record.created_by) == ("ready", 1, 4, marketer.user)
    download = marketer.get(reverse("export-download", kwargs={"workspace": "maison", "pk": record.pk}))
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows == [["external_id", "email_sha256", "phone_sha256"], ["G", EMAIL_SHA256, PHONE_SHA256]]
    log = marketer.get(reverse("export-list", kwargs={"workspace": "maison"})).json()["results"]
    assert [(e["purpose"], e["channel"], e["row_count"]) for e in log] == [("ad_targeting", "social", 1)]


def test_consent_is_read_at_export_time(
    marketer, audience, eager_tasks, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    from customers.models import Profile

    make_consent(
        profile=Profile.objects.get(external_id="G"), purpose="ad_targeting", channel="social", status="withdrawn"
    )
    r = export(
        marketer, audience, django_capture_on_commit_callbacks, purpose="ad_targeting", channel="social", format="json"
    )
    assert AudienceExport.objects.get(pk=r.json()["id"]).row_count == 0


def test_plain_identifiers_need_a_role_that_allows_them(
    marketer, client_for, audience, eager_tasks, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    r = export(
        marketer,
        audience,
        django_capture_on_commit_callbacks,
        purpose="direct_marketing",
        channel="sms",
        identifiers="plain",
    )
    assert r.status_code == 400 and r.json()["identifiers"][0]["code"] == "forbidden"
    manager = client_for("manager")
    r = export(
        manager,
        audience,
        django_capture_on_commit_callbacks,
        purpose="direct_marketing",
        channel="sms",
        identifiers="plain",
        format="json",
    )
    assert r.status_code == 202
    body = manager.get(reverse("export-download", kwargs={"workspace": "maison", "pk": r.json()["id"]}))
    lines = [json.loads(line) for line in b"".join(body.streaming_content).decode().splitlines()]
    assert lines == [{"external_id": "S", "email": "s@example.com", "phone": "", "first_name": "", "last_name": ""}]
    assert (
        marketer.get(reverse("export-download", kwargs={"workspace": "maison", "pk": r.json()["id"]})).status_code
        == 403
    )


def test_a_viewer_cannot_export_and_another_workspace_gets_404(
    viewer, outsider, audience, django_capture_on_commit_callbacks
):
    assert (
        export(
            viewer, audience, django_capture_on_commit_callbacks, purpose="ad_targeting", channel="social"
        ).status_code
        == 403
    )
    r = outsider.post(
        reverse("segment-export", kwargs={"workspace": "rival", "pk": audience.pk}),
        {"purpose": "ad_targeting", "channel": "social"},
    )
    assert r.status_code == 404
    assert not AudienceExport.objects.exists()
