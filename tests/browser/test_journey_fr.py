"""A marketer's whole journey, in French, in headless Chromium: she builds "women 25-34 in
Île-de-France who abandoned a cart in the last 30 days" by clicking (no JSON), sees the estimate then
the exact count, creates a campaign with an A/B test and a 10 % control group, activates it, and
reads what it caused once orders arrive."""

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from campaigns.experiments import arms, place_of
from campaigns.models import Campaign, Touch
from core.statistics import table_analyze
from customers.models import Event, Order, Profile
from privacy.models import ConsentRecord
from segments.models import Segment
from tests.browser.helpers import ARTIFACTS, PASSWORD, member
from tests.factories import make_workspace

pytestmark = pytest.mark.browser

WANTED = {
    "all": [
        {"field": "gender", "op": "eq", "value": "female"},
        {"field": "age", "op": "between", "value": [25, 34]},
        {"field": "region", "op": "eq", "value": "ile-de-france"},
        {"event": "cart_abandoned", "within": "P30D"},
    ]
}


def base(workspace) -> list[Profile]:
    """700 people: half women, two thirds aged 30 (the others 50), four fifths in Île-de-France (written
    with its accents), three quarters with a cart abandoned 5 days ago; all may be e-mailed."""
    today = date.today()
    people = Profile.objects.bulk_create(
        [
            Profile(
                workspace=workspace,
                external_id=f"P{n}",
                first_name=f"Personne{n}",
                email=f"p{n}@example.org",
                gender="female" if n % 2 == 0 else "male",
                birth_date=today.replace(year=today.year - (30 if n % 3 else 50)) - timedelta(days=10),
                region="Île-de-France" if n % 5 else "Bretagne",
                country="FR",
            )
            for n in range(700)
        ]
    )
    moment = timezone.now() - timedelta(days=5)
    Event.objects.bulk_create(
        [
            Event(
                workspace=workspace,
                profile=p,
                type="cart_abandoned",
                channel="web",
                occurred_at=moment,
                idempotency_key=f"cart-{p.pk}",
            )
            for n, p in enumerate(people)
            if n % 4 != 3
        ]
    )
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                workspace=workspace,
                profile=p,
                purpose="direct_marketing",
                channel="email",
                status="granted",
                recorded_at=moment - timedelta(days=30),
                source="test",
            )
            for p in people
        ]
    )
    for model in (Profile, Event, ConsentRecord):
        table_analyze(table=model._meta.db_table)
    return people


def wanted(n: int) -> bool:
    return n % 2 == 0 and n % 3 != 0 and n % 5 != 0 and n % 4 != 3


def add_condition(page, group, criterion: str):
    group.locator(":scope > .cible-actions .cible-add").click()
    row = group.locator(":scope > .cible-children > .cible-condition").last
    row.locator("select.cible-criterion").select_option(label=criterion)
    return group.locator(":scope > .cible-children > .cible-condition").last


def test_a_marketer_builds_a_segment_runs_an_ab_test_and_reads_its_uplift_in_french(
    browser, live_server, transactional_db, eager_tasks, settings
):
    settings.CIBLE_ESTIMATE_FROM = 100  # an estimate first, as on a large base
    workspace = make_workspace(slug="maison")
    people = base(workspace)
    expected = sum(1 for n in range(len(people)) if wanted(n))
    marketer = member(workspace, Role.MARKETER)

    context = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/admin/")
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    # Cible's own face, in French, the lists grouped by the journey.
    expect(page.locator("#site-name")).to_have_text("Cible")
    expect(page.locator("#content-main")).to_contain_text("Connaître")
    expect(page.locator("#content-main")).to_contain_text("Segmenter")
    expect(page.locator("#content-main")).to_contain_text("Protéger")
    # The home page: the base at a glance.
    expect(page.locator("#cible-home-base")).to_contain_text("700")
    expect(page.locator("#cible-home-ages .cible-bar[data-label='25-34']")).to_contain_text("466 · 66,6 %")
    expect(page.locator("#cible-home-consent .cible-bar[data-label='E-mail']")).to_contain_text("700 · 100,0 %")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-home-fr.png"), full_page=True)

    # --- the segment, by clicking ----------------------------------------------------------------
    page.goto("/admin/segments/segment/add/")
    expect(page.locator("h1")).to_contain_text("Ajout")
    page.select_option("#id_workspace", label=workspace.name)
    page.fill("#id_name", "Franciliennes au panier abandonné")
    root = page.locator(".cible-builder > .cible-group")
    expect(root.locator(".cible-empty")).to_contain_text("Ajoutez une condition")

    gender = add_condition(page, root, "Genre")
    gender.locator("select.cible-op").select_option(label="est")
    gender.locator("select.cible-input").select_option(label="Femme")
    age = add_condition(page, root, "Âge")
    age.locator("select.cible-op").select_option(label="est entre")
    age.locator("input.cible-low").fill("25")
    age.locator("input.cible-high").fill("34")
    region = add_condition(page, root, "Région")
    region.locator("select.cible-op").select_option(label="est")
    region.locator("input.cible-input").press_sequentially("ile-de-fr")
    # Type-ahead offers the value as the data holds it, with its accents.
    expect(region.locator("datalist option").first).to_have_attribute("value", "Île-de-France")
    region.locator("input.cible-input").fill("ile-de-france")
    with page.expect_response(
        lambda r: (
            "/segments/segment/preview/" in r.url and json.loads(r.request.post_data or "{}").get("mode") == "estimate"
        )
    ) as estimated:
        cart = add_condition(page, root, "A fait une action")
        cart.locator("select.cible-event").select_option(label="Panier abandonné")
        cart.locator("input.cible-days").fill("30")
    estimate = estimated.value.json()
    # The estimate is the share of the fixed sample (ids that are multiples of 64), scaled to the base.
    sampled = [n for n, p in enumerate(people) if p.pk % 64 == 0]
    assert estimate["estimate"] is True and estimate["sampled"] == len(sampled)
    assert estimate["count"] == round(sum(1 for n in sampled if wanted(n)) / len(sampled) * len(people))
    assert estimate["low"] <= estimate["count"] <= estimate["high"]

    status = page.locator(".cible-builder-status")
    expect(page.locator("#cible-preview-count")).to_have_text(re.compile(rf"^{expected}\s+personnes$"))
    expect(status).to_contain_text("Décompte exact")
    expect(status.locator(".cible-sentence")).to_have_text(
        "Genre est Femme, Âge est entre 25 et 34, Région est « ile-de-france » et a fait « panier abandonné » "
        "dans les 30 derniers jours"
    )
    page.screenshot(path=str(ARTIFACTS / "admin-segment-builder-fr.png"), full_page=True)
    page.locator("input[name=_save]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("a été ajouté")
    segment = Segment.objects.get(workspace=workspace)
    assert segment.definition == WANTED
    # Its audience, computed by the worker (in-process here), the page following its progress.
    page.goto(f"/admin/segments/segment/{segment.pk}/change/")
    page.get_by_role("button", name="Actualiser maintenant").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Actualisation de l’audience")
    expect(page.locator(".cible-status[data-job=audience]")).to_have_text("Prête", timeout=30_000)
    expect(page.locator(".field-audience_summary")).to_contain_text(f"{expected} membres")

    # --- the campaign: an A/B test with a 10 % control group -----------------------------------
    page.goto("/admin/campaigns/campaign/add/")
    page.select_option("#id_workspace", label=workspace.name)
    page.fill("#id_name", "Relance panier")
    page.get_by_label("E-mail").check()
    start = timezone.localtime() - timedelta(hours=1)
    page.fill("#id_starts_at_0", start.strftime("%d/%m/%Y"))
    page.fill("#id_starts_at_1", start.strftime("%H:%M:%S"))
    page.fill("#id_ends_at_0", (start + timedelta(days=30)).strftime("%d/%m/%Y"))
    page.fill("#id_ends_at_1", "23:00:00")
    page.fill("#id_budget_total", "500")
    page.fill("#id_holdout_percent", "10")
    add = page.locator(".inline-group .add-row a")
    for n, variant in enumerate(["A", "B"]):
        add.click()
        page.select_option(f"#id_targets-{n}-segment", label=segment.name)
        page.fill(f"#id_targets-{n}-variant", variant)
        page.fill(f"#id_targets-{n}-split_weight", "50")
        page.fill(f"#id_targets-{n}-subject_template", f"Votre panier vous attend ({variant})")
        page.fill(f"#id_targets-{n}-body_template", "Bonjour {{ first_name }}, votre panier vous attend.")
    page.locator("input[name=_continue]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("a été ajouté")
    campaign = Campaign.objects.get(workspace=workspace)
    assert campaign.holdout_percent == Decimal("10.0")
    assert sorted(campaign.targets.values_list("variant", "split_weight")) == [("A", 50), ("B", 50)]

    # Before activating: the reach, target by target, and the message for a real member.
    expect(page.locator("#cible-reach thead")).to_contain_text("Le recevraient")
    expect(page.locator("#cible-setup")).to_contain_text("Votre panier vous attend (A)")
    expect(page.locator("#cible-setup")).to_contain_text("Bonjour Personne")
    page.screenshot(path=str(ARTIFACTS / "admin-campaign-setup-fr.png"), full_page=True)
    page.get_by_role("button", name="Activer").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Activée : la campagne est active.")

    expect(page.locator("#cible-sends")).to_contain_text("Transmis au canal")
    # Nobody in the control group was contacted; each member of the rest got one variant.
    campaign.refresh_from_db()
    ranges = arms(campaign)
    control_end = min(low for low, _high in ranges.values())
    members = [p for n, p in enumerate(people) if wanted(n)]
    touched = dict(Touch.objects.filter(campaign=campaign).values_list("profile_id", "target_id"))
    controls = [p for p in members if place_of(p.pk, campaign.pk) < control_end]
    assert controls and not any(p.pk in touched for p in controls)
    assert len(touched) == len(members) - len(controls)

    # --- orders arrive; the experiment reads against the control group --------------------------
    now = timezone.now()
    buyers = [
        p for i, p in enumerate(members) if (p.pk in touched and i % 2 == 0) or (p.pk not in touched and i % 4 == 0)
    ]
    Order.objects.bulk_create(
        [
            Order(
                workspace=workspace,
                profile=p,
                order_id=f"O{p.pk}",
                amount=Decimal("42.00"),
                currency="EUR",
                ordered_at=now,
                channel="web",
            )
            for p in buyers
        ]
    )
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/performance/")
    heading = page.locator("#cible-experiment")
    expect(heading).to_have_text("Ce que la campagne a produit : groupe témoin de 10 %")
    table = page.locator("#cible-experiment-table")
    expect(table.locator("thead")).to_contain_text("Hausse (intervalle à 95 %)")
    for variant in ("A", "B"):
        expect(table.locator(f"tr[data-variant={variant}]")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "admin-experiment-fr.png"), full_page=True)
    page.locator("#cible-by-incremental").click()
    expect(page.locator("#cible-reallocation-title + p")).to_contain_text("Selon le ROAS incrémental")
    context.close()
