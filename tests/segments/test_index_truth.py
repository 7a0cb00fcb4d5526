"""The index table tells the truth: each row's rule selects the people the row counts, rows read
as the team declared its vocabulary, and no one's own words become a row, before or after erasure."""

import random
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from audiences.services import audience_compute
from customers.models import AttributeDefinition, Profile, SurveyQuestion, SurveyResponse
from insights.clv import clv_run
from privacy.erasure import profiles_erase
from segments.compiler import compile_definition
from segments.selectors import compile_context
from segments.services import segment_create
from tests.factories import make_event, make_order, make_profile, make_user, make_workspace, token_for
from tests.privacy.people import columns_holding

ZOE_WORDS = "Très bien, Zoé (zoe.martin@example.org)"
SHARED_WORDS = "Livraison trop lente"


@pytest.fixture
def base(workspace):
    """150 people with every facet: declared and undeclared answers, a region and an interest only
    one person has, events on every channel, orders of every band, ages from 12 to unknown."""
    rng = random.Random(7)
    now = timezone.now()
    AttributeDefinition.objects.create(
        workspace=workspace,
        key="interests",
        label="Centres d'intérêt",
        type="string_list",
        options=[{"value": "running", "label": "Course à pied"}, {"value": "yoga", "label": "Yoga"}],
    )
    SurveyQuestion.objects.create(
        workspace=workspace,
        survey="satisfaction_2026",
        question="preferred_channel",
        label="Canal préféré",
        options=[
            {"value": "app", "label": "Application mobile"},
            {"value": "store", "label": "Magasin"},
            {"value": "fax", "label": "Télécopie"},  # declared, answered by one person only
        ],
    )
    regions = ["Ile-de-France", "Bretagne", "Occitanie", ""]
    channels = ["web", "app", "email", "sms", "push", "store", "display", "customer_service"]
    types = ["page_view", "product_view", "email_open", "store_visit", "cart_abandoned", "app_open"]
    people = []
    for n in range(150):
        age = rng.choice([None, 12, 19, 30, 40, 50, 60, 70])
        profile = make_profile(
            workspace=workspace,
            external_id=f"C{n}",
            gender=rng.choice(["female", "male", "unknown"]),
            birth_date=None if age is None else date(now.year - age, 1, 1) - timedelta(days=rng.randrange(300)),
            socio_professional_category=rng.choice(["", "employee", "executive"]),
            region=rng.choice(regions),
            lifecycle_stage=rng.choice(["prospect", "customer"]),
            attributes={"interests": rng.sample(["running", "yoga", "wine", "cinema"], rng.randrange(3))},
        )
        people.append(profile)
        for _ in range(rng.randrange(4)):
            make_event(
                profile=profile,
                type=rng.choice(types),
                channel=rng.choice(channels),
                occurred_at=now - timedelta(days=rng.randrange(1, 200), hours=rng.randrange(24)),
            )
        for _ in range(rng.randrange(5)):
            make_order(
                profile=profile,
                amount=f"{rng.randrange(5, 300)}.{rng.randrange(100):02d}",
                ordered_at=now - timedelta(days=rng.randrange(1, 700)),
                status=rng.choice(["completed", "completed", "cancelled"]),
            )
        answered = now - timedelta(days=rng.randrange(1, 100))
        if n % 3 == 0:
            SurveyResponse.objects.create(
                workspace=workspace,
                profile=profile,
                survey="satisfaction_2026",
                question="preferred_channel",
                answer=rng.choice(["app", "store", "email"]),
                answered_at=answered,
            )
        if n % 4 == 0:
            SurveyResponse.objects.create(
                workspace=workspace,
                profile=profile,
                survey="satisfaction_2026",
                question="nps",
                answer=rng.choice([6, 8, 9, 10]),
                answered_at=answered,
            )
            SurveyResponse.objects.create(
                workspace=workspace,
                profile=profile,
                survey="satisfaction_2026",
                question="sustainability_matters",
                answer=rng.random() < 0.5,
                answered_at=answered,
            )
    # What people typed: one person's words, words five people share, a region and an interest of one.
    zoe = people[0]
    Profile.objects.filter(pk=zoe.pk).update(
        region="Zoéland", attributes={"interests": ["running", "zoe-only-hobby"]}, gender="female"
    )
    for profile in (zoe, *people[1:5]):
        Profile.objects.filter(pk=profile.pk).update(gender="female")
        SurveyResponse.objects.create(
            workspace=workspace,
            profile=profile,
            survey="satisfaction_2026",
            question="comment",
            answer=SHARED_WORDS,
            answered_at=now,
        )
    SurveyResponse.objects.create(
        workspace=workspace, profile=zoe, survey="satisfaction_2026", question="why", answer=ZOE_WORDS, answered_at=now
    )
    SurveyResponse.objects.create(
        workspace=workspace,
        profile=people[7],
        survey="satisfaction_2026",
        question="preferred_channel",
        answer="fax",
        answered_at=now,
    )
    women = segment_create(
        workspace=workspace, name="Women", definition={"field": "gender", "op": "eq", "value": "female"}
    )
    audience_compute(segment_id=women.pk)
    return women, zoe


def analyse(client, segment, django_capture_on_commit_callbacks) -> dict:
    url = reverse("segment-analyse", kwargs={"workspace": "maison", "pk": segment.pk})
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"min_count": 1, "min_index": 0, "min_abs_z": 0}, format="json").status_code == 202
    body = client.get(reverse("segment-analysis", kwargs={"workspace": "maison", "pk": segment.pk})).json()
    assert body["status"] == "ready", body
    return body


def test_every_rows_rule_selects_the_people_the_row_counts(
    marketer, workspace, base, eager_tasks, django_capture_on_commit_callbacks
):
    segment, _ = base
    run = clv_run(workspace=workspace, holdout_days=0)  # lifetime value adds its rows
    assert run.status == "ready", run.error
    body = analyse(marketer, segment, django_capture_on_commit_callbacks)
    ctx = compile_context(workspace=workspace)
    everyone = Profile.objects.filter(workspace=workspace)
    members = everyone.filter(gender="female")
    families = set()
    for row in body["rows"]:
        assert row["rule"] is not None, row
        selected = everyone.filter(compile_definition(row["rule"], ctx))
        assert (selected.count(), selected.filter(pk__in=members).count()) == (row["n_base"], row["n_seg"]), row
        families.add(row["criterion"])
    assert families == {
        "gender",
        "age_band",
        "socio_professional_category",
        "region",
        "lifecycle_stage",
        "interest",
        "channel",
        "event_90d",
        "orders_365d",
        "spend_365d",
        "basket_365d",
        "last_order",
        "survey",
        "clv_tier",
        "clv_p_alive",
    }
    tiers = {row["value"]: row for row in body["rows"] if row["criterion"] == "clv_tier"}
    assert tiers["top"]["label"] == "Lifetime value: Top 10 %"
    assert tiers["top"]["rule"] == {"clv": {"decile": {"eq": 10}}}
    assert sum(row["n_base"] for row in tiers.values()) == run.customers
    # Every channel someone used is a row, and its rule is "any event on the channel".
    channels = {row["value"]: row for row in body["rows"] if row["criterion"] == "channel"}
    assert {"sms", "push", "display", "customer_service"} <= set(channels)
    assert channels["sms"]["rule"] == {"event": "any", "channel": "sms", "within": "P90D"}
    assert channels["sms"]["n_base"] > 0


def test_rows_read_as_declared_and_typed_values_need_five_people(
    marketer, workspace, base, eager_tasks, django_capture_on_commit_callbacks
):
    segment, _ = base
    rows = {
        (r["criterion"], r["value"]): r for r in analyse(marketer, segment, django_capture_on_commit_callbacks)["rows"]
    }
    labels = {r["label"] for r in rows.values()}
    assert "Canal préféré: Application mobile" in labels
    assert "Canal préféré: Télécopie" in labels  # declared: shown though one person chose it
    assert "Interest: Course à pied" in labels
    assert "satisfaction_2026.comment: Livraison trop lente" in labels  # five people wrote it
    shown = str(rows)
    for typed in ("Zoé", "zoe", "Zoéland", "zoe-only-hobby"):
        assert typed not in shown
    # The segment's own criterion (gender) leads the admin's table, apart.
    assert [r["criterion"] for r in rows.values() if r["defining"]] == ["gender"] * 3


def test_erasure_recomputes_the_analyses_that_showed_what_the_person_wrote(
    marketer, workspace, base, eager_tasks, django_capture_on_commit_callbacks
):
    segment, zoe = base
    body = analyse(marketer, segment, django_capture_on_commit_callbacks)
    comment = [r for r in body["rows"] if SHARED_WORDS in r["label"]]
    assert comment and comment[0]["n_base"] == 5
    with django_capture_on_commit_callbacks(execute=True):
        profiles_erase(workspace_id=workspace.pk, profile_ids=[zoe.pk])
    # Four people share the words now: the table was computed again without them.
    body = marketer.get(reverse("segment-analysis", kwargs={"workspace": "maison", "pk": segment.pk})).json()
    assert body["status"] == "ready" and body["rows"]
    assert not [r for r in body["rows"] if SHARED_WORDS in r["label"]]
    for needle in ("zoe.martin", "Zoéland", "zoe-only-hobby", "Très bien, Zoé"):
        assert columns_holding(needle) == [], needle


def test_survey_questions_are_declared_through_the_api(workspace, client_for):
    admin = client_for(Role.ADMIN)
    url = reverse("survey-question-list", kwargs={"workspace": "maison"})
    body = {
        "survey": "satisfaction_2026",
        "question": "nps",
        "label": "Recommanderiez-vous la marque ?",
        "options": [{"value": 10, "label": "Certainement"}, {"value": True, "label": "Oui"}],
    }
    created = admin.post(url, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["options"] == body["options"]
    assert admin.post(url, body, format="json").status_code == 409
    twice = {**body, "question": "other", "options": [{"value": "a", "label": "A"}, {"value": "a", "label": "B"}]}
    refused = admin.post(url, twice, format="json")
    assert refused.status_code == 400 and "listed twice" in str(refused.json()["options"])
    unlabelled = admin.post(url, {**body, "question": "x", "options": [{"value": "a"}]}, format="json")
    assert unlabelled.status_code == 400 and "options" in unlabelled.json()
    viewer = client_for(Role.VIEWER)
    assert viewer.get(url).json()["count"] == 1
    assert viewer.post(url, {**body, "question": "y"}, format="json").status_code == 403
    # Another workspace sees none of it.
    other = make_user(workspace=make_workspace(slug="rival"), role=Role.ADMIN)
    rival = APIClient()
    rival.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(other)}")
    question = created.json()["id"]
    detail = reverse("survey-question-detail", kwargs={"workspace": "maison", "pk": question})
    assert rival.get(detail).status_code in (403, 404)
    assert rival.get(reverse("survey-question-list", kwargs={"workspace": "rival"})).json()["count"] == 0


def test_every_store_that_copies_values_of_profiles_declares_it():
    from core.personal_data import AGGREGATE_FLOOR, DerivedData
    from insights.models import FeatureSet, Persona, PredictiveModel
    from segments.models import SegmentAnalysis

    for model in (SegmentAnalysis, FeatureSet, Persona, PredictiveModel):
        declared = getattr(model, "derived_data", None)
        assert isinstance(declared, DerivedData), model
        assert declared.floor == AGGREGATE_FLOOR and declared.erasure, model
        assert all(model._meta.get_field(name) for name in declared.fields)


def test_erasing_a_person_whose_region_is_a_feature_column_computes_the_features_again(workspace):
    from insights.models import FeatureSet, InsightJob

    bretonne = make_profile(workspace=workspace, region="Bretagne")
    FeatureSet.objects.create(
        workspace=workspace,
        definition=[{"name": "region_0", "facet": "geographic", "label": "Region: Bretagne", "value": "Bretagne"}],
    )
    profiles_erase(workspace_id=workspace.pk, profile_ids=[bretonne.pk])
    assert InsightJob.objects.filter(workspace=workspace, kind="features", status="queued").count() == 1
    other = make_profile(workspace=workspace, region="Alsace")
    profiles_erase(workspace_id=workspace.pk, profile_ids=[other.pk])
    assert InsightJob.objects.filter(workspace=workspace, kind="features").count() == 1


def test_the_admin_shows_the_segments_own_criteria_first_and_apart(
    marketer, workspace, base, eager_tasks, django_capture_on_commit_callbacks
):
    from django.test import Client

    segment, _ = base
    analyse(marketer, segment, django_capture_on_commit_callbacks)
    user = make_user(workspace=workspace, role=Role.MARKETER)
    user.is_staff = True
    user.save()
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/admin/segments/segment/{segment.pk}/change/").content.decode()
    defining, findings = page.index('id="cible-defining-table"'), page.index('id="cible-findings-table"')
    assert defining < findings
    own = page[defining:findings]
    assert "Female" in own and "Canal préféré" not in own
    assert "Canal préféré: Application mobile".split(": ")[1] in page[findings:]
