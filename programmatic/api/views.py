from django.db import transaction
from django_filters import DateFilter
from rest_framework import mixins

from accounts.api.base import WorkspaceScopedViewSet
from accounts.roles import Capability
from core.api import FilterSet, IdFilter
from programmatic.api import serializers as s
from programmatic.models import BidDay, BidderDay, Creative, LineItem


class CreativeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """Banners: markup (the bid's adm), size, landing page, advertiser domain and IAB categories."""

    model = Creative
    serializer_class = s.CreativeIO
    write_capability = Capability.RUN_CAMPAIGNS
    filterset_fields = ["active", "width", "height"]

    @transaction.atomic  # a duplicate name fails inside a savepoint, answered 409
    def perform_create(self, serializer):
        serializer.save(workspace=self.workspace)

    @transaction.atomic
    def perform_update(self, serializer):
        serializer.save()


class LineItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """How a display target bids: base CPM scaled by a value model within bounds, frequency cap, day
    parts, area, inventory and creatives. Published to the bidder with the campaign's state."""

    model = LineItem
    serializer_class = s.LineItemIO
    write_capability = Capability.RUN_CAMPAIGNS
    filterset_fields = ["target"]

    def scoped_queryset(self, queryset):
        return queryset.prefetch_related("creatives")

    @transaction.atomic
    def perform_create(self, serializer):
        serializer.save(workspace=self.workspace)

    @transaction.atomic
    def perform_update(self, serializer):
        serializer.save()


class BidDayFilter(FilterSet):
    line_item = IdFilter(help_text="A line item's id.")
    campaign = IdFilter(field_name="line_item__target__campaign", help_text="A campaign's id.")
    since = DateFilter(field_name="day", lookup_expr="gte")
    until = DateFilter(field_name="day", lookup_expr="lte")

    class Meta:
        model = BidDay
        fields = ["line_item", "campaign", "since", "until"]


class BidDayViewSet(mixins.ListModelMixin, WorkspaceScopedViewSet):
    """What the bidder did, per line item and day of the workspace's calendar, from its notices."""

    model = BidDay
    serializer_class = s.BidDayOutput
    filterset_class = BidDayFilter

    def scoped_queryset(self, queryset):
        return queryset.select_related("line_item__target")


class BidderDayFilter(FilterSet):
    since = DateFilter(field_name="day", lookup_expr="gte")
    until = DateFilter(field_name="day", lookup_expr="lte")

    class Meta:
        model = BidderDay
        fields = ["since", "until"]


class BidderDayViewSet(mixins.ListModelMixin, WorkspaceScopedViewSet):
    """The workspace's bid requests per day: how many, the bid rate, late answers, and the
    requests not bid on by reason (no_line, schedule, size, blocked, geo, unknown_person,
    no_consent, tcf, audience, cap, budget, pacing, currency, floor, private_auction)."""

    model = BidderDay
    serializer_class = s.BidderDayOutput
    filterset_class = BidderDayFilter
