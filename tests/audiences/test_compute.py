import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audiences.models import Audience, AudienceMember, AudienceRun
from audiences.services import audience_compute, audience_refresh_request, audiences_refresh_due
from segments.models import ManualMember
from segments.services import manual_members_set, segment_create
from tests.factories import make_profile

LYON = {"field": "city", "op": "eq", "value": "Lyon"}


@pytest.fixture
def lyon(workspace):
    for n in range(3):
        make_profile(workspace=workspace, external_id=f"L{n}", city="Lyon")
    make_profile(workspace=workspace, external_id="P0", city="Paris")
    return segment_create(workspace=workspace, name="Lyon", definition=LYON)


def current_members(segment):
    audience = Audience.objects.get(segment=segment)
    return set(
        AudienceMember.objects.filter(audience=audience, version=audience.current_version).values_list(
            "profile__external_id", flat=True
        )
    )


def test_a_computation_writes_a_version_and_switches_to_it_with_its_history(lyon, workspace):
    run = audience_compute(segment_id=lyon.pk)
    assert (run.status, run.version, run.size, run.added, run.removed) == ("succeeded", 1, 3, 3, 0)
    assert current_members(lyon) == {"L0", "L1", "L2"}
    make_profile(workspace=workspace, external_id="L3", city="Lyon")
    from customers.models import Profile

    Profile.objects.filter(external_id="L0").update(city="Paris")
    run = audience_compute(segment_id=lyon.pk)
    assert (run.version, run.size, run.added, run.removed) == (2, 3, 1, 1)
    audience = Audience.objects.get(segment=lyon)
    assert (audience.current_version, audience.status, audience.size, audience.lease_token) == (2, "ready", 3, None)
    assert current_members(lyon) == {"L1", "L2", "L3"}
    run3 = audience_compute(segment_id=lyon.pk)
    # Versions older than the previous one are cleared.
    assert set(AudienceMember.objects.filter(audience=audience).values_list("version", flat=True)) == {2, 3}
    assert run3.duration_ms is not None and AudienceRun.objects.filter(audience=audience).count() == 3


def test_manual_additions_and_removals_survive_a_refresh(lyon, workspace):
    from customers.models import Profile

    paris, lyon0 = Profile.objects.get(external_id="P0"), Profile.objects.get(external_id="L0")
    manual_members_set(segment=lyon, add=[paris.pk], remove=[lyon0.pk])
    audience_compute(segment_id=lyon.pk)
    audience_compute(segment_id=lyon.pk)
    assert current_members(lyon) == {"L1", "L2", "P0"}
    assert ManualMember.objects.filter(segment=lyon).count() == 2


def test_a_live_lease_makes_a_second_computation_a_no_op(lyon):
    Audience.objects.filter(segment=lyon).update(
        lease_token="00000000-0000-0000-0000-000000000001", lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert audience_compute(segment_id=lyon.pk) is None
    assert Audience.objects.get(segment=lyon).current_version == 0


def test_an_expired_lease_is_taken_over_and_stale_rows_are_cleared(lyon):
    audience = Audience.objects.get(segment=lyon)
    # A worker killed while writing version 1: its lease expired, its rows linger.
    Audience.objects.filter(pk=audience.pk).update(
        next_version=1,
        status="computing",
        lease_token="00000000-0000-0000-0000-000000000001",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    from customers.models import Profile

    AudienceMember.objects.create(
        workspace_id=audience.workspace_id, audience=audience, version=1, profile=Profile.objects.get(external_id="P0")
    )
    run = audience_compute(segment_id=lyon.pk)
    assert (run.status, run.version) == ("succeeded", 2)
    assert current_members(lyon) == {"L0", "L1", "L2"}
    assert not AudienceMember.objects.filter(audience=audience, version=1).exists()


def test_a_failed_computation_keeps_the_previous_version_current(lyon, monkeypatch):
    audience_compute(segment_id=lyon.pk)
    from audiences import services

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "_insert_version", broken)  # stands in for a database failure mid-write
    run = audience_compute(segment_id=lyon.pk)
    assert (run.status, run.error) == ("failed", "RuntimeError: boom")
    audience = Audience.objects.get(segment=lyon)
    assert (audience.current_version, audience.status, audience.lease_token) == (1, "failed", None)
    assert current_members(lyon) == {"L0", "L1", "L2"}


def test_refresh_requests_are_deduplicated_while_one_is_queued(lyon, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        audience_refresh_request(segment=lyon)
        audience_refresh_request(segment=lyon)
    assert len(callbacks) == 1
    assert Audience.objects.get(segment=lyon).status == "queued"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_computations_give_one(lyon):
    barrier = threading.Barrier(2)
    results = []

    def compute():
        barrier.wait()
        try:
            results.append(audience_compute(segment_id=lyon.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=compute) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r is None for r in results) == [False, True]
    assert AudienceRun.objects.filter(audience__segment=lyon).count() == 1


def test_scheduled_refresh_queues_due_segments_after_their_dependencies(workspace, django_capture_on_commit_callbacks):
    make_profile(workspace=workspace, external_id="L0", city="Lyon")
    base = segment_create(workspace=workspace, name="Lyon", definition=LYON, refresh_every=timedelta(hours=1))
    child = segment_create(
        workspace=workspace,
        name="Lyon women",
        definition={"all": [{"segment": base.pk}, {"field": "gender", "op": "eq", "value": "female"}]},
        refresh_every=timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks():
        assert audiences_refresh_due() == [base.pk]  # the child waits for its dependency
    audience_compute(segment_id=base.pk)
    with django_capture_on_commit_callbacks():
        assert audiences_refresh_due() == [child.pk]
    audience_compute(segment_id=child.pk)
    with django_capture_on_commit_callbacks():
        assert audiences_refresh_due() == []
        assert audiences_refresh_due(now=timezone.now() + timedelta(hours=2)) == [base.pk]


def test_a_refresh_computes_the_never_computed_segments_it_uses_first(lyon, workspace):
    """Lyon -> Lyon women -> Lyon women, not Paris: refreshing the last computes the other two first, in order."""
    from audiences.models import AudienceRun
    from customers.models import Profile

    Profile.objects.filter(external_id__in=["L0", "L1"]).update(gender="female")
    women = segment_create(
        workspace=workspace,
        name="Lyon women",
        definition={"all": [{"segment": lyon.pk}, {"field": "gender", "op": "eq", "value": "female"}]},
    )
    last = segment_create(
        workspace=workspace,
        name="Lyon women not in Paris",
        definition={"all": [{"segment": women.pk}, {"not": {"field": "city", "op": "eq", "value": "Paris"}}]},
    )
    run = audience_compute(segment_id=last.pk)
    assert run.status == "succeeded" and current_members(last) == {"L0", "L1"}
    assert current_members(women) == {"L0", "L1"} and current_members(lyon) == {"L0", "L1", "L2"}
    runs = list(AudienceRun.objects.order_by("started_at", "pk").values_list("audience__segment__name", "trigger"))
    assert runs == [("Lyon", "dependency"), ("Lyon women", "dependency"), ("Lyon women not in Paris", "manual")]


def test_a_dependency_that_cannot_be_computed_fails_the_refresh_with_its_name(lyon, workspace):
    """While another worker holds the dependency's lease past the wait, the refresh fails and says why,
    instead of counting nobody from it."""
    from audiences import services

    child = segment_create(workspace=workspace, name="In Lyon", definition={"segment": lyon.pk})
    Audience.objects.filter(segment=lyon).update(
        lease_token="00000000-0000-0000-0000-000000000001", lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    services.DEPENDENCY_WAIT = timedelta(seconds=1)
    try:
        run = audience_compute(segment_id=child.pk)
    finally:
        services.DEPENDENCY_WAIT = timedelta(seconds=10)
    assert run.status == "failed"
    assert run.error == "Segments this one uses have no audience yet ('Lyon'): compute them, then refresh again."
    assert Audience.objects.get(segment=child).status == "failed"
