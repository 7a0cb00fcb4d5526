"""Actions are offered only to roles that may perform them: a marketer is not shown the merge of
profiles nor the export of plain identifiers; a manager is."""

import pytest
from django.urls import reverse

from tests.factories import make_profile, make_segment, make_user


@pytest.mark.parametrize(("role", "offered"), [("marketer", False), ("manager", True), ("viewer", False)])
def test_the_merge_action_is_offered_to_roles_that_may_merge(client, workspace, role, offered):
    make_profile(workspace=workspace)
    client.force_login(make_user(workspace=workspace, role=role))
    page = client.get(reverse("admin:customers_profile_changelist")).content.decode()
    assert ('value="merge_profiles"' in page) is offered


@pytest.mark.parametrize(("role", "offered"), [("marketer", False), ("manager", True)])
def test_plain_identifiers_are_offered_to_roles_that_may_export_them(client, workspace, role, offered):
    make_profile(workspace=workspace, country="FR")
    segment = make_segment(workspace=workspace)
    client.force_login(make_user(workspace=workspace, role=role))
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert 'name="export-identifiers"' in page  # both may export hashed identifiers
    assert ('value="plain"' in page) is offered


def test_a_user_of_one_workspace_finds_it_chosen_on_an_add_page(client, workspace, other_workspace):
    from segments.models import Segment

    client.force_login(make_user(workspace=workspace, role="marketer"))
    page = client.get(reverse("admin:segments_segment_add")).content.decode()
    assert f'<option value="{workspace.pk}" selected>' in page
    assert Segment.objects.count() == 0
