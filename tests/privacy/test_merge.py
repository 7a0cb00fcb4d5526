"""A merge loses nothing: every row of every app that points at the merged person follows the survivor.

The foreign keys to Profile are found by introspecting the installed models, so a new app or
model that points at profiles is covered (and the test says so when the fixture misses it).
"""

from django.apps import apps
from django.db.models import CompositePrimaryKey, UniqueConstraint
from django.utils import timezone

from customers.models import Profile, ProfileMerge
from customers.services import profile_merge
from privacy.destinations import removal_notices_create
from privacy.requests import request_create
from reporting.models import Click
from tests.factories import make_event
from tests.privacy.people import everywhere


def profile_references() -> list[tuple[type, str]]:
    """Every (model, field) of the installed models that is a foreign key to Profile."""
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is Profile
    ]


def unique_partners(model, field: str) -> list[str] | None:
    """The other fields of a unique key that includes `field` (two rows for one person collapse)."""
    keys = [list(c.fields) for c in model._meta.constraints if isinstance(c, UniqueConstraint) and c.fields]
    if isinstance(model._meta.pk, CompositePrimaryKey):
        keys.append([f.name for f in model._meta.pk.fields])
    keys += [list(k) for k in model._meta.unique_together]
    for key in keys:
        if field in key:
            return [name for name in key if name != field]
    return None


def rows_of(model, field: str, profile) -> set:
    rows = model._base_manager.filter(**{field: profile})
    partners = unique_partners(model, field)
    return set(rows.values_list(*partners)) if partners else set(rows.values_list("pk", flat=True))


def test_a_merge_moves_every_row_that_points_at_the_merged_person_and_deletes_none(workspace, officer):
    claire, bob, things = everywhere(workspace, officer.user)
    # What everywhere() does not make: a click, a privacy request and a removal notice of hers.
    touch = things["delivered"].touches.filter(profile=claire).first()
    click = make_event(profile=claire, type="email_click", properties={"touch_id": touch.pk})
    Click.objects.create(workspace=workspace, touch=touch, profile=claire, event=click, occurred_at=timezone.now())
    request_create(workspace=workspace, kind="access", profile=claire, by=officer.user)
    assert removal_notices_create(profile=claire, channels=None, reason="withdrawal")
    ProfileMerge.objects.create(
        workspace=workspace, survivor=claire, merged_external_id="OLD-CLAIRE", merged_profile_id=10**9
    )

    references = profile_references()
    assert len(references) >= 13  # customers, privacy, segments, audiences, campaigns, reporting
    before = {(m, f): (rows_of(m, f, claire), rows_of(m, f, bob)) for m, f in references}
    missing = sorted(f"{m._meta.label}.{f}" for (m, f), (hers, _) in before.items() if not hers)
    assert missing == [], "the merged person must have rows in every table that points at profiles"

    profile_merge(survivor=bob, merged=claire)

    assert not Profile.objects.filter(pk=claire.pk).exists()
    for (model, field), (hers, his) in before.items():
        label = f"{model._meta.label}.{field}"
        after = rows_of(model, field, bob)
        if unique_partners(model, field):
            assert after == hers | his, label  # a key both had is kept once
        else:
            extra = 1 if model is ProfileMerge else 0  # the merge itself is recorded
            assert len(after) == len(hers) + len(his) + extra, label
            assert hers <= after, label  # the very same rows, not copies
