"""Identical requests at the same moment, against a live server: for every unique key a client can
collide on, one request writes the row and the others get a 409 naming the field (the database's
constraint decides, not a check made before the write), never a 500; an idempotent write reports
what happened to the row."""

import threading
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from campaigns.models import Campaign, Connector, FrequencyCap
from customers.models import AttributeDefinition, Identity, Profile
from segments.models import Segment
from tests.factories import make_profile, make_user, token_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PARALLEL = 6


def together(live_server, token: str, method: str, path: str, body, times: int = PARALLEL) -> list:
    """`times` requests released at once (the same body, or `body(index)`); their responses."""
    barrier = threading.Barrier(times)
    answers: list = [None] * times

    def send(index: int) -> None:
        barrier.wait()
        answers[index] = requests.request(
            method,
            f"{live_server.url}/api/workspaces/maison/{path}",
            json=body(index) if callable(body) else body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    connection.close()
    return answers


@pytest.fixture
def admin_token(workspace):
    return token_for(make_user(workspace=workspace, role=Role.ADMIN))


def _one_created_rest_conflicts(answers, field: str) -> None:
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * (len(answers) - 1), [(r.status_code, r.text[:200]) for r in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()[field][0]["code"] == "unique", answer.text


@pytest.mark.parametrize(
    ("path", "body", "field", "model"),
    [
        ("connectors/", {"channel": "email", "kind": "file"}, "channel", Connector),
        ("frequency-caps/", {"channel": "email", "max_touches": 2, "window": "P7D"}, "window", FrequencyCap),
        ("attribute-definitions/", {"key": "tier", "label": "Tier", "type": "string"}, "key", AttributeDefinition),
        ("profiles/", {"external_id": "SAME-1"}, "external_id", Profile),
        (
            "segments/",
            {"name": "Lyon", "definition": {"field": "city", "op": "eq", "value": "Lyon"}},
            "name",
            Segment,
        ),
    ],
)
def test_identical_creates_at_once_write_one_row_and_answer_409(live_server, admin_token, path, body, field, model):
    answers = together(live_server, admin_token, "POST", path, body)
    _one_created_rest_conflicts(answers, field)
    assert model.objects.count() == 1


def test_one_identifier_added_at_once_to_a_person(live_server, admin_token, workspace):
    profile = make_profile(workspace=workspace, external_id="C1")
    body = {"profile": profile.pk, "type": "email", "value": "ana@example.com"}
    answers = together(live_server, admin_token, "POST", "identities/", body)
    _one_created_rest_conflicts(answers, "value")
    assert Identity.objects.filter(type="email", value="ana@example.com").count() == 1


def test_one_campaign_name_at_once(live_server, admin_token, workspace):
    start = timezone.now() + timedelta(days=1)
    body = {
        "name": "Winter",
        "channels": ["email"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(days=10)).isoformat(),
    }
    answers = together(live_server, admin_token, "POST", "campaigns/", body)
    _one_created_rest_conflicts(answers, "name")
    assert Campaign.objects.count() == 1


def test_concurrent_upserts_of_one_person_report_one_creation(live_server, admin_token, workspace):
    for trial in range(5):

        def item(index: int, trial=trial) -> dict:
            return {"items": [{"idempotency_key": f"t{trial}-{index}", "external_id": f"SAME-{trial}", "city": "Lyon"}]}

        answers = together(live_server, admin_token, "POST", "ingest/profiles/", item, times=4)
        bodies = [answer.json() for answer in answers]
        assert all(answer.status_code == 200 for answer in answers), bodies
        assert sum(body["created"] for body in bodies) == 1, bodies
        assert sum(body["updated"] for body in bodies) == 3, bodies
        assert Profile.objects.filter(external_id=f"SAME-{trial}").count() == 1
