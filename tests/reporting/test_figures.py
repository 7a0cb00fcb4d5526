from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Campaign, LedgerEntry
from core.time import local_day
from reporting.models import DeliveryFigure
from reporting.services import FiguresRejected, figure_upsert, figures_ingest
from tests.factories import make_running_campaign

pytestmark = pytest.mark.django_db


def _day(campaign, days_ago=1):
    return local_day(campaign.workspace, timezone.now() - timedelta(days=days_ago))


def _row(campaign, **values):
    row = {
        "campaign": campaign,
        "target": campaign.targets.first(),
        "channel": "email",
        "day": _day(campaign),
        "source": "esp",
        "impressions": 1000,
        "clicks": 50,
        "conversions": 3,
        "spend": Decimal("120.00"),
        "revenue": Decimal("300.00"),
    }
    row.update(values)
    return row


def test_a_replayed_row_changes_nothing_and_spend_lands_once(workspace):
    campaign = make_running_campaign(workspace=workspace)
    first = figures_ingest(rows=[_row(campaign)])
    again = figures_ingest(rows=[_row(campaign)])
    assert (first["created"], again["unchanged"]) == (1, 1)
    assert DeliveryFigure.objects.count() == 1
    spend = LedgerEntry.objects.filter(campaign=campaign, kind="spend")
    assert [(e.amount, e.channel, e.day) for e in spend] == [(Decimal("120.00"), "email", _day(campaign))]
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("120.00")


def test_a_restatement_books_the_difference_up_and_down(workspace):
    campaign = make_running_campaign(workspace=workspace)
    figures_ingest(rows=[_row(campaign)])
    figures_ingest(rows=[_row(campaign, spend=Decimal("150.00"), impressions=1300)])
    figures_ingest(rows=[_row(campaign, spend=Decimal("140.00"))])
    figures_ingest(rows=[_row(campaign, spend=Decimal("140.00"))])  # replay of the last one
    amounts = sorted(LedgerEntry.objects.filter(campaign=campaign, kind="spend").values_list("amount", flat=True))
    assert amounts == [Decimal("-10.00"), Decimal("30.00"), Decimal("120.00")]
    campaign.refresh_from_db()
    figure = DeliveryFigure.objects.get()
    assert campaign.spent == figure.booked_spend == figure.spend == Decimal("140.00")
    assert figure.revision == 3 and figure.impressions == 1000


def test_the_natural_key_separates_sources_targets_and_days(workspace):
    campaign = make_running_campaign(workspace=workspace, targets=2)
    a, b = campaign.targets.all()
    figures_ingest(
        rows=[
            _row(campaign, target=a),
            _row(campaign, target=b),
            _row(campaign, target=None),
            _row(campaign, target=None, source="other"),
            _row(campaign, target=a, day=_day(campaign, 2)),
        ]
    )
    assert DeliveryFigure.objects.count() == 5
    figures_ingest(rows=[_row(campaign, target=None)])
    assert DeliveryFigure.objects.count() == 5


def test_a_bad_row_rejects_the_whole_batch_with_its_index(workspace, other_workspace):
    campaign = make_running_campaign(workspace=workspace)
    other = make_running_campaign(workspace=other_workspace)
    with pytest.raises(FiguresRejected) as caught:
        figures_ingest(
            rows=[
                _row(campaign),
                _row(campaign, channel="sms"),
                _row(campaign, day=_day(campaign, -2)),
                _row(campaign, target=other.targets.first()),
            ]
        )
    errors = caught.value.errors
    assert set(errors) == {"1", "2", "3"}
    assert errors["1"]["channel"][0]["code"] == "invalid_channel"
    assert errors["2"]["day"][0]["code"] == "future"
    assert errors["3"]["target"][0]["message"] == "This target belongs to another campaign."
    assert not DeliveryFigure.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_spend_over_the_cap_is_refused_and_nothing_is_written(workspace):
    campaign = make_running_campaign(workspace=workspace, budget_total=Decimal("100.00"))
    with pytest.raises(FiguresRejected) as caught:
        figures_ingest(rows=[_row(campaign)])
    assert caught.value.errors["0"]["amount"][0]["code"] == "budget_exceeded"
    assert not DeliveryFigure.objects.exists()


def test_a_completed_campaign_settles_late_figures_a_cancelled_one_refuses_them(workspace):
    campaign = make_running_campaign(workspace=workspace)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
    figure, outcome = figure_upsert(**_row(campaign))
    assert outcome == "created" and figure.booked_spend == Decimal("120.00")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    with pytest.raises(ValidationError) as caught:
        figure_upsert(**_row(campaign, spend=Decimal("130.00")))
    assert "accepts no spend" in str(caught.value)
