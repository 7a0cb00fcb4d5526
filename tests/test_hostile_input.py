"""Hostile input is a 400 (or a 409) naming where it is, never a server error, and writes nothing.

The JSON limits hold for every JSON body the API parses and every JSON field of the admin
(core.payloads): nesting deeper than 32 levels, a lone UTF-16 surrogate, an integer past 64 bits.
"""

import json

import pytest
from django.urls import reverse

from accounts.models import Role
from customers.models import Profile
from segments.models import Segment
from tests.factories import make_campaign, make_segment, make_user


def url(name: str, **kwargs) -> str:
    return reverse(name, kwargs={"workspace": "maison", **kwargs})


def post_raw(client, path: str, body: str):
    return client.generic("POST", path, body, content_type="application/json")


def nested(depth: int) -> dict:
    node: dict = {"field": "age", "op": "gte", "value": 18}
    for _ in range(depth):
        node = {"all": [node]}
    return node


@pytest.mark.parametrize("depth", [40, 100_000])
def test_a_body_nested_too_deep_is_refused_whatever_its_depth(marketer, depth):
    body = '{"name": "Deep", "definition": ' + '{"all": [' * depth + "{}" + "]}" * depth + "}"
    r = post_raw(marketer, url("segment-list"), body)
    assert r.status_code == 400, r.content
    (field, errors), *_ = r.json().items()
    assert errors[0]["code"] == "too_deep"
    assert field.startswith("definition") or field == "non_field_errors"
    assert not Segment.objects.exists()


def test_nested_event_properties_past_the_limit_are_refused_by_path(marketer, workspace):
    properties: dict = {"leaf": 1}
    for _ in range(40):
        properties = {"x": properties}
    items = [
        {
            "idempotency_key": "e1",
            "external_id": "C1",
            "type": "page_view",
            "channel": "web",
            "occurred_at": "2026-11-01T10:00:00Z",
            "properties": properties,
        }
    ]
    r = marketer.post(url("ingest-events"), {"items": items}, format="json")
    assert r.status_code == 400
    field = next(iter(r.json()))
    assert field.startswith("items[0].properties.x.x")
    assert r.json()[field][0]["code"] == "too_deep"
    assert not Profile.objects.filter(external_id="C1").exists()


def test_a_lone_surrogate_in_an_ingested_profile_is_refused_by_path(marketer, workspace):
    body = json.dumps({"items": [{"idempotency_key": "p1", "external_id": "C1", "first_name": "Ana\udfff"}]})
    assert "\\udfff" in body
    r = post_raw(marketer, url("ingest-profiles"), body)
    assert r.status_code == 400, r.content
    assert r.json() == {
        "items[0].first_name": [{"message": "Not valid Unicode text (a lone surrogate).", "code": "invalid"}]
    }
    assert not Profile.objects.exists()


def test_a_lone_surrogate_in_a_key_is_refused_too(marketer):
    body = json.dumps({"name": "S", "definition": {"field\udfff": "age", "op": "gte", "value": 1}})
    r = post_raw(marketer, url("segment-list"), body)
    assert r.status_code == 400
    assert next(iter(r.json().values()))[0]["code"] == "invalid"


def test_an_integer_past_64_bits_in_a_rule_is_refused_by_path(marketer):
    body = (
        '{"name": "Huge", "definition": {"field": "age", "op": "between", "value": [-1'
        + "0" * 30
        + ", 1"
        + "0" * 30
        + "]}}"
    )
    r = post_raw(marketer, url("segment-list"), body)
    assert r.status_code == 400, r.content
    assert r.json() == {
        "definition.value[1]": [
            {"message": "This number is too large (64-bit integers at most).", "code": "out_of_range"}
        ]
    }
    preview = post_raw(marketer, url("segment-preview-definition"), body.replace('"name": "Huge", ', ""))
    assert preview.status_code == 400
    assert not Segment.objects.exists()


def test_the_admin_refuses_a_definition_nested_too_deep_with_a_form_error(client, workspace):
    user = make_user(workspace=workspace, role=Role.MARKETER)
    client.force_login(user)
    r = client.post(
        reverse("admin:segments_segment_add"),
        {
            "workspace": workspace.pk,
            "name": "Deep",
            "kind": "dynamic",
            "definition": json.dumps(nested(40)),
            "refresh_every": "",
        },
    )
    assert r.status_code == 200  # the form again, with the error
    assert "Nested deeper than 32 levels" in r.content.decode()
    very_deep = '{"all": [' * 100_000 + "{}" + "]}" * 100_000
    r = client.post(
        reverse("admin:segments_segment_add"),
        {"workspace": workspace.pk, "name": "Deeper", "kind": "dynamic", "definition": very_deep},
    )
    assert r.status_code == 200 and "nested deeper than 32 levels" in r.content.decode()
    assert not Segment.objects.exists()


def test_deleting_a_segment_a_campaign_uses_is_a_409_naming_the_campaign(marketer, workspace):
    segment = make_segment(workspace=workspace, name="Buyers", compute=False)
    make_campaign(workspace=workspace, segment=segment, name="Soldes d'hiver")
    r = marketer.delete(url("segment-detail", pk=segment.pk))
    assert r.status_code == 409
    assert r.json() == {
        "non_field_errors": [
            {
                "message": "Used by campaigns: Soldes d'hiver. Remove it from their targets first.",
                "code": "protected",
            }
        ]
    }
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_every_list_has_a_stable_order_so_pages_never_repeat_or_skip_a_row(workspace, client_for):
    from datetime import timedelta

    from campaigns.models import FrequencyCap

    manager = client_for(Role.ADMIN)
    for days, channel in ((1, "email"), (7, "sms"), (30, "")):
        FrequencyCap.objects.create(workspace=workspace, channel=channel, window=timedelta(days=days), max_touches=3)
    ids = sorted(FrequencyCap.objects.values_list("pk", flat=True))
    first = manager.get(url("frequency-cap-list"), {"page_size": 2}).json()
    second = manager.get(first["next"]).json()
    assert [row["id"] for row in first["results"] + second["results"]] == ids


def test_the_schema_says_a_rules_run_times_may_be_empty():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    rule = schema["components"]["schemas"]["RuleIO"]["properties"]
    assert rule["next_run_at"]["nullable"] and rule["last_run_at"]["nullable"]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("segment-list", {"name": "S", "definition": {"field": "age", "op": "gte", "value": 1}, "refresh": "P1D"}),
        ("segment-preview-definition", {"definition": {"field": "age", "op": "gte", "value": 1}, "sample": 3}),
        ("campaign-list", {"name": "C", "channels": ["email"], "budget": "100"}),
        ("frequency-cap-list", {"channel": "email", "window": "P7D", "max_touches": 2, "maximum": 3}),
    ],
)
def test_an_unknown_top_level_field_is_refused_and_nothing_is_written(client_for, name, body):
    from campaigns.models import Campaign, FrequencyCap

    admin_client = client_for(Role.ADMIN)
    r = admin_client.post(url(name), body, format="json")
    assert r.status_code == 400, r.content
    unknown = {field for field, errors in r.json().items() if errors[0]["code"] == "unknown_field"}
    assert unknown == {"refresh", "sample", "budget", "maximum"} & set(body)
    assert not Segment.objects.exists() and not Campaign.objects.exists() and not FrequencyCap.objects.exists()


def test_error_messages_quote_values_as_json(marketer):
    r = marketer.post(
        url("segment-list"),
        {"name": "S", "definition": {"field": "gender", "op": "eq", "value": "robot"}},
        format="json",
    )
    assert r.status_code == 400
    assert r.json()["definition"][0]["message"].startswith('definition.value: "robot" is not one of')


def test_patching_a_campaigns_status_points_to_the_actions_and_changes_nothing(marketer, workspace):
    from campaigns.models import Campaign

    campaign = make_campaign(workspace=workspace, name="Draft")
    r = marketer.patch(url("campaign-detail", pk=campaign.pk), {"status": "active"}, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "status": [
            {
                "message": "Read-only here: it changes through the activate/, pause/, resume/ and cancel/ actions.",
                "code": "read_only",
            }
        ]
    }
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_nothing_may_be_spent_today_before_the_campaign_starts(marketer, workspace):
    from datetime import timedelta

    from django.utils import timezone

    later = make_campaign(
        workspace=workspace,
        name="Next week",
        starts_at=timezone.now() + timedelta(days=7),
        ends_at=timezone.now() + timedelta(days=30),
        budget_total="1000.00",
        budget_daily="100.00",
    )
    r = marketer.get(url("campaign-detail", pk=later.pk))
    assert r.status_code == 200 and r.json()["spend_allowed_today"] == "0.00"


def test_an_api_url_that_matches_no_route_answers_json(marketer):
    r = marketer.get("/api/workspaces/maison/campaigns/0.5/forecast/")
    assert (r.status_code, r["Content-Type"], r.json()) == (
        404,
        "application/json",
        {"detail": "Not found.", "code": "not_found"},
    )


def test_a_request_django_refuses_before_the_view_answers_json_under_api(marketer, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = {f"f{n}": "1" for n in range(50)}
    r = marketer.post("/api/workspaces/maison/imports/", fields, format="multipart")
    assert r.status_code == 400 and r["Content-Type"] == "application/json"


def test_the_api_reads_json_only_outside_file_uploads(marketer):
    """A form body cannot say null, a boolean or an empty list, and "" would be read as a value."""
    r = marketer.generic(
        "POST", "/api/workspaces/maison/segments/", "name=x&rules=", "application/x-www-form-urlencoded"
    )
    assert r.status_code == 415 and r["Content-Type"] == "application/json"
    r = marketer.post("/api/workspaces/maison/segments/", {"name": "x"}, format="multipart")
    assert r.status_code == 415


def test_every_operation_documents_its_error_answers():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            documented = set(operation["responses"])
            assert {"401", "403", "429"} <= documented, (method, path)
            if method in ("post", "put", "patch"):
                assert {"400", "409", "413", "415"} <= documented, (method, path)
            if "{" in path:
                assert "404" in documented, (method, path)


@pytest.mark.parametrize("number", ["9223372036854775808", "18446744073709551615", "18446744073709551616"])
def test_an_integer_just_past_64_bits_is_refused_as_on_the_standard_parser(marketer, number):
    # orjson would read the last two as an unsigned int and as a float: the body takes the standard path.
    body = '{"name": "Big", "definition": {"field": "age", "op": "gte", "value": ' + number + "}}"
    r = post_raw(marketer, url("segment-list"), body)
    assert r.status_code == 400, r.content
    assert r.json()["definition.value"][0]["code"] == "out_of_range"
    assert not Segment.objects.exists()


def test_long_digit_runs_inside_texts_are_accepted(marketer, workspace):
    external_id = "9" * 40
    items = [{"idempotency_key": "k" + "1" * 30, "external_id": external_id, "first_name": "Zoé"}]
    r = post_raw(marketer, url("ingest-profiles"), json.dumps({"items": items}))
    assert r.status_code == 200, r.content
    assert r.json()["created"] == 1
    assert Profile.objects.get(external_id=external_id).first_name == "Zoé"


@pytest.mark.parametrize("body", ['{"name": NaN}', '\ufeff{"name": "BOM"}', '{"name": "x",}', "[1e999]"])
def test_what_the_fast_parser_refuses_gets_the_standard_answer(marketer, body):
    r = post_raw(marketer, url("segment-list"), body)
    assert r.status_code == 400, r.content
    assert not Segment.objects.exists()


def test_a_nul_in_an_ingested_event_is_refused_and_a_backslash_u0000_text_is_not_one(marketer, workspace):
    def event(key: str, properties: dict) -> dict:
        return {
            "idempotency_key": key,
            "external_id": "C1",
            "type": "page_view",
            "channel": "web",
            "occurred_at": "2026-11-01T10:00:00Z",
            "properties": properties,
        }

    items = [event("nul", {"path": "/a\u0000b"}), event("text", {"path": "C:\\u0000"})]
    r = marketer.post(url("ingest-events"), {"items": items}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["created"] == 1
    assert r.json()["rejected"] == [
        {
            "index": 0,
            "errors": {
                "properties": [{"message": "NUL characters are not allowed.", "code": "null_characters_not_allowed"}]
            },
        }
    ]
    assert Profile.objects.get(external_id="C1").events.get().properties == {"path": "C:\\u0000"}
