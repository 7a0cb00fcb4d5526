"""Query plans without cliffs: every rule family, plain, negated and inside `any`, with and
without manual members, is planned by PostgreSQL as joins or correlated index probes, never as a
SubPlan that re-reads a whole subquery result for each profile.

The cliff only shows once a subquery's result no longer fits in work_mem (a broad condition at a
few hundred thousand profiles under the default 4 MB). Here work_mem is set to 64 kB, so a few
thousand rows are enough to make it visible: an `IN (subquery)` under OR or NOT is then planned
as a SubPlan over a Materialize that is scanned again for every profile.
"""

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from audiences.services import audience_compute
from customers.models import Event, Order, Profile, SurveyResponse
from privacy.models import ConsentRecord
from segments.models import ManualMember
from segments.selectors import compile_context, definition_members_query, preview_rows, segment_members_query
from segments.services import segment_create

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PEOPLE = 3_000
OUTER_ID = re.compile(r"= customers_profile(_\d+)?\.id\b")
FEMALE = {"field": "gender", "op": "eq", "value": "female"}

FAMILIES = {
    "demographic": {"field": "age", "op": "between", "value": [25, 34]},
    "geographic": {"geo": {"near": [45.76, 4.84], "km": 30}},
    "attitudinal attribute": {"field": "attributes.interests", "op": "contains", "value": "running"},
    "survey answered": {"survey": "nps_2026", "question": "score", "op": "answered", "value": True},
    "survey answer": {"survey": "nps_2026", "question": "score", "op": "gte", "value": 9},
    "survey answer not": {"survey": "nps_2026", "question": "score", "op": "ne", "value": 3},
    "event in a window": {"event": "page_view", "within": "P365D"},
    "event count": {"event": "page_view", "within": "P365D", "count": {"gte": 2}},
    "no event": {"event": "cart_abandoned", "within": "P30D", "count": {"eq": 0}},
    "event last": {"event": "page_view", "last": {"older_than": "P30D"}},
    "event between dates": {"event": "page_view", "between": ["2026-01-01", "2026-06-01"]},
    "orders count": {"orders": {"within": "P365D", "count": {"gte": 2}}},
    "at most one order": {"orders": {"count": {"lte": 1}}},
    "orders spend": {"orders": {"within": "P365D", "amount_sum": {"gte": 100}}},
    "orders spend at most": {"orders": {"amount_sum": {"lte": 100}, "count": {"lte": 3}}},
    "orders average": {"orders": {"amount_avg": {"gte": 30.5}}},
    "first order": {"orders": {"first": {"after": "2026-01-01"}}},
    "line items": {"orders": {"items": {"category": "shoes", "quantity": {"gte": 2}}}},
    "line items at most": {"orders": {"items": {"category": "shoes", "quantity": {"lte": 1}}}},
    "consent": {"consent": {"purpose": "direct_marketing", "channel": "email"}},
    "segment of segments": {"segment": "REF"},
}


def shapes(condition: dict) -> dict[str, dict]:
    return {
        "plain": condition,
        "negated": {"not": condition},
        "inside any": {"any": [condition, FEMALE]},
        "negated inside any": {"any": [{"not": condition}, FEMALE]},
        "not any": {"not": {"any": [condition, FEMALE]}},
        "nested": {"all": [FEMALE, {"any": [condition, {"not": {"all": [condition, FEMALE]}}]}]},
    }


@pytest.fixture
def base(workspace):
    """A few thousand profiles with events, orders, answers and consents, written set-based."""
    from customers.models import AttributeDefinition

    AttributeDefinition.objects.create(workspace=workspace, key="interests", label="Interests", type="string_list")
    Profile.objects.bulk_create(
        Profile(
            workspace=workspace,
            external_id=f"C{i:05d}",
            gender="female" if i % 2 else "male",
            birth_date=date(1960 + i % 45, 1 + i % 12, 1),
            region="Bretagne",
            latitude=45.0 + (i % 100) / 50,
            longitude=4.0 + (i % 70) / 35,
            attributes={"interests": ["running"] if i % 3 else ["wine"]},
        )
        for i in range(PEOPLE)
    )
    people = list(Profile.objects.filter(workspace=workspace).values_list("pk", flat=True))
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            profile_id=pk,
            type="page_view" if i % 4 else "cart_abandoned",
            channel="web",
            occurred_at=NOW - timedelta(days=i % 400),
            idempotency_key=f"e{i}",
        )
        for i, pk in enumerate(people * 3)
    )
    Order.objects.bulk_create(
        Order(
            workspace=workspace,
            profile_id=pk,
            order_id=f"o{i}",
            amount=f"{10 + i % 90}.50",
            currency="EUR",
            ordered_at=NOW - timedelta(days=i % 500),
            channel="web",
            items=[{"sku": f"S{i % 7}", "category": "shoes" if i % 2 else "bags", "quantity": 1 + i % 3}],
        )
        for i, pk in enumerate(people * 2)
    )
    SurveyResponse.objects.bulk_create(
        SurveyResponse(
            workspace=workspace, profile_id=pk, survey="nps_2026", question="score", answer=i % 11, answered_at=NOW
        )
        for i, pk in enumerate(people)
    )
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            workspace=workspace,
            profile_id=pk,
            purpose="direct_marketing",
            channel="email",
            status="granted" if i % 5 else "withdrawn",
            recorded_at=NOW - timedelta(days=i % 30),
            source="test",
        )
        for i, pk in enumerate(people)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    reference = segment_create(workspace=workspace, name="Readers", definition=FAMILIES["event in a window"])
    audience_compute(segment_id=reference.pk)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audiences_audiencemember")
    return {"people": people, "reference": reference.pk}


def with_reference(definition, reference: int):
    if isinstance(definition, dict):
        return {k: (reference if v == "REF" else with_reference(v, reference)) for k, v in definition.items()}
    if isinstance(definition, list):
        return [with_reference(v, reference) for v in definition]
    return definition


def cliffs(queryset) -> list[str]:
    """The SubPlans of the query's plan at work_mem 64 kB that re-read a whole result per profile."""
    query = queryset.query
    sql, params = (query.sql, query.params) if hasattr(query, "params") else query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64kB'")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()[0]
    found: list[str] = []

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    # A hashed SubPlan is named in the expressions that use it ("(hashed SubPlan 2)"): built once.
    text = json.dumps(plan)
    for node in nodes(plan["Plan"]):
        if node.get("Parent Relationship") != "SubPlan" or f"hashed {node['Subplan Name']})" in text:
            continue
        inside = list(nodes(node))
        kinds = {n["Node Type"] for n in inside}
        # Correlated: an index probe keyed by the outer profile's id.
        probes_outer = any(
            OUTER_ID.search(n.get("Index Cond", "") + n.get("Recheck Cond", ""))
            for n in inside
            if "Index" in n["Node Type"] or "Bitmap" in n["Node Type"]
        )
        if kinds & {"Materialize", "Seq Scan"} or not probes_outer:
            found.append(f"{node.get('Subplan Name')} over {sorted(kinds)}")
    return found


def test_no_rule_family_re_reads_a_subquery_for_each_profile(base, workspace):
    ctx = compile_context(workspace=workspace, now=NOW)
    problems = {}
    for family, condition in FAMILIES.items():
        condition = with_reference(condition, base["reference"])
        for shape, definition in shapes(condition).items():
            found = cliffs(preview_rows(members=definition_members_query(definition=definition, ctx=ctx)))
            if found:
                problems[f"{family}: preview, {shape}"] = found
            segment = segment_create(workspace=workspace, name=f"{family} {shape}", definition=definition)
            found = cliffs(segment_members_query(segment=segment, ctx=ctx).values("pk"))
            if found:
                problems[f"{family}: members, {shape}"] = found
            ManualMember.objects.bulk_create(
                ManualMember(workspace=workspace, segment=segment, profile_id=pk, action=action)
                for pk, action in zip(
                    base["people"][: PEOPLE // 2],
                    [ManualMember.Action.INCLUDE, ManualMember.Action.EXCLUDE] * PEOPLE,
                    strict=False,
                )
            )
            found = cliffs(segment_members_query(segment=segment, ctx=ctx).values("pk"))
            if found:
                problems[f"{family}: members with manual members, {shape}"] = found
    assert problems == {}
