"""Due dates, extension and rejection, rectification; retention boundaries and bounded batches."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from customers.models import Event, Profile
from privacy import retention
from privacy.models import AuditEntry, DataSubjectRequest, RetentionPolicy
from privacy.requests import add_months, due_on, request_create
from tests.factories import make_consent, make_event, make_order, make_profile
from tests.privacy.people import url


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (datetime(2026, 3, 10, 9, 0, tzinfo=UTC), date(2026, 4, 10)),
        (datetime(2026, 1, 31, 12, 0, tzinfo=UTC), date(2026, 2, 28)),  # no 31 February: the month's last day
        (datetime(2028, 1, 31, 12, 0, tzinfo=UTC), date(2028, 2, 29)),  # leap year
        (datetime(2026, 12, 15, 12, 0, tzinfo=UTC), date(2027, 1, 15)),  # over the year's end
        # 23:30 UTC on 30 April is 1 May in Paris: the day of receipt is the workspace's.
        (datetime(2026, 4, 30, 23, 30, tzinfo=UTC), date(2026, 6, 1)),
    ],
)
def test_a_request_is_due_one_month_after_the_day_it_was_received(received, due):
    assert due_on(received_at=received, time_zone="Europe/Paris") == due


def test_add_months_keeps_the_day_or_takes_the_months_last():
    assert add_months(date(2026, 8, 31), 1) == date(2026, 9, 30)
    assert add_months(date(2026, 11, 30), 2) == date(2027, 1, 30)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


def test_an_extension_needs_a_reason_adds_two_months_once_and_only_while_open(workspace, officer):
    profile = make_profile(workspace=workspace)
    created = officer.post(
        url("privacy-request-list"),
        {"kind": "access", "profile": profile.pk, "received_at": "2026-01-31T10:00:00+01:00"},
        format="json",
    ).json()
    assert (created["due_on"], created["original_due_on"], created["overdue"]) == ("2026-02-28", "2026-02-28", True)
    blank = officer.post(url("privacy-request-extend", created["id"]), {"reason": "  "}, format="json")
    assert blank.status_code == 400 and blank.json()["reason"][0]["code"] == "reason_required"
    extended = officer.post(
        url("privacy-request-extend", created["id"]), {"reason": "Archives to search"}, format="json"
    )
    assert extended.status_code == 200
    assert (extended.json()["due_on"], extended.json()["extension_reason"]) == ("2026-04-28", "Archives to search")
    twice = officer.post(url("privacy-request-extend", created["id"]), {"reason": "More"}, format="json")
    assert twice.status_code == 400 and twice.json()["reason"][0]["code"] == "already_extended"
    rejected = officer.post(
        url("privacy-request-reject", created["id"]), {"reason": "Identity not proven"}, format="json"
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["resolution"] == "Identity not proven"
    late = officer.post(url("privacy-request-extend", created["id"]), {"reason": "x"}, format="json")
    assert late.status_code == 400 and late.json()["status"][0]["code"] == "request_not_open"
    overdue = officer.get(url("privacy-request-list"), {"open": "true"}).json()["results"]
    assert overdue == []
    actions = AuditEntry.objects.filter(object_type="data_subject_request").values_list("action", flat=True)
    assert sorted(actions) == ["request_created", "request_extended", "request_rejected"]


def test_bad_requests_get_clear_errors(workspace, other_workspace, officer):
    foreign = make_profile(workspace=other_workspace)
    for body, field, code in [
        ({"kind": "erasure"}, "profile", "profile_required"),
        ({"kind": "erasure", "profile": foreign.pk}, "profile", "does_not_exist"),
        ({"kind": "objection", "subject": "not an address"}, "subject", "invalid_identifier"),
        ({"kind": "teleport", "profile": 1}, "kind", "invalid_choice"),
        ({"kind": "access", "profile": foreign.pk, "received_at": "2999-01-01T00:00:00Z"}, "profile", "does_not_exist"),
    ]:
        response = officer.post(url("privacy-request-list"), body, format="json")
        assert response.status_code == 400, body
        assert response.json()[field][0]["code"] == code, response.json()
    assert not DataSubjectRequest.objects.exists()


def test_rectification_goes_through_the_profile_rules(workspace, officer):
    profile = make_profile(workspace=workspace, email="old@example.com", last_name="Mratin")
    created = officer.post(
        url("privacy-request-list"),
        {"kind": "rectification", "profile": profile.pk, "changes": {"email": "not-an-email"}},
        format="json",
    ).json()
    refused = officer.post(url("privacy-request-complete", created["id"]))
    assert refused.status_code == 400 and refused.json()["changes.email"][0]["code"] == "invalid_email", refused.json()
    officer.patch(url("privacy-request-detail", created["id"]), {"changes": {"external_id": "X"}}, format="json")
    unknown = officer.post(url("privacy-request-complete", created["id"])).json()
    assert unknown["changes.external_id"][0]["code"] == "unknown_field"
    assert DataSubjectRequest.objects.get(pk=created["id"]).status == "received"
    officer.patch(
        url("privacy-request-detail", created["id"]),
        {"changes": {"email": " Claire.Martin@Example.COM ", "last_name": "Martin"}},
        format="json",
    )
    done = officer.post(url("privacy-request-complete", created["id"])).json()
    assert done["status"] == "completed" and done["outcome"] == {"fields": ["email", "last_name"]}
    profile.refresh_from_db()
    assert (profile.email, profile.last_name) == ("claire.martin@example.com", "Martin")


# --- retention --------------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def aged(profile, when):
    Profile.objects.filter(pk=profile.pk).update(created_at=when)


def test_events_older_than_the_policy_are_purged_to_the_second(workspace):
    RetentionPolicy.objects.create(workspace=workspace, events_months=13, inactive_prospect_months=None)
    person = make_profile(workspace=workspace, lifecycle_stage="customer")
    cutoff = datetime(2025, 10, 24, 12, 0, tzinfo=UTC)
    old = make_event(profile=person, occurred_at=cutoff - timedelta(seconds=1))
    edge = make_event(profile=person, occurred_at=cutoff)
    recent = make_event(profile=person, occurred_at=NOW - timedelta(days=1))
    done, more = retention.retention_purge(workspace_id=workspace.pk, now=NOW)
    assert done == {"events": 1} and more is False
    assert set(Event.objects.values_list("pk", flat=True)) == {edge.pk, recent.pk}
    assert old.pk not in set(Event.objects.values_list("pk", flat=True))


def test_inactive_prospects_are_erased_after_their_last_qualifying_contact(workspace):
    RetentionPolicy.objects.create(workspace=workspace, events_months=None, inactive_prospect_months=36)
    cutoff = datetime(2023, 11, 24, 12, 0, tzinfo=UTC)
    long_ago = cutoff - timedelta(days=400)

    def prospect(name, **fields):
        p = make_profile(workspace=workspace, external_id=name, email=f"{name.lower()}@example.com", **fields)
        aged(p, long_ago)
        return p

    opened = prospect("OPENED")  # only opened e-mails since: opens do not count
    make_event(profile=opened, type="email_open", channel="email", occurred_at=NOW - timedelta(days=5))
    clicked = prospect("CLICKED")  # a click since the cutoff counts
    make_event(profile=clicked, type="email_click", channel="email", occurred_at=cutoff)
    clicked_before = prospect("CLICKED-BEFORE")  # its last click a second before the cutoff
    make_event(profile=clicked_before, type="email_click", channel="email", occurred_at=cutoff - timedelta(seconds=1))
    bought = prospect("BOUGHT")
    make_order(profile=bought, ordered_at=NOW - timedelta(days=700))
    consented = prospect("CONSENTED")
    make_consent(profile=consented, recorded_at=NOW - timedelta(days=30))
    customer = prospect("CUSTOMER", lifecycle_stage="customer")
    new = make_profile(workspace=workspace, external_id="NEW")  # created now

    done, more = retention.retention_purge(workspace_id=workspace.pk, now=NOW)

    assert done == {"inactive_prospects": 2} and more is False
    erased = set(Profile.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
    assert erased == {opened.pk, clicked_before.pk}
    kept = {clicked, bought, consented, customer, new}
    assert all(Profile.objects.get(pk=p.pk).erased_at is None for p in kept)
    assert Profile.objects.get(pk=opened.pk).email == ""
    assert AuditEntry.objects.get(action="retention_purged").detail == {"inactive_prospects": 2}


def test_the_purge_works_in_bounded_batches_until_done(workspace, monkeypatch, eager_tasks):
    RetentionPolicy.objects.create(workspace=workspace, events_months=1, inactive_prospect_months=None)
    person = make_profile(workspace=workspace, lifecycle_stage="customer")
    for i in range(7):
        make_event(profile=person, occurred_at=timezone.now() - timedelta(days=100 + i))
    monkeypatch.setattr(retention, "EVENT_BATCH", 3)
    first, more = retention.retention_purge(workspace_id=workspace.pk)
    assert (first, more) == ({"events": 3}, True)
    from privacy.tasks import retention_purge_due_task

    retention_purge_due_task.delay()  # each batch queues the next while more is left
    assert Event.objects.count() == 0


def test_files_past_their_retention_are_deleted(workspace, officer, media):
    from privacy.requests import request_complete

    RetentionPolicy.objects.create(
        workspace=workspace, events_months=None, inactive_prospect_months=None, export_files_days=30
    )
    profile = make_profile(workspace=workspace, email="a@example.com")
    request = request_complete(request=request_create(workspace=workspace, kind="access", profile=profile), by=None)
    assert request.export_file and any(media.rglob("*.json"))
    DataSubjectRequest.objects.filter(pk=request.pk).update(completed_at=timezone.now() - timedelta(days=31))
    done, _ = retention.retention_purge(workspace_id=workspace.pk)
    assert done == {"files": 1}
    assert not DataSubjectRequest.objects.get(pk=request.pk).export_file
    assert not any(media.rglob("*.json"))


def test_the_retention_policy_api_validates_and_is_audited(workspace, officer):
    got = officer.get(url("privacy-retention"))
    assert got.status_code == 200 and got.json()["inactive_prospect_months"] == 36
    bad = officer.put(url("privacy-retention"), {"events_months": 0, "inactive_prospect_months": 36}, format="json")
    assert bad.status_code == 400 and bad.json()["events_months"][0]["code"] == "min_value"
    ok = officer.put(
        url("privacy-retention"),
        {"events_months": 24, "inactive_prospect_months": None, "export_files_days": 60},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["inactive_prospect_months"] is None
    assert RetentionPolicy.objects.get(workspace=workspace).events_months == 24
    assert AuditEntry.objects.filter(action="retention_changed").count() == 1
