import pytest
from django.urls import reverse

from accounts.api.base import WorkspaceScopedViewSet
from customers.models import Profile
from tests.factories import make_consent, make_event, make_order, make_profile


@pytest.fixture
def data(workspace):
    profile = make_profile(workspace=workspace, external_id="C1", email="a@example.com")
    return {
        "profile": profile,
        "identity": profile.identities.create(workspace=workspace, type="cookie", value="ck-1"),
        "event": make_event(profile=profile),
        "order": make_order(profile=profile),
        "consent": make_consent(profile=profile),
        "attribute-definition": workspace.attribute_definitions.create(
            key="lifestyle", label="Lifestyle", type="string"
        ),
        "survey-response": profile.survey_responses.create(
            workspace=workspace, survey="s", question="q", answer=3, answered_at=profile.created_at
        ),
    }


RESOURCES = ["profile", "identity", "event", "order", "consent", "attribute-definition", "survey-response"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_member_of_another_workspace_gets_404_on_list_and_detail(resource, data, outsider):
    pk = data[resource].pk
    assert outsider.get(reverse(f"{resource}-list", kwargs={"workspace": "maison"})).status_code == 404
    assert outsider.get(reverse(f"{resource}-detail", kwargs={"workspace": "maison", "pk": pk})).status_code == 404
    # Through their own workspace's URL, the row does not exist either.
    assert outsider.get(reverse(f"{resource}-detail", kwargs={"workspace": "rival", "pk": pk})).status_code == 404
    assert outsider.get(reverse(f"{resource}-list", kwargs={"workspace": "rival"})).json()["results"] == []


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_member_sees_their_workspace_rows(resource, data, viewer):
    r = viewer.get(reverse(f"{resource}-detail", kwargs={"workspace": "maison", "pk": data[resource].pk}))
    assert r.status_code == 200
    assert r.json()["id"] == data[resource].pk


def test_an_outsider_cannot_change_or_delete_another_workspaces_profile(data, outsider):
    pk = data["profile"].pk
    assert (
        outsider.patch(reverse("profile-detail", kwargs={"workspace": "rival", "pk": pk}), {"city": "X"}).status_code
        == 404
    )
    assert outsider.delete(reverse("profile-detail", kwargs={"workspace": "rival", "pk": pk})).status_code == 404
    assert Profile.objects.filter(pk=pk, city="").exists()


def test_an_outsider_cannot_attach_a_consent_to_another_workspaces_profile(data, outsider):
    r = outsider.post(
        reverse("consent-list", kwargs={"workspace": "rival"}),
        {
            "profile": data["profile"].pk,
            "purpose": "direct_marketing",
            "channel": "email",
            "status": "granted",
            "source": "x",
        },
    )
    assert r.status_code == 400
    assert r.json()["profile"][0]["code"] == "does_not_exist"


def test_anonymous_requests_are_refused(client, data):
    r = client.get(reverse("profile-list", kwargs={"workspace": "maison"}))
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"


def test_workspaces_endpoint_lists_only_mine_with_my_role(viewer, workspace, other_workspace):
    r = viewer.get(reverse("workspace-list"))
    assert [(w["slug"], w["role"]) for w in r.json()["results"]] == [("maison", "viewer")]
    assert viewer.get(reverse("workspace-detail", kwargs={"slug": "rival"})).status_code == 404


def test_only_a_workspace_admin_changes_its_settings(client_for, workspace):
    manager = client_for("manager")
    r = manager.patch(reverse("workspace-detail", kwargs={"slug": "maison"}), {"currency": "USD"})
    assert r.status_code == 403
    admin = client_for("admin")
    r = admin.patch(reverse("workspace-detail", kwargs={"slug": "maison"}), {"time_zone": "Mars/Olympus"})
    assert r.status_code == 400
    assert r.json()["time_zone"][0]["code"] == "invalid_time_zone"
    r = admin.patch(reverse("workspace-detail", kwargs={"slug": "maison"}), {"currency": "USD"})
    assert r.status_code == 200 and r.json()["currency"] == "USD"
    workspace.refresh_from_db()
    assert workspace.currency == "USD"


@pytest.mark.parametrize(
    ("role", "can_write", "can_merge", "can_consent"),
    [
        ("viewer", False, False, False),
        ("marketer", True, False, True),
        ("manager", True, True, True),
        ("privacy_officer", False, True, True),
        ("admin", True, True, True),
    ],
)
def test_the_role_matrix(role, can_write, can_merge, can_consent, client_for, workspace):
    api = client_for(role)
    a = make_profile(workspace=workspace, external_id="A")
    b = make_profile(workspace=workspace, external_id="B")
    r = api.post(reverse("profile-list", kwargs={"workspace": "maison"}), {"external_id": "N1"})
    assert r.status_code == (201 if can_write else 403)
    r = api.post(reverse("profile-merge", kwargs={"workspace": "maison", "pk": a.pk}), {"other": b.pk})
    assert r.status_code == (200 if can_merge else 403)
    r = api.post(
        reverse("consent-list", kwargs={"workspace": "maison"}),
        {"profile": a.pk, "purpose": "direct_marketing", "channel": "email", "status": "granted", "source": "form"},
    )
    assert r.status_code == (201 if can_consent else 403)
    assert api.get(reverse("profile-list", kwargs={"workspace": "maison"})).status_code == 200


def test_a_view_that_overrides_get_queryset_is_refused_at_import_time():
    with pytest.raises(TypeError, match="scoped_queryset"):

        class Leaky(WorkspaceScopedViewSet):
            model = Profile

            def get_queryset(self):
                return Profile.objects.all()
