"""Experiments: a control group never contacted, A/B splits of one segment's audience, and what the
campaign caused, checked against an independent computation (statsmodels, scipy on the raw
per-person figures)."""

import random
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from campaigns.activation import campaign_deliveries, campaign_forecast
from campaigns.experiments import PLACES, arms, experiment_results, place_expression, place_of, sample_size
from campaigns.models import Campaign, Touch
from core.statistics import table_analyze
from customers.models import Order, Profile
from privacy.models import ConsentRecord
from tests.factories import make_campaign, make_segment

PAST = timezone.now() - timedelta(days=30)


def base(workspace, n: int) -> list[Profile]:
    """n people with e-mail consent."""
    people = Profile.objects.bulk_create(
        [Profile(workspace=workspace, external_id=f"P{i}", email=f"p{i}@example.org", country="FR") for i in range(n)]
    )
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                workspace=workspace,
                profile=p,
                purpose="direct_marketing",
                channel="email",
                status="granted",
                recorded_at=PAST,
                source="test",
            )
            for p in people
        ]
    )
    analysed(Profile, ConsentRecord)
    return people


def analysed(*models) -> None:
    """Planner statistics for rows written in bulk, as the ingestion's batches get them
    (core.statistics); PostgreSQL's autovacuum may be off."""
    for model in models:
        table_analyze(table=model._meta.db_table)


def ab_campaign(workspace, holdout="10", weights=(1, 1)) -> Campaign:
    segment = make_segment(workspace=workspace)
    campaign = make_campaign(
        workspace=workspace,
        holdout_percent=Decimal(holdout),
        targets=[
            {"segment": segment, "variant": chr(65 + i), "subject_template": "Hello", "split_weight": w}
            for i, w in enumerate(weights)
        ],
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE, activated_at=PAST)
    campaign.refresh_from_db()
    return campaign


def test_the_database_draws_the_same_places_as_python_and_they_spread_evenly(workspace):
    people = base(workspace, 2000)
    drawn = dict(
        Profile.objects.filter(workspace=workspace).annotate(place=place_expression(77)).values_list("pk", "place")
    )
    assert drawn == {p.pk: place_of(p.pk, 77) for p in people}
    # Over many ids, each tenth of the range holds about a tenth of the people, and another
    # campaign draws other places (the control groups of two campaigns are not the same people).
    places = np.array([place_of(i, 77) for i in range(1, 100_001)])
    counts = np.bincount(places * 10 // PLACES, minlength=10)
    assert stats.chisquare(counts).pvalue > 0.001
    other = np.array([place_of(i, 78) for i in range(1, 100_001)])
    both = np.mean((places < PLACES // 10) & (other < PLACES // 10))
    assert abs(both - 0.01) < 0.003


def test_the_control_group_is_never_contacted_and_variants_share_the_audience(workspace):
    people = base(workspace, 3000)
    campaign = ab_campaign(workspace, holdout="20", weights=(3, 1))
    a, b = campaign.targets.order_by("pk")
    ranges = arms(campaign)
    control_end = int(PLACES * 0.2)
    assert ranges[a.pk][0] == control_end and ranges[b.pk][1] == PLACES and ranges[a.pk][1] == ranges[b.pk][0]
    forecast = {row["target"]: row for row in campaign_forecast(campaign=campaign)["targets"]}
    campaign_deliveries(campaign_id=campaign.pk)
    touched = dict(Touch.objects.filter(campaign=campaign).values_list("profile_id", "target_id"))
    expected = {}
    for person in people:
        place = place_of(person.pk, campaign.pk)
        if place >= control_end:
            expected[person.pk] = a.pk if place < ranges[a.pk][1] else b.pk
    assert touched == expected  # nobody in control, each person in one variant
    share_a = sum(1 for t in touched.values() if t == a.pk) / len(people)
    assert abs(share_a - 0.6) < 0.04 and abs(len(touched) / len(people) - 0.8) < 0.04
    assert forecast[a.pk]["members"] == 3000
    assert forecast[a.pk]["excluded_by_experiment"] == 3000 - sum(1 for t in touched.values() if t == a.pk)


def test_the_results_match_an_independent_computation(workspace):
    people = base(workspace, 4000)
    campaign = ab_campaign(workspace, holdout="25")
    a, b = campaign.targets.order_by("pk")
    ranges = arms(campaign)
    rng = random.Random(5)
    groups: dict[str, list[int]] = {"control": [], "A": [], "B": []}
    for person in people:
        place = place_of(person.pk, campaign.pk)
        name = "control" if place < ranges[a.pk][0] else ("A" if place < ranges[a.pk][1] else "B")
        groups[name].append(person.pk)
    # Variant A lifts conversion from 5 % to 12 %; B to 6 %; orders of 20 to 120 EUR.
    rates = {"control": 0.05, "A": 0.12, "B": 0.06}
    orders, revenue = [], {}
    for name, ids in groups.items():
        for pk in ids:
            amount = 0.0
            if rng.random() < rates[name]:
                for _ in range(rng.choice((1, 1, 2))):
                    value = Decimal(rng.randint(2000, 12000)) / 100
                    amount += float(value)
                    orders.append(
                        Order(
                            workspace=workspace,
                            profile_id=pk,
                            order_id=f"O{len(orders)}",
                            amount=value,
                            currency="EUR",
                            ordered_at=timezone.now() - timedelta(days=3),
                            status=Order.Status.COMPLETED,
                        )
                    )
            revenue[pk] = amount
    # Not counted: an order before the activation, and a cancelled one.
    early, cancelled = groups["A"][0], groups["A"][1]
    orders.append(Order(workspace=workspace, profile_id=early, order_id="OLD", amount=Decimal(999), currency="EUR",
                        ordered_at=PAST - timedelta(days=1), status=Order.Status.COMPLETED))  # fmt: skip
    orders.append(Order(workspace=workspace, profile_id=cancelled, order_id="CXL", amount=Decimal(999), currency="EUR",
                        ordered_at=timezone.now(), status=Order.Status.CANCELLED))  # fmt: skip
    Order.objects.bulk_create(orders)
    analysed(Order)

    result = experiment_results(campaign=campaign)
    rows = {row["variant"]: row for row in result["targets"]}
    for name in ("A", "B"):
        row = rows[name]
        treated, control = groups[name], groups["control"]
        x1 = sum(1 for pk in treated if revenue[pk] > 0)
        x0 = sum(1 for pk in control if revenue[pk] > 0)
        assert (row["arm"]["people"], row["arm"]["converters"]) == (len(treated), x1)
        assert (row["control"]["people"], row["control"]["converters"]) == (len(control), x0)
        mine = row["against_control"]
        low, high = confint_proportions_2indep(x1, len(treated), x0, len(control), method="wald", compare="diff")
        assert mine["uplift"] == pytest.approx(x1 / len(treated) - x0 / len(control), abs=1e-6)
        assert (mine["uplift_low"], mine["uplift_high"]) == (
            pytest.approx(low, abs=1e-5),
            pytest.approx(high, abs=1e-5),
        )
        _, p_value = proportions_ztest([x1, x0], [len(treated), len(control)])
        assert mine["p_value"] == pytest.approx(p_value, abs=1e-5)
        welch = stats.ttest_ind([revenue[pk] for pk in treated], [revenue[pk] for pk in control], equal_var=False)
        assert mine["revenue_p_value"] == pytest.approx(welch.pvalue, abs=1e-5)
        interval = welch.confidence_interval(0.95)
        assert mine["incremental_revenue_low"] == pytest.approx(interval.low * len(treated), abs=0.02)
        assert mine["incremental_revenue_high"] == pytest.approx(interval.high * len(treated), abs=0.02)
        assert Decimal(row["arm"]["revenue"]) == Decimal(str(round(sum(revenue[pk] for pk in treated), 2)))
    assert rows["A"]["against_control"]["significant"] and rows["A"]["against_control"]["uplift"] > 0
    assert rows["B"]["against_variant"] == "A" and rows["B"]["against_first_variant"]["uplift"] < 0


def test_the_sample_size_agrees_with_statsmodels():
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    n = sample_size(baseline=0.05, uplift=0.01)
    # Cohen's h with the normal power analysis: a different approximation, within a few percent.
    theirs = NormalIndPower().solve_power(proportion_effectsize(0.06, 0.05), alpha=0.05, power=0.8)
    assert abs(n - theirs) / theirs < 0.03
    with pytest.raises(ValueError):
        sample_size(baseline=0.5, uplift=0.6)
    with pytest.raises(ValueError):
        sample_size(baseline=0.7, uplift=-1e-189)


def test_the_api_reports_the_experiment_and_sizes_one(marketer, workspace, other_workspace):
    client = marketer
    base(workspace, 200)
    campaign = ab_campaign(workspace)
    url = f"/api/workspaces/{workspace.slug}/campaigns/{campaign.pk}/experiment/"
    body = client.get(url).json()
    assert body["holdout_percent"] == "10.0" and [t["variant"] for t in body["targets"]] == ["A", "B"]
    assert client.get(f"/api/workspaces/{other_workspace.slug}/campaigns/{campaign.pk}/experiment/").status_code in (
        403,
        404,
    )
    sizes = client.get(
        f"/api/workspaces/{workspace.slug}/campaigns/sample-size/", {"baseline": "0.05", "uplift": "0.01"}
    )
    assert sizes.status_code == 200, sizes.content
    per_group = sizes.json()["per_group"]
    assert per_group == sample_size(baseline=0.05, uplift=0.01) and sizes.json()["audience"] > per_group
    bad = client.get(f"/api/workspaces/{workspace.slug}/campaigns/sample-size/", {"baseline": "0.9", "uplift": "0.2"})
    assert bad.status_code == 400 and "uplift" in bad.json()
    tiny = client.get(
        f"/api/workspaces/{workspace.slug}/campaigns/sample-size/", {"baseline": "0.7", "uplift": "-1.3e-189"}
    )
    assert tiny.status_code == 400 and "uplift" in tiny.json()
    created = client.post(
        f"/api/workspaces/{workspace.slug}/campaigns/",
        {
            "name": "Holdout too big",
            "channels": ["email"],
            "starts_at": "2027-01-01",
            "ends_at": "2027-01-31",
            "holdout_percent": "80",
        },
        format="json",
    )
    assert created.status_code == 400 and "holdout_percent" in created.json()


def test_the_performance_page_shows_the_experiment(client, workspace):
    from django.urls import reverse

    from tests.factories import make_user

    base(workspace, 300)
    campaign = ab_campaign(workspace, holdout="20")
    client.force_login(make_user(workspace=workspace, role="marketer"))
    page = client.get(reverse("admin:campaigns_campaign_performance", args=[campaign.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="cible-experiment-table"' in html
    assert 'data-variant="A"' in html and 'data-variant="B"' in html and "20 % control group" in html


def test_an_automated_rule_reads_the_incremental_figures(workspace):
    from campaigns.services import spend_record
    from optimisation.models import Rule
    from optimisation.rules import rule_assess
    from reporting.services import rollup_run

    people = base(workspace, 1200)
    campaign = ab_campaign(workspace, holdout="30", weights=(1,))
    target = campaign.targets.get()
    Campaign.objects.filter(pk=campaign.pk).update(activated_at=timezone.now() - timedelta(days=2))
    campaign.refresh_from_db()
    rng = random.Random(9)
    # Everyone buys at the same rate, contacted or not: the campaign causes nothing.
    Order.objects.bulk_create(
        [
            Order(
                workspace=workspace,
                profile=p,
                order_id=f"O{p.pk}",
                amount=Decimal(50),
                currency="EUR",
                ordered_at=timezone.now() - timedelta(hours=5),
                status=Order.Status.COMPLETED,
            )  # fmt: skip
            for p in people
            if rng.random() < 0.1
        ]
    )
    analysed(Order)
    spend_record(campaign=campaign, target=target, amount=Decimal("200.00"), idempotency_key="s1", channel="email")
    rollup_run(workspace=workspace)  # the report's figures, which the rule's window reads
    rule = Rule(
        workspace=workspace,
        campaign=campaign,
        name="Cut what causes nothing",
        conditions=[{"kpi": "incremental_roas", "days": 7, "operator": "lt", "threshold": "1"}],
        action=Rule.Action.PAUSE,
    )
    seen = rule_assess(rule=rule, campaign=campaign, now=timezone.now())
    condition = seen["conditions"][0]
    results = experiment_results(campaign=campaign)["targets"][0]["against_control"]
    expected = (Decimal(str(results["incremental_revenue"])) / Decimal(200)).quantize(Decimal("0.0001"))
    assert Decimal(condition["value"]) == expected
    assert condition["holds"] == (expected < 1)
    # Without a control group the figure is unknown and the condition does not hold.
    Campaign.objects.filter(pk=campaign.pk).update(holdout_percent=0)
    campaign.refresh_from_db()
    seen = rule_assess(rule=rule, campaign=campaign, now=timezone.now())
    assert seen["conditions"][0]["value"] is None and not seen["conditions"][0]["holds"]


def test_reallocation_follows_the_revenue_each_target_caused(workspace):
    """By incremental ROAS: the revenue each variant caused against the control group (not the
    revenue its members brought), over its spend since the activation."""
    from optimisation.reallocation import recommendation
    from reporting.models import DailyRollup

    people = base(workspace, 2000)
    campaign = ab_campaign(workspace, holdout="20")
    a, b = campaign.targets.order_by("pk")
    ranges = arms(campaign)
    # Everyone buys once for 50 EUR in A and in the control group; in B a third buy twice.
    orders = []
    for person in people:
        place = place_of(person.pk, campaign.pk)
        in_b = place >= ranges[b.pk][0]
        times = 2 if in_b and person.pk % 3 == 0 else 1
        for n in range(times):
            orders.append(
                Order(
                    workspace=workspace,
                    profile_id=person.pk,
                    order_id=f"R{person.pk}-{n}",
                    amount=Decimal("50.00"),
                    currency="EUR",
                    ordered_at=timezone.now() - timedelta(days=1),
                    status=Order.Status.COMPLETED,
                )
            )
    Order.objects.bulk_create(orders)
    analysed(Order)
    day = timezone.localdate() - timedelta(days=1)
    for target, spend in ((a, "100.00"), (b, "100.00")):
        DailyRollup.objects.create(
            workspace=workspace,
            campaign=campaign,
            target=target,
            channel="email",
            day=day,
            spend=Decimal(spend),
            conversions=0,
            revenue=Decimal(0),
        )
    plan = recommendation(campaign=campaign, metric="incremental_roas", learning_conversions=0, min_share=Decimal(10))
    rows = {row["target"]: row for row in plan["targets"]}
    results = {row["target"]: row["against_control"] for row in experiment_results(campaign=campaign)["targets"]}
    # A caused nothing (its members buy as the control group does): it keeps only the floor.
    assert rows[a.pk]["revenue"] == Decimal(0) and rows[a.pk]["new_share"] == Decimal("10.00")
    assert rows[b.pk]["revenue"] == Decimal(str(results[b.pk]["incremental_revenue"])) > 0
    assert rows[b.pk]["new_share"] == Decimal("90.00")
    # Without a control group there is nothing to read it from.
    Campaign.objects.filter(pk=campaign.pk).update(holdout_percent=Decimal(0))
    campaign.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        recommendation(campaign=campaign, metric="incremental_roas")
    assert refused.value.error_dict["metric"][0].code == "no_control_group"
