"""The OpenAPI schema: it builds cleanly, is served with its docs, and the API keeps to it.

The fuzz test (schemathesis) sends generated requests, valid and invalid, to every
operation of the schema, as an admin of a workspace holding a little of every kind
of data, and checks that no request makes a server error, that every documented
response matches its schema, and that a request the schema calls valid is not
refused unless the refusal depends on the rows it meets (every limit is stated).
"""

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Membership, Role
from core.serializers import DURATION_INPUT_PATTERN
from customers import services
from customers.models import AttributeDefinition, Event, Identity, ImportJob, Order, Profile, SurveyResponse
from privacy.models import ConsentRecord
from tests.factories import make_consent, make_event, make_order, make_profile, make_user, make_workspace, token_for

ROOT = Path(__file__).resolve().parent.parent
SLUG = "maison"
# Generated requests per operation and generation mode (positive, negative) in the fuzzing phase;
# the examples and coverage phases add their own (boundary values, missing fields, wrong types).
MAX_EXAMPLES = 6


# --- (a) the schema itself ------------------------------------------------------------------------


def test_schema_builds_without_warnings_or_errors(tmp_path):
    """drf-spectacular reports an unresolvable field or serializer, or an enum name collision, as a warning.

    Run in a fresh process: the generator keeps its warnings in a process-wide cache and prints each once.
    """
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yaml"),
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Warning" not in result.stderr and "Error" not in result.stderr, result.stderr
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/workspaces/{workspace}/profiles/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert docs["Content-Type"].startswith("text/html")
    assert b"swagger-ui" in docs.content


def _unbounded(node, path: str, components: dict, seen: frozenset) -> list[str]:
    """The texts without a maximum length and the lists without a maximum count, in a request body."""
    if not isinstance(node, dict) or node.get("readOnly"):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else _unbounded(components[name], name, components, seen | {name})
    found = []
    for key in ("allOf", "anyOf", "oneOf"):
        for variant in node.get(key, []):
            found += _unbounded(variant, path, components, seen)
    if node.get("type") == "string" and not {"maxLength", "enum", "format"} & set(node):
        found.append(f"{path}: a text without maxLength")
    if node.get("type") == "array":
        if "maxItems" not in node:
            found.append(f"{path}: a list without maxItems")
        found += _unbounded(node.get("items", {}), f"{path}[]", components, seen)
    for name, child in node.get("properties", {}).items():
        found += _unbounded(child, f"{path}.{name}", components, seen)
    if isinstance(node.get("additionalProperties"), dict):
        found += _unbounded(node["additionalProperties"], f"{path}.*", components, seen)
    return found


def test_every_text_and_list_a_client_sends_has_a_maximum_the_schema_states(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    found = set()
    for item in schema["paths"].values():
        for method in ("post", "put", "patch"):
            body = item.get(method, {}).get("requestBody", {}).get("content", {}).get("application/json", {})
            found.update(_unbounded(body.get("schema", {}), method, components, frozenset()))
    assert sorted(found) == []


# --- (b) fuzzing every operation ------------------------------------------------------------------


@dataclass
class Seeded:
    """The ids of the rows created for the run, by the resource segment of their path."""

    ids: dict[str, list[int]] = field(default_factory=dict)
    # DELETE and merge take these, so that the profiles above keep their history for the other requests.
    disposable_profiles: list[int] = field(default_factory=list)

    def pick(self, resource: str, generated: int) -> int | None:
        ids = self.ids.get(resource)
        if not ids:
            return None
        return ids[generated % len(ids)]


@pytest.fixture
def seeded(transactional_db, eager_tasks) -> tuple[str, Seeded]:
    """An admin of `maison` with a few rows of every kind, and a rival workspace with its own."""
    # An import runs in-process, so that a crash of the import surfaces as the request's error
    # (and nothing is left queued on the shared broker).
    workspace = make_workspace(slug=SLUG)
    admin = make_user(workspace=workspace, role=Role.ADMIN)
    make_user(workspace=workspace, role=Role.VIEWER)
    seeded = Seeded()
    AttributeDefinition.objects.create(workspace=workspace, key="interests", label="Interests", type="string_list")
    AttributeDefinition.objects.create(workspace=workspace, key="score", label="Score", type="number")
    AttributeDefinition.objects.create(workspace=workspace, key="vip", label="VIP", type="boolean")
    AttributeDefinition.objects.create(workspace=workspace, key="since", label="Since", type="date")
    AttributeDefinition.objects.create(workspace=workspace, key="nickname", label="Nickname", type="string")
    now = timezone.now()
    profiles = [
        make_profile(
            workspace=workspace,
            external_id=f"C{n}",
            first_name=f"Camille{n}",
            last_name="Martin",
            email=f"camille{n}@example.com",
            birth_date=(now - timedelta(days=365 * (20 + 7 * n))).date(),
            city="Lyon",
            postal_code="69001",
            country="FR",
            latitude=45.76,
            longitude=4.84,
            attributes={"interests": ["running"], "score": n, "vip": n % 2 == 0},
            lifecycle_stage="customer" if n % 2 else "prospect",
        )
        for n in range(1, 6)
    ]
    for n, profile in enumerate(profiles):
        Identity.objects.create(workspace=workspace, profile=profile, type="cookie", value=f"ck-{n}")
        for k in range(3):
            make_event(profile=profile, type="page_view" if k else "purchase", occurred_at=now - timedelta(hours=k))
        make_order(profile=profile, amount=f"{10 + n}.50", items=[{"sku": "A1", "quantity": 1}])
        make_consent(profile=profile, recorded_at=now - timedelta(days=2))
        make_consent(profile=profile, status="withdrawn" if n % 2 else "granted", recorded_at=now - timedelta(days=1))
        make_consent(profile=profile, purpose="profiling", channel="web")
        SurveyResponse.objects.create(
            workspace=workspace, profile=profile, survey="nps", question="score", answer=9, answered_at=now
        )
    services.import_job_create(
        workspace=workspace,
        kind="profiles",
        filename="prospects.csv",
        content=b"external_id;first_name;email;birth_date\nI1;Ana;ana@example.com;1990-01-02\nI2;Bo;;not-a-date\n",
        by=admin,
    )
    # Rows of another workspace: never listed, never reachable through `maison`.
    rival = make_workspace(slug="rival")
    make_order(profile=make_profile(workspace=rival, external_id="R1"))

    seeded.ids = {
        "profiles": [p.pk for p in profiles],
        "identities": list(Identity.objects.filter(workspace=workspace).values_list("pk", flat=True)),
        "attribute-definitions": list(
            AttributeDefinition.objects.filter(workspace=workspace).values_list("pk", flat=True)
        ),
        "events": list(Event.objects.filter(workspace=workspace).values_list("pk", flat=True)),
        "orders": list(Order.objects.filter(workspace=workspace).values_list("pk", flat=True)),
        "survey-responses": list(SurveyResponse.objects.filter(workspace=workspace).values_list("pk", flat=True)),
        "consents": list(ConsentRecord.objects.filter(workspace=workspace).values_list("pk", flat=True)),
        "imports": list(ImportJob.objects.filter(workspace=workspace).values_list("pk", flat=True)),
        "members": list(Membership.objects.filter(workspace=workspace).values_list("pk", flat=True)),
    }
    seeded.disposable_profiles = [make_profile(workspace=workspace, external_id=f"D{n}").pk for n in range(40)]
    seeded.ids["profiles"] += [Profile.objects.get(external_id="I1", workspace=workspace).pk]
    return token_for(admin), seeded


_RESOURCE = re.compile(r"^/api/workspaces/\{workspace\}/([a-z-]+)/")

# Loaded once, when the module is collected (building the schema needs no database), so that each
# operation is a test of its own. (`schemathesis.pytest.from_fixture` would load it in a fixture, but
# schemathesis 4.32.5 sets `request.node._nodeid`, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    get_wsgi_application(),
    config=SchemathesisConfig.from_dict(
        {
            "parameters": {"path.workspace": SLUG, "path.slug": SLUG},
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "database": "none",  # no .hypothesis/ folder in the project
                # The test sends the admin's token; no generated Authorization header or session cookie.
                "with-security-parameters": False,
            },
        }
    ),
)


def _point_at_real_rows(case, data: Seeded) -> None:
    """A generated id is mostly a row that does not exist (404): point three in four at real rows."""
    match = _RESOURCE.match(case.operation.path)
    generated = (case.path_parameters or {}).get("id")
    if match and isinstance(generated, int) and not isinstance(generated, bool) and generated % 4 != 3:
        if case.method.upper() == "DELETE" and match.group(1) == "profiles":
            real = data.disposable_profiles[generated % len(data.disposable_profiles)]
        else:
            real = data.pick(match.group(1), generated)
        if real is not None:
            case.path_parameters["id"] = real
    if isinstance(case.body, dict):
        for name, pool in (("profile", data.ids["profiles"]), ("other", data.disposable_profiles)):
            value = case.body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63 and value % 4 != 3:
                case.body[name] = pool[value % len(pool)]  # an out-of-range id stays: a negative case


# Batch ingestion validates each item on its own: a batch with a bad item is answered 200 with that
# item's rejection (and the others stored), by design, so a schema-violating *item* is not a refusal
# of the request. The batch envelope itself (`items` missing, too many, unknown fields) still is.
PER_ITEM_VALIDATION = re.compile(r"^/api/workspaces/\{workspace\}/ingest/")


# A valid request (by the schema) may still be refused because of the rows it meets: a row that does
# not exist, is already there, is used elsewhere, is in another state, has no audience or scores yet,
# a budget already spent, a rule naming what the workspace does not have. Every other refusal of a
# request the schema calls valid means a limit the schema does not state.
DATA_STATE_CODES = {
    "does_not_exist",
    "unique",
    "unique_together",  # a row with the same key exists (reported with another refusal: a 400)
    "protected",
    "conflict",
    "illegal_transition",
    "final",
    "ended",
    "not_active",
    "not_open",
    "not_editable",
    "not_static",
    "not_trained",
    "no_audience",
    "no_scores",
    "empty_audience",
    "unreachable",
    "unknown_segment",
    "unknown_profile",
    "same_profile",
    "erased",
    "cycle",
    "nothing_to_withdraw",
    "no_changes",
    "already_extended",
    "budget_exceeded",
    "daily_budget_exceeded",
    "below_spent",
    "currency_mismatch",
    "idempotency_conflict",
    "out_of_schedule",
    "invalid_rule",  # a field or attribute the workspace does not have, an operator its type does not take
    "invalid_channel",  # a channel the campaign does not deliver on
    "wrong_kind",
    "forbidden",  # plain identifiers for a role that may not see them
    "future",  # a moment after now: the schema cannot say "now"
    "immutable",
    "unknown_attribute",  # an attribute key the workspace has not defined
    "profile_required",  # an access, rectification or erasure names a profile; only an objection may not
    "errors_truncated",  # not a refusal: the count of the errors past the first 100
}
# Validity no schema can state: a phone number libphonenumber recognises, an e-mail Django's validator
# takes, the contents of an uploaded file, a time zone the IANA database names.
SEMANTIC_CODES = {"invalid_phone", "invalid_email", "invalid_identifier", "encoding", "invalid_time_zone"}
# Relations between fields OpenAPI 3.0 cannot state: a campaign's end after its start, a latitude
# with its longitude, a dynamic segment with its rules.
SEMANTIC_CODES |= {"end_before_start", "coordinates_pair", "rules_required", "secret_required", "too_short"}
# What a rule's action needs (a change for a budget action, an address for a notification).
SEMANTIC_CODES |= {"change_required", "notify_target_required", "url_required"}
# Distinct values of a list by one of their keys (a survey question's options): beyond uniqueItems.
SEMANTIC_CODES |= {"duplicate_option"}
# A line item's relations: its bounds in order, a whole frequency cap, day parts that start before
# they end, and a target of a display campaign (programmatic).
SEMANTIC_CODES |= {"min_above_max", "cap_incomplete", "dayparts", "not_display"}
# An experiment's sample size: the baseline rate plus the uplift stays a rate; an A/B weight needs
# a target on a segment.
SEMANTIC_CODES |= {"rate_out_of_range", "split_triggered"}
# Two ways of paging a list at once (a page number and a cursor), and a cursor over another order than
# the id: the parameters are each valid, not together.
SEMANTIC_CODES |= {"page_and_cursor", "cursor_ordering"}


def _codes(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["code"]} if isinstance(node.get("code"), str) else set()
        return found.union(*(_codes(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_codes(item) for item in node))
    return set()


def valid_requests_are_accepted(ctx, response, case) -> None:
    """A request generated as valid is not refused with a 400, unless the refusal depends on data."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    if (case.media_type or "").startswith("multipart/") and set(response.json()) <= {"file"}:
        return None  # a generated multipart body cannot carry a real file, nor its contents
    try:
        codes = _codes(response.json())
    except ValueError:
        codes = set()
    tolerated = DATA_STATE_CODES | SEMANTIC_CODES | _duration_bounds(case, response) | _int64(response)
    tolerated |= _nul_in_a_described_family(response)
    if not codes or not codes <= tolerated | _birth_date(response):
        raise AssertionError(f"A request valid by the schema was refused: {response.text[:600]}")
    return None


# The limits every JSON body obeys (core.payloads): an integer beyond 64 bits anywhere in it, a free-form
# value (a rectification's changes) or a typed one, is refused with this message. The schema states the
# limit in words for free-form JSON (core.schema.JSON_VALUE), which a generator cannot read.
INT64_REFUSAL = "This number is too large (64-bit integers at most)."


def _int64(response) -> set[str]:
    """out_of_range, when every refusal of the body is core.payloads' 64-bit limit."""
    try:
        body = response.json()
    except ValueError:
        return set()
    messages = [
        error.get("message")
        for errors in (body.values() if isinstance(body, dict) else [])
        for error in (errors if isinstance(errors, list) else [])
        if isinstance(error, dict)
    ]
    return {"out_of_range"} if messages and all(m == INT64_REFUSAL for m in messages) else set()


def _nul_in_a_described_family(response) -> set[str]:
    """null_characters_not_allowed, when the NUL is inside the value of a criterion family that the
    schema describes without a shape (`{"persona": ...}`): no JSON Schema keeps NUL out of any JSON."""
    from segments.criteria import criteria

    described = {key for key, family in criteria().items() if family.schema is None}
    text = response.text
    if "null_characters_not_allowed" not in text:
        return set()
    paths = re.findall(r"\(at ([^)]*)\)", text)
    if paths and all(any(f".{key}" in path or path.startswith(key) for key in described) for path in paths):
        return {"null_characters_not_allowed"}
    return set()


def _birth_date(response) -> set[str]:
    """out_of_range, when only the birth date is refused so: it must be before today, which a schema
    cannot state (the date changes every day)."""
    try:
        body = response.json()
    except ValueError:
        return set()
    if not isinstance(body, dict):
        return set()
    fields = {
        field
        for field, errors in body.items()
        for error in (errors if isinstance(errors, list) else [])
        if isinstance(error, dict) and error.get("code") == "out_of_range"
    }
    return {"out_of_range"} if fields == {"birth_date"} else set()


DURATION = re.compile(DURATION_INPUT_PATTERN)


def _duration_bounds(case, response) -> set[str]:
    """min_value / max_value of a duration: the schema states them in words (x-bounds), as JSON Schema
    cannot compare durations; tolerated only when every field so refused was sent a duration."""
    body = case.body if isinstance(case.body, dict) else {}
    refused = {
        field
        for field, problems in (response.json() or {}).items()
        if isinstance(problems, list) and any(p.get("code") in ("min_value", "max_value") for p in problems)
    }
    durations = all(isinstance(body.get(field), str) and DURATION.match(body[field]) for field in refused)
    return {"min_value", "max_value"} if refused and durations else set()


def _checks_for(case) -> list:
    checks = [
        not_a_server_error,
        status_code_conformance,
        response_schema_conformance,
        content_type_conformance,
        valid_requests_are_accepted,
    ]
    if not PER_ITEM_VALIDATION.match(case.operation.path):
        checks.append(negative_data_rejection)
    return checks


# Marked slow: bin/test runs it on PostgreSQL only, not again in the embedded run.
@pytest.mark.slow
@schema.parametrize()
# `seeded` is set up once per operation: the generated requests of an operation share its rows.
# Derandomized: CI replays the same generated requests every run, so that its verdict does not depend
# on luck; CIBLE_SCHEMA_EXPLORE=1 draws new ones to explore.
@hypothesis.settings(
    # the rule language's union and the stated patterns make hypothesis discard many drafts: expected
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.filter_too_much,
        hypothesis.HealthCheck.too_slow,
    ],
    derandomize=not os.environ.get("CIBLE_SCHEMA_EXPLORE"),
)
def test_api_conforms_to_its_schema(case, seeded):
    """No generated request makes a 5xx, every status answered is one the schema documents for the
    operation (its errors included: core.schema), every response matches its schema, and a request
    the schema says is invalid is refused (4xx), not stored, and one it says is valid is accepted
    unless the rows it meets refuse it (valid_requests_are_accepted)."""
    token, data = seeded
    _point_at_real_rows(case, data)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=_checks_for(case),
    )
