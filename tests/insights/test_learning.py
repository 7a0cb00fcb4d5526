"""Planted structure: known clusters are recovered, a membership model learns a segment without
its own rules, lookalike bands are most precise first, fine targets activate by probability, and
a purchase model reads nothing from after its cut-off."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from sklearn.metrics import adjusted_rand_score

from audiences.services import audience_compute
from campaigns.activation import target_deliveries
from campaigns.models import Campaign, Target
from campaigns.services.setup import campaign_ready_check
from customers.models import Event, Order, Profile
from insights.features import feature_matrix, feature_matrix_as_of, features_refresh
from insights.lookalikes import lookalike_compute
from insights.models import Lookalike, LookalikeMember, Persona, PersonaMember, PredictiveModel, Score
from insights.personas import personas_compute
from insights.prediction import model_train
from segments.compiler import segment_queryset
from segments.models import Segment
from segments.quantification import segment_analysis_request, segment_analysis_run
from segments.selectors import compile_context
from segments.services import segment_create
from tests.insights.data import affinity_base, grant, planted_base

pytestmark = pytest.mark.django_db


@pytest.fixture
def planted(workspace):
    return planted_base(workspace, n=1500)


def _region_segment(workspace) -> Segment:
    segment = segment_create(
        workspace=workspace, name="Bretons", definition={"field": "region", "op": "eq", "value": "Bretagne"}
    )
    audience_compute(segment_id=segment.pk)
    return Segment.objects.select_related("audience").get(pk=segment.pk)


def test_features_cover_every_facet_and_refresh_incrementally(workspace, planted):
    feature_set = features_refresh(workspace=workspace)
    assert feature_set.profiles == 1500 and feature_set.full
    facets = {column["facet"] for column in feature_set.definition}
    assert facets == {"demographic", "geographic", "behavioural", "transactional", "consent"}
    matrix = feature_matrix(workspace=workspace)
    names = [c.name for c in matrix.columns]
    visits = matrix.X[:, names.index("ev_store_visit_90d")]
    stored = np.array([Event.objects.filter(profile_id=pid, type="store_visit").count() for pid in matrix.ids[:50]])
    assert (visits[:50] == stored).all()
    # One new event: only that profile is recomputed, and its count moves.
    profile_id = int(matrix.ids[0])
    Event.objects.create(
        workspace=workspace,
        profile_id=profile_id,
        type="store_visit",
        channel="store",
        occurred_at=timezone.now() - timedelta(hours=1),
        idempotency_key="new-one",
    )
    again = features_refresh(workspace=workspace)
    assert not again.full and again.refreshed == 1 and again.version == feature_set.version
    assert feature_matrix(workspace=workspace).X[0, names.index("ev_store_visit_90d")] == visits[0] + 1


def test_personas_recover_planted_clusters_and_keep_their_identity(workspace, planted):
    run = personas_compute(workspace=workspace, facets="behavioural", k=3)
    members = dict(PersonaMember.objects.filter(run=run).values_list("profile_id", "persona_id"))
    found = np.array([members[pid] for pid in planted["ids"].tolist()])
    assert adjusted_rand_score(planted["kind"], found) >= 0.9
    personas = list(Persona.objects.filter(workspace=workspace))
    assert len(personas) == 3 and abs(sum(p.share for p in personas) - 1) < 1e-3
    assert all(p.segment is not None and p.profile for p in personas)
    # The persona's segment is a segment like any other.
    persona = personas[0]
    ctx = compile_context(workspace=workspace)
    assert segment_queryset(persona.segment.definition, ctx).count() == persona.size
    # A re-run with suggested k keeps the numbers (matched centroids) and reports stability.
    second = personas_compute(workspace=workspace, facets="behavioural", k=3, seed=1)
    assert second.stability_ari is not None and second.stability_ari >= 0.9 and second.drift <= 0.05
    assert set(Persona.objects.filter(workspace=workspace, active=True).values_list("number", flat=True)) == {1, 2, 3}
    # The index table works on a persona's segment like on any other: its habit is over-represented.
    audience_compute(segment_id=persona.segment.pk)
    segment_analysis_request(segment=persona.segment, min_count=10)
    analysis = segment_analysis_run(segment_id=persona.segment.pk)
    assert analysis.status == "ready" and analysis.segment_size == persona.size
    over = {row["criterion"] for row in analysis.rows if row.get("over_represented")}
    assert over & {"event_90d", "channel"}, analysis.rows[:5]
    suggested = personas_compute(workspace=workspace, facets="behavioural")
    assert suggested.k_chosen_by == "silhouette" and suggested.k == 3


def test_membership_model_learns_without_the_rules_and_drives_fine_targets(workspace, planted, marketer):
    segment = _region_segment(workspace)
    model = PredictiveModel.objects.create(workspace=workspace, kind="membership", name="Bretons", segment=segment)
    model = model_train(model=model)
    excluded = {row["feature"] for row in model.excluded}
    assert {"region_0", "region_1"} <= excluded, "the defining region is left out"
    assert all(name.startswith("region_") or name == "city_density" for name in excluded), "and only geography"
    assert model.metrics["auc"] >= 0.8
    assert model.metrics["pu_correction"] is False
    assert model.version == 1 and Score.objects.filter(model=model, version=1).count() == 1500
    precision = [row["precision"] for row in model.curve if row["precision"] is not None]
    assert precision[-1] > precision[0], "higher thresholds are more precise"
    # The rule criterion.
    ctx = compile_context(workspace=workspace)
    likely = segment_queryset({"probability": {"segment": segment.pk, "gte": 0.7}}, ctx)
    bretons = set(Profile.objects.filter(workspace=workspace, region="Bretagne").values_list("pk", flat=True))
    chosen = set(likely.values_list("pk", flat=True))
    assert chosen and len(chosen & bretons) / len(chosen) >= 0.7
    # Fine mode: members above the threshold only.
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="Fine",
        channels=["email"],
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=7),
        status=Campaign.Status.ACTIVE,
    )
    target = Target.objects.create(campaign=campaign, segment=segment, mode="fine", min_probability="0.7")
    campaign_ready_check(campaign=campaign, now=timezone.now())
    people = list(Profile.objects.filter(workspace=workspace).values_list("pk", flat=True))
    grant(workspace, people, purpose="direct_marketing", channel="email")
    written = target_deliveries(target=target, channel="email", now=timezone.now())
    expected = set(
        Score.objects.filter(model=model, version=model.version, score__gte=0.7, profile_id__in=bretons).values_list(
            "profile_id", flat=True
        )
    )
    assert written == len(expected) > 0
    assert written < len(bretons)


def test_fine_targets_are_refused_until_a_model_is_scored(workspace, planted):
    segment = _region_segment(workspace)
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="Fine",
        channels=["email"],
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=7),
    )
    Target.objects.create(campaign=campaign, segment=segment, mode="fine", min_probability="0.5")
    with pytest.raises(Exception) as refused:
        campaign_ready_check(campaign=campaign, now=timezone.now())
    assert "no_scores" in str(refused.value.error_dict["targets"][0].code) and "insights/models" in str(refused.value)


def test_lookalike_bands_are_most_precise_first_and_need_consent(workspace):
    affinity_base(workspace)
    segment = _region_segment(workspace)
    granted = list(Profile.objects.filter(workspace=workspace).values_list("pk", flat=True))[:2500]
    grant(workspace, granted, purpose="ad_targeting", channel="display")
    lookalike = Lookalike.objects.create(workspace=workspace, seed=segment)
    lookalike = lookalike_compute(lookalike=lookalike)
    members = LookalikeMember.objects.filter(lookalike=lookalike, version=lookalike.version)
    bretons = set(Profile.objects.filter(workspace=workspace, region="Bretagne").values_list("pk", flat=True))
    chosen = set(members.values_list("profile_id", flat=True))
    assert not chosen & bretons, "seed members are excluded"
    assert chosen <= set(granted), "consent for the purpose and channel is required"
    eligible = len(set(granted) - bretons)
    assert lookalike.eligible == eligible
    assert (
        lookalike.bands[-1]["size"] == members.count() == eligible * 10 // 100
        or abs(lookalike.bands[-1]["size"] - eligible // 10) <= 1
    )
    evaluation = lookalike.evaluation
    assert evaluation[0]["precision"] > evaluation[-1]["precision"], evaluation
    assert evaluation[-1]["recovered"] > evaluation[0]["recovered"]
    band3 = Segment.objects.get(pk=lookalike.bands[2]["segment"])
    ctx = compile_context(workspace=workspace)
    assert segment_queryset(band3.definition, ctx).count() == lookalike.bands[2]["size"]


def test_purchase_propensity_learns_from_the_past_only(workspace):
    now = timezone.now()
    rng = np.random.default_rng(3)
    Profile.objects.bulk_create([Profile(workspace=workspace, external_id=f"b{i}") for i in range(800)])
    ids = list(Profile.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True))
    events, orders, serial = [], [], 0
    for i, pid in enumerate(ids):
        keen = i % 2 == 0
        for day in range(0, 120, 7):
            # The keen click e-mails every week and buy within days after a click, every month.
            if keen:
                serial += 1
                events.append(
                    Event(
                        workspace=workspace,
                        profile_id=pid,
                        type="email_click",
                        channel="email",
                        occurred_at=now - timedelta(days=day + 1),
                        idempotency_key=f"c{serial}",
                    )
                )
            if (keen and day % 28 == 0) or (not keen and rng.random() < 0.02):
                serial += 1
                orders.append(
                    Order(
                        workspace=workspace,
                        profile_id=pid,
                        order_id=f"o{serial}",
                        amount="30.00",
                        currency="EUR",
                        ordered_at=now - timedelta(days=day + 2),
                        channel="web",
                    )
                )
    Event.objects.bulk_create(events)
    Order.objects.bulk_create(orders)
    features_refresh(workspace=workspace)
    model = PredictiveModel.objects.create(workspace=workspace, kind="purchase", name="Buy in 30 days", horizon_days=30)
    model = model_train(model=model)
    assert model.metrics["auc"] >= 0.8
    assert model.metrics["train_window"][1] <= model.metrics["test_window"][0]
    assert Score.objects.filter(model=model, version=model.version).count() == 800
    # No leakage: the training matrix as of the cut-off ignores everything after it.
    columns = feature_matrix(workspace=workspace).columns
    cutoff = now - timedelta(days=60)
    before = feature_matrix_as_of(workspace=workspace, columns=columns, as_of=cutoff)
    Event.objects.create(
        workspace=workspace,
        profile_id=ids[1],
        type="email_click",
        channel="email",
        occurred_at=cutoff + timedelta(days=1),
        idempotency_key="late",
    )
    Order.objects.create(
        workspace=workspace,
        profile_id=ids[1],
        order_id="late",
        amount="30.00",
        currency="EUR",
        ordered_at=cutoff + timedelta(days=1),
        channel="web",
    )
    after = feature_matrix_as_of(workspace=workspace, columns=columns, as_of=cutoff)
    assert np.array_equal(np.nan_to_num(before.X, nan=-1), np.nan_to_num(after.X, nan=-1))
    churn = PredictiveModel.objects.create(workspace=workspace, kind="churn", name="Churn", horizon_days=30)
    churn = model_train(model=churn)
    keen_scores = Score.objects.filter(model=churn, version=churn.version, profile_id__in=ids[::2])
    assert churn.metrics["auc"] >= 0.7 and keen_scores.count() == 400
