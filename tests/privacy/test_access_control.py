"""The role matrix, cross-workspace 404s, the append-only histories and the audit of admin views."""

import pytest
from django.apps import apps
from django.db.models import ForeignKey
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from accounts.roles import Capability, role_can
from customers.models import Profile
from privacy.audit import audit_record
from privacy.models import AuditEntry, ConsentRecord, DataSubjectRequest, Suppression
from privacy.processing import declared_models
from privacy.requests import request_create
from tests.factories import make_consent, make_profile, make_segment, make_user
from tests.privacy.people import url

ROLES = [Role.VIEWER, Role.MARKETER, Role.MANAGER, Role.PRIVACY_OFFICER, Role.ADMIN]


def allowed(*roles):
    return {role: role in roles for role in ROLES}


HANDLERS = allowed(Role.PRIVACY_OFFICER, Role.ADMIN)
CONSENT_WRITERS = allowed(Role.MARKETER, Role.MANAGER, Role.PRIVACY_OFFICER, Role.ADMIN)
PLAIN_EXPORTERS = allowed(Role.MANAGER, Role.ADMIN)
EVERYONE = allowed(*ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_the_role_matrix(workspace, client_for, role):
    client = client_for(role)
    profile = make_profile(workspace=workspace, email="p@example.com")
    make_consent(profile=profile)
    segment = make_segment(workspace=workspace)
    checks = {
        "list requests": (HANDLERS, lambda: client.get(url("privacy-request-list"))),
        "record a request": (
            HANDLERS,
            lambda: client.post(url("privacy-request-list"), {"kind": "access", "profile": profile.pk}, format="json"),
        ),
        "read the audit log": (HANDLERS, lambda: client.get(url("audit-entry-list"))),
        "read the suppression list": (HANDLERS, lambda: client.get(url("suppression-list"))),
        "suppress an identifier": (
            HANDLERS,
            lambda: client.post(url("suppression-list"), {"identifier": "x@example.com"}, format="json"),
        ),
        "change retention": (
            HANDLERS,
            lambda: client.put(url("privacy-retention"), {"events_months": 12}, format="json"),
        ),
        "read removal notices": (HANDLERS, lambda: client.get(url("removal-notice-list"))),
        "read the records of processing": (EVERYONE, lambda: client.get(url("privacy-records-of-processing"))),
        "read consent": (EVERYONE, lambda: client.get(url("consent-list"))),
        "withdraw consent": (
            CONSENT_WRITERS,
            lambda: client.post(url("consent-withdraw"), {"profile": profile.pk}, format="json"),
        ),
        "export plain identifiers": (
            PLAIN_EXPORTERS,
            lambda: client.post(
                reverse("segment-export", kwargs={"workspace": "maison", "pk": segment.pk}),
                {"purpose": "direct_marketing", "channel": "email", "identifiers": "plain"},
                format="json",
            ),
        ),
    }
    for name, (matrix, call) in checks.items():
        response = call()
        if matrix[role]:
            assert response.status_code in (200, 201, 202), (name, response.status_code, response.content[:300])
        elif name == "export plain identifiers" and role_can(role, Capability.WRITE_CUSTOMERS):
            # a role that exports hashed identifiers is refused the plain ones on the field
            assert response.status_code == 400, (name, response.status_code)
            assert response.json()["identifiers"][0]["code"] == "forbidden"
        else:
            assert response.status_code == 403, (name, response.status_code)


def test_another_workspace_sees_none_of_it(workspace, other_workspace, officer, outsider):
    profile = make_profile(workspace=workspace, email="p@example.com")
    record = make_consent(profile=profile)
    request = request_create(workspace=workspace, kind="access", profile=profile)
    entry = audit_record(workspace_id=workspace.pk, actor=None, action="profile_viewed", object_type="profile")
    Suppression.objects.create(workspace=workspace, kind="email", hash="a" * 64, reason="manual")
    suppression = Suppression.objects.get()
    for name, pk in [
        ("privacy-request-detail", request.pk),
        ("privacy-request-destinations", request.pk),
        ("privacy-request-export", request.pk),
        ("consent-detail", record.pk),
        ("audit-entry-detail", entry.pk),
        ("suppression-detail", suppression.pk),
    ]:
        assert outsider.get(url(name, pk)).status_code == 404, name  # their own role is admin, elsewhere
        assert outsider.get(url(name, pk, ws="rival")).status_code == 404, name  # and not in their workspace either
    for name in ["privacy-request-list", "audit-entry-list", "suppression-list", "privacy-retention", "consent-list"]:
        assert outsider.get(url(name)).status_code == 404, name
    assert outsider.post(url("privacy-request-complete", request.pk, ws="rival")).status_code == 404
    # A request naming another workspace's profile is refused, not created there.
    theirs = make_profile(workspace=other_workspace)
    r = officer.post(url("privacy-request-list"), {"kind": "erasure", "profile": theirs.pk}, format="json")
    assert r.status_code == 400
    assert officer.get(url("consent-current"), {"profile": theirs.pk}).status_code == 400
    rival = outsider.get(url("privacy-request-list", ws="rival")).json()
    assert rival["results"] == []


def test_histories_are_append_only_in_the_orm_the_api_and_the_admin(workspace, client_for, officer):
    profile = make_profile(workspace=workspace)
    record = make_consent(profile=profile, status="withdrawn")
    entry = audit_record(workspace_id=workspace.pk, actor=None, action="profile_viewed", object_type="profile")
    suppression = Suppression.objects.create(workspace=workspace, kind="email", hash="b" * 64, reason="manual")
    for row in (record, entry, suppression):
        model = type(row)
        with pytest.raises(PermissionError):
            row.save()
        with pytest.raises(PermissionError):
            row.delete()
        with pytest.raises(PermissionError):
            model.objects.filter(pk=row.pk).update(workspace=workspace)
        with pytest.raises(PermissionError):
            model.objects.filter(pk=row.pk).delete()
    admin_client = client_for(Role.ADMIN)
    for name, pk in [
        ("consent-detail", record.pk),
        ("audit-entry-detail", entry.pk),
        ("suppression-detail", suppression.pk),
    ]:
        for method in ("put", "patch", "delete"):
            assert getattr(admin_client, method)(url(name, pk), {}, format="json").status_code == 405, (name, method)
    # The admin: no change, no delete, no add for the log.
    user = make_user(workspace=workspace, role=Role.ADMIN)
    user.is_staff = True
    user.save()
    browser = Client()
    browser.force_login(user)
    for model, pk in [("consentrecord", record.pk), ("auditentry", entry.pk), ("suppression", suppression.pk)]:
        # Shown read-only (no save button), refused when posted anyway.
        page = browser.get(f"/admin/privacy/{model}/{pk}/change/")
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode(), model
        assert browser.post(f"/admin/privacy/{model}/{pk}/change/", {"status": "granted"}).status_code == 403, model
        assert browser.post(f"/admin/privacy/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403, model
    assert browser.get("/admin/privacy/auditentry/add/").status_code == 403
    assert browser.get("/admin/privacy/suppression/add/").status_code == 403
    assert ConsentRecord.objects.get(pk=record.pk).status == "withdrawn"  # the post tried "granted"
    assert AuditEntry.objects.filter(pk=entry.pk).exists() and Suppression.objects.filter(pk=suppression.pk).exists()


def test_admin_views_of_a_persons_data_are_audited_and_only_handlers_see_requests(workspace, other_workspace):
    profile = make_profile(workspace=workspace, email="p@example.com")
    request = request_create(workspace=workspace, kind="access", profile=profile)
    marketer = make_user(workspace=workspace, role=Role.MARKETER)
    officer = make_user(workspace=workspace, role=Role.PRIVACY_OFFICER)
    rival_officer = make_user(workspace=other_workspace, role=Role.PRIVACY_OFFICER)
    clients = {}
    for user in (marketer, officer, rival_officer):
        user.is_staff = True
        user.save()
        clients[user] = Client()
        clients[user].force_login(user)
    assert clients[marketer].get(f"/admin/customers/profile/{profile.pk}/change/").status_code == 200
    entry = AuditEntry.objects.get(action="profile_viewed")
    assert (entry.actor, entry.profile_id, entry.object_type) == (marketer, profile.pk, "profile")
    assert clients[marketer].get(f"/admin/privacy/datasubjectrequest/{request.pk}/change/").status_code in (302, 403)
    assert clients[officer].get(f"/admin/privacy/datasubjectrequest/{request.pk}/change/").status_code == 200
    other = clients[rival_officer].get(f"/admin/privacy/datasubjectrequest/{request.pk}/change/")
    assert other.status_code == 302  # the admin's answer for an object you cannot see: back to the index
    assert clients[rival_officer].get(f"/admin/customers/profile/{profile.pk}/change/").status_code == 302
    assert AuditEntry.objects.filter(action="profile_viewed").count() == 1


def test_every_model_that_points_at_a_person_declares_its_personal_data():
    declared = {model for model, _ in declared_models()}
    for model in apps.get_models():
        points_at_profile = any(
            isinstance(f, ForeignKey) and f.related_model is Profile for f in model._meta.get_fields()
        )
        if points_at_profile and model not in (AuditEntry,):
            assert model in declared, f"{model._meta.label} holds personal data but declares none"
    assert Profile in declared and DataSubjectRequest in declared


def test_the_records_of_processing_follow_the_declarations_and_the_policy(workspace, officer):
    officer.put(url("privacy-retention"), {"events_months": 13, "inactive_prospect_months": 36}, format="json")
    rows = officer.get(url("privacy-records-of-processing")).json()
    by_table = {row["table"]: row for row in rows}
    assert by_table["customers.event"]["retention"] == "Events are deleted after 13 months."
    assert by_table["customers.profile"]["retention"].startswith("Prospects are erased after 36 months")
    assert by_table["privacy.consentrecord"]["legal_basis"] == "legal_obligation"
    assert "email" in by_table["customers.profile"]["fields"]
    assert by_table["privacy.suppression"]["erasure"].startswith("Kept on purpose")
    assert len(rows) == len(declared_models())
