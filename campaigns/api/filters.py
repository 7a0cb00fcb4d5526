import django_filters
from django.db import connection

from campaigns.models import Campaign, CampaignChannel
from core.api import DateTimeFilter, FilterSet, IdFilter


class CampaignFilter(FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    channel = django_filters.ChoiceFilter(choices=CampaignChannel.choices, method="filter_channel")
    segment = IdFilter(field_name="targets__segment", distinct=True, help_text="A segment id.")
    starts_after = DateTimeFilter(field_name="starts_at", lookup_expr="gte")
    starts_before = DateTimeFilter(field_name="starts_at", lookup_expr="lt")
    ends_after = DateTimeFilter(field_name="ends_at", lookup_expr="gte")
    ends_before = DateTimeFilter(field_name="ends_at", lookup_expr="lt")
    running_on = django_filters.DateFilter(method="filter_running_on", help_text="Campaigns scheduled on this day.")

    class Meta:
        model = Campaign
        fields = ["status", "objective", "owner", "pacing"]

    def filter_channel(self, queryset, name, value):
        if connection.vendor == "postgresql":
            return queryset.filter(channels__contains=[value])
        # SQLite has no JSON containment: the channel's quoted value in the list's JSON text.
        return queryset.filter(channels__icontains=f'"{value}"')

    def filter_running_on(self, queryset, name, value):
        return queryset.filter(starts_at__date__lte=value, ends_at__date__gte=value)
