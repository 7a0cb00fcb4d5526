from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences.models import Audience, AudienceMember
from audiences.services import audience_compute
from segments.models import ManualMember, Segment
from segments.services import segment_create
from tests.factories import make_profile


def url(name, pk):
    return reverse(name, kwargs={"workspace": "maison", "pk": pk})


def current(segment):
    audience = Audience.objects.get(segment=segment)
    return set(
        AudienceMember.objects.filter(audience=audience, version=audience.current_version).values_list(
            "profile__external_id", flat=True
        )
    )


def test_a_static_list_uploaded_as_csv_becomes_the_audience(marketer, workspace, other_workspace):
    make_profile(workspace=workspace, external_id="C1", email="a@example.com")
    make_profile(workspace=workspace, external_id="C2", email="b@example.com")
    make_profile(workspace=other_workspace, external_id="C3", email="c@example.com")
    segment = segment_create(workspace=workspace, name="Fair visitors", kind="static")
    upload = SimpleUploadedFile("list.csv", b"email\nA@example.com\nb@example.com\nc@example.com\nnobody@example.com\n")
    r = marketer.post(url("segment-static-list", segment.pk), {"file": upload}, format="multipart")
    assert r.status_code == 200
    assert r.json() == {"rows": 4, "matched": 2, "unmatched": 2}  # another workspace's person is not matched
    audience_compute(segment_id=segment.pk)
    assert current(segment) == {"C1", "C2"}
    bad = marketer.post(
        url("segment-static-list", segment.pk), {"file": SimpleUploadedFile("x.csv", b"name\nx\n")}, format="multipart"
    )
    assert bad.status_code == 400 and bad.json()["file"][0]["code"] == "invalid"


def test_a_dynamic_segment_cannot_take_a_list(marketer, workspace):
    segment = segment_create(
        workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    r = marketer.post(
        url("segment-static-list", segment.pk),
        {"file": SimpleUploadedFile("l.csv", b"external_id\nC1\n")},
        format="multipart",
    )
    assert r.status_code == 400 and r.json()["file"][0]["code"] == "not_static"


def test_freezing_keeps_todays_members_whatever_happens_next(marketer, workspace):
    make_profile(workspace=workspace, external_id="L1", city="Lyon")
    segment = segment_create(
        workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    assert marketer.post(url("segment-freeze", segment.pk)).status_code == 400  # nothing computed yet
    audience_compute(segment_id=segment.pk)
    r = marketer.post(url("segment-freeze", segment.pk))
    assert r.status_code == 200 and r.json()["kind"] == "static"
    make_profile(workspace=workspace, external_id="L2", city="Lyon")
    audience_compute(segment_id=segment.pk)
    assert current(segment) == {"L1"}
    assert ManualMember.objects.filter(segment=segment, action="include").count() == 1
    assert Segment.objects.get(pk=segment.pk).refresh_every is None
