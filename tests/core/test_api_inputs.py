"""Input the schema calls invalid is refused with a 400 naming the field, and the schema says what is
valid: filters by id tell nothing about other workspaces, booleans and numbers in query strings are
strict, JSON values of the wrong type are not converted, and the API reads JSON only."""

from datetime import UTC, datetime

from drf_spectacular.generators import SchemaGenerator

from campaigns.models import Campaign
from customers.models import AttributeDefinition, SurveyResponse
from tests.factories import make_campaign, make_order, make_profile, make_segment

BASE = "/api/workspaces/maison"


def test_an_id_filter_on_another_workspaces_row_answers_as_for_a_row_that_does_not_exist(
    workspace, other_workspace, marketer
):
    mine = make_segment(workspace=workspace, compute=False)
    theirs = make_segment(workspace=other_workspace, compute=False)
    campaign = make_campaign(workspace=workspace, segment=mine)
    assert [c["id"] for c in marketer.get(f"{BASE}/campaigns/", {"segment": mine.pk}).json()["results"]] == [
        campaign.pk
    ]
    # The same answer for their segment and for an id nobody has: no "Select a valid choice" oracle.
    for other in (theirs.pk, 2**62):
        r = marketer.get(f"{BASE}/campaigns/", {"segment": other})
        assert (r.status_code, r.json()["results"]) == (200, [])
    for bad in ("0", "-3", "1.5", "x", str(2**63)):
        r = marketer.get(f"{BASE}/campaigns/", {"segment": bad})
        assert r.status_code == 400 and list(r.json()) == ["segment"], bad
    assert Campaign.objects.count() == 1


def test_boolean_and_number_filters_refuse_what_they_cannot_read(workspace, marketer, viewer):
    assert marketer.get(f"{BASE}/connectors/", {"active": "maybe"}).status_code == 400
    assert marketer.get(f"{BASE}/connectors/", {"active": "-58800"}).json().keys() == {"active"}
    assert marketer.get(f"{BASE}/connectors/", {"active": "true"}).status_code == 200
    assert marketer.get(f"{BASE}/connectors/", {"active": ""}).status_code == 200  # empty: no filter
    assert viewer.get(f"{BASE}/profiles/", {"age_min": "0.5"}).json().keys() == {"age_min"}
    order = make_order(profile=make_profile(workspace=workspace), amount="13.97")
    found = viewer.get(f"{BASE}/orders/", {"amount_min": "13.97"}).json()["results"]
    assert [o["id"] for o in found] == [order.pk]  # an amount filter takes cents


def test_json_values_of_another_type_are_refused_not_converted(workspace, client_for):
    admin = client_for("admin")
    r = admin.post(
        f"{BASE}/attribute-definitions/", {"key": "tier", "label": "Tier", "type": "string", "description": 0}
    )
    assert r.status_code == 400 and list(r.json()) == ["description"]
    r = admin.post(
        f"{BASE}/connectors/",
        {"active": 0, "channel": "sms", "kind": "file", "url": "https://example.com/x", "secret": "s" * 20},
    )
    assert r.status_code == 400 and "active" in r.json()
    r = admin.put(f"{BASE}/reports/attribution-settings/", {"click_window": "P7D", "view_window": 0})
    assert r.status_code == 400 and list(r.json()) == ["view_window"]  # 0 would have been "0 seconds"
    assert not AttributeDefinition.objects.filter(key="tier").exists()


def test_the_schema_says_what_the_server_checks():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    profiles = {p["name"]: p for p in schema["paths"]["/api/workspaces/{workspace}/profiles/"]["get"]["parameters"]}
    assert profiles["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    assert profiles["age_min"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 150}
    assert all(p["allowEmptyValue"] for p in profiles.values() if p["in"] == "query")
    campaigns = {p["name"]: p for p in schema["paths"]["/api/workspaces/{workspace}/campaigns/"]["get"]["parameters"]}
    assert campaigns["segment"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    body = schema["paths"]["/api/workspaces/{workspace}/segments/"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]  # JSON only
    component = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][component]["additionalProperties"] is False
    upload = schema["paths"]["/api/workspaces/{workspace}/imports/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload


def test_a_form_body_is_refused_where_json_is_expected(workspace, marketer):
    r = marketer.generic("POST", f"{BASE}/segments/", "name=x&kind=static", "application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"


def test_a_date_time_whose_zone_offset_had_seconds_is_written_in_utc(workspace, viewer):
    """Paris was UTC+00:09:21 before 1911: RFC 3339 has no seconds in an offset."""
    profile = make_profile(workspace=workspace)
    answered = datetime(1890, 5, 24, 10, 0, tzinfo=UTC)
    SurveyResponse.objects.create(
        workspace=workspace, profile=profile, survey="s", question="q", answer=1, answered_at=answered
    )
    written = viewer.get(f"{BASE}/survey-responses/").json()["results"][0]["answered_at"]
    assert written == "1890-05-24T10:00:00Z"  # the workspace's zone is Europe/Paris
    recent = viewer.get(f"{BASE}/profiles/{profile.pk}/").json()["created_at"]
    assert recent.endswith(("+01:00", "+02:00"))  # in the workspace's zone, as before
    assert datetime.fromisoformat(written) == answered
