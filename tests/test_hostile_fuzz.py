"""Property-based: every write operation of the API, fed hostile values of each class in every field of its
body, answers without a server error, and a refusal writes nothing.

The operations come from the OpenAPI schema (so a new endpoint is covered without editing this file); the
path's ids are real rows of the workspace, so detail actions are reached, not 404s. The classes: JSON nested
past the limit, lone UTF-16 surrogates, NUL characters (in texts and inside JSON values), integers past
64 bits, huge and non-finite floats, very long strings, wrong types, dates and date-times past the accepted
range (absolute periods, ages, year 1, 9999-12-31), and an unknown top-level field.
"""

import json

import hypothesis
import pytest
from django.db import connection
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import strategies as st

from accounts.models import Role
from customers.models import MatchRule
from insights.models import Lookalike, Persona, PersonaRun, PredictiveModel
from insights.rfm import rfm_segments
from tests.factories import make_campaign, make_consent, make_event, make_order, make_profile, make_segment

# Tables a refused request may write to by design: the audit log records requests, axes the login attempts.
LOGS = ("privacy_auditentry", "axes_", "django_session")


def _nested(depth: int):
    node: object = 1
    for _ in range(depth):
        node = {"x": node} if depth % 2 else [node]
    return node


hostile = st.one_of(
    st.integers(min_value=33, max_value=300).map(_nested),  # nested past the 32-level limit
    st.sampled_from(["\udfff", "a\ud800b", "\udc00" * 3]),  # lone surrogates
    st.sampled_from(["\x00", "name\x00", {"k": "\x00"}]),  # NUL characters
    st.integers(min_value=2**63, max_value=2**200).flatmap(lambda n: st.sampled_from([n, -n])),  # past 64 bits
    st.sampled_from([1e308, -1e308, 5e-324]),
    st.integers(min_value=10_000, max_value=200_000).map(lambda n: "x" * n),  # very long strings
    st.sampled_from([None, True, [], {}, [None], {"": None}, "", " ", -1, 0, "P-1D", "2026-02-30", "0706-07-07"]),
    # The second round's classes: NUL inside a JSON value, absolute periods and ages past the date
    # range, date-times at its edges (year 1 read in Paris, the last day plus one), non-finite numbers.
    st.sampled_from(
        [
            {"field": "city", "op": "eq", "value": "Ly\x00on"},
            [{"sku": ["a", "b\x00"]}],
            {"orders": {"after": "9999-12-31"}},
            {"orders": {"between": ["0001-01-01", "9999-12-31"]}},
            {"events": {"type": "page_view", "between": ["0001-01-01", "0001-01-02"]}},
            {"field": "age", "op": "gte", "value": 2100},
            {"field": "age", "op": "lte", "value": 5000},
            {"all": [{"field": "birth_date", "op": "lt", "value": "0001-01-01"}]},
            "0001-01-01T00:05:00",
            "0001-01-01",
            "9999-12-31",
            "9999-12-31T23:59:59-05:00",
            "9999-12-31T23:59:59.999999",
            float("inf"),
            float("nan"),
        ]
    ),
)


def _write_operations() -> list[tuple[str, str, list[str]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    found = []
    for path, item in schema["paths"].items():
        for method in ("post", "put", "patch"):
            operation = item.get(method)
            if operation is None or "/auth/" in path:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema", {})
            ref = body.get("$ref", "")
            properties = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
            found.append((path, method, sorted(properties)))
    return found


OPERATIONS = _write_operations()


def _row_counts() -> dict[str, int]:
    counts = {}
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table.startswith(LOGS) or table.startswith("django_"):
                continue
            cursor.execute(f"SELECT COUNT(*) FROM {qn(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


@pytest.fixture
def world(workspace, client_for):
    """A row of every kind the write operations act on, for the ids of their paths (made through the API
    where it can, so that they are what a client makes)."""
    profile = make_profile(workspace=workspace, country="FR", email="ann@example.com")
    make_consent(profile=profile)
    make_event(profile=profile)
    make_order(profile=profile)
    segment = make_segment(workspace=workspace)
    campaign = make_campaign(workspace=workspace, segment=segment)
    admin = client_for(Role.ADMIN)
    base = f"/api/workspaces/{workspace.slug}/"
    for path, body in (
        ("attribute-definitions/", {"key": "tier", "label": "Tier", "type": "string"}),
        ("connectors/", {"channel": "email", "kind": "file"}),
        ("frequency-caps/", {"channel": "email", "max_touches": 3, "window": "P7D"}),
        ("privacy-requests/", {"kind": "access", "profile": profile.pk}),
        (
            "rules/",
            {
                "name": "Cut poor ROAS",
                "campaign": campaign.pk,
                "conditions": [{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "4"}],
                "basis": "reported",
                "min_impressions": 1000,
                "action": "pause",
            },
        ),
    ):
        response = admin.post(base + path, body, format="json")
        assert response.status_code == 201, (path, response.content)
    # Programmatic: a creative, and a line item on a display campaign's target.
    display = make_campaign(workspace=workspace, segment=segment, channels=("display",))
    creative = admin.post(
        base + "programmatic/creatives/",
        {
            "name": "Banner",
            "width": 300,
            "height": 250,
            "markup": "<a href='{{landing_url}}'>Sale</a>",
            "landing_url": "https://shop.example/sale",
            "advertiser_domain": "shop.example",
        },
        format="json",
    )
    assert creative.status_code == 201, creative.content
    line_item = admin.post(
        base + "programmatic/line-items/",
        {
            "target": display.targets.get().pk,
            "base_cpm": "2.5",
            "min_cpm": "1",
            "max_cpm": "6",
            "creatives": [creative.json()["id"]],
        },
        format="json",
    )
    assert line_item.status_code == 201, line_item.content
    # What insights learns: the named RFM segments, a persona, a model and lookalikes of the segment.
    rfm_segments(workspace=workspace)
    run = PersonaRun.objects.create(workspace=workspace, version=1, k=1, status="ready")
    Persona.objects.create(workspace=workspace, number=1, name="Everyone", run=run)
    PredictiveModel.objects.create(workspace=workspace, kind="membership", name="Everyone", segment=segment)
    Lookalike.objects.create(workspace=workspace, seed=segment)
    # A workspace's own match rule, to address /match-rules/{id}/.
    MatchRule.objects.create(workspace=workspace, type="device", strength="weak", priority=20, max_profiles=3)
    return workspace


def _concrete(path: str, workspace) -> str | None:
    """The path with the workspace's slug and the id of a real row of the view's model."""
    path = path.replace("{workspace}", workspace.slug).replace("{slug}", workspace.slug)
    if "{" not in path:
        return path
    probe = path
    for name in ("{id}", "{pk}"):
        probe = probe.replace(name, "1")
    try:
        view = resolve(probe).func
    except Exception:
        return None
    model = getattr(getattr(view, "cls", None), "model", None)
    row = model._default_manager.filter(workspace=workspace).order_by("pk").first() if model else None
    if row is None:
        return None
    for name in ("{id}", "{pk}"):
        path = path.replace(name, str(row.pk))
    return None if "{" in path else path


@pytest.mark.parametrize(("path", "method", "fields"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_hostile_values_in_every_field_are_refused_without_a_server_error_or_a_write(
    path, method, fields, world, client_for
):
    admin = client_for(Role.ADMIN)
    target = _concrete(path, world)
    if target is None:
        pytest.skip(f"no row to address {path}")

    @hypothesis.settings(
        max_examples=6,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @hypothesis.given(
        values=st.fixed_dictionaries({name: hostile for name in fields}),
        unknown=st.booleans(),
    )
    def check(values, unknown):
        body = {**values, **({"not_a_field_of_this_endpoint": 1} if unknown else {})}
        before = _row_counts()
        response = getattr(admin, method)(target, json.dumps(body), content_type="application/json")
        assert response.status_code < 500, (method, target, body, response.content[:500])
        if response.status_code >= 400:
            assert _row_counts() == before, (method, target, response.status_code)

    check()
