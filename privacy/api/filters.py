import django_filters

from core.api import BooleanFilter, DateTimeFilter, FilterSet
from privacy.models import AuditEntry, ConsentRecord, DataSubjectRequest, RemovalNotice, Suppression


class ConsentRecordFilter(FilterSet):
    recorded_after = DateTimeFilter(field_name="recorded_at", lookup_expr="gte")
    recorded_before = DateTimeFilter(field_name="recorded_at", lookup_expr="lt")

    class Meta:
        model = ConsentRecord
        fields = ["profile", "purpose", "channel", "status", "legal_basis", "source"]


class RequestFilter(FilterSet):
    due_before = django_filters.DateFilter(field_name="due_on", lookup_expr="lte")
    open = BooleanFilter(method="filter_open")

    class Meta:
        model = DataSubjectRequest
        fields = ["kind", "status", "profile"]

    def filter_open(self, queryset, name, value):
        return queryset.open() if value else queryset.exclude(pk__in=queryset.open().values("pk"))


class SuppressionFilter(FilterSet):
    class Meta:
        model = Suppression
        fields = ["kind", "reason", "hash"]


class AuditEntryFilter(FilterSet):
    after = DateTimeFilter(field_name="at", lookup_expr="gte")
    before = DateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = ["action", "actor", "object_type", "object_id", "profile_id"]


class RemovalNoticeFilter(FilterSet):
    class Meta:
        model = RemovalNotice
        fields = ["status", "channel", "reason", "profile", "request"]
