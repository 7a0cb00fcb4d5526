import django_filters
from django.db.models import F, Q
from django.db.models.lookups import Exact
from django.utils import timezone

from core.api import DateTimeFilter, FilterSet, IntegerFilter
from core.folding import Folded, fold
from customers.models import (
    AttributeDefinition,
    Event,
    Identity,
    ImportJob,
    Order,
    Profile,
    SurveyQuestion,
    SurveyResponse,
)


class ProfileFilter(FilterSet):
    external_id = django_filters.CharFilter()
    email = django_filters.CharFilter(method="filter_email")
    city = django_filters.CharFilter(
        method="filter_city", help_text="The city, compared as segment rules compare places: any case, any accents."
    )
    postal_code_prefix = django_filters.CharFilter(field_name="postal_code", lookup_expr="startswith")
    region = django_filters.CharFilter()
    country = django_filters.CharFilter()
    age_min = IntegerFilter(method="filter_age_min", min_value=0, max_value=150)
    age_max = IntegerFilter(method="filter_age_max", min_value=0, max_value=150)
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    updated_after = DateTimeFilter(field_name="updated_at", lookup_expr="gte")
    search = django_filters.CharFilter(method="filter_search", help_text="Name, e-mail or external id contains.")

    class Meta:
        model = Profile
        fields = ["gender", "socio_professional_category", "lifecycle_stage", "anonymous"]

    def filter_city(self, queryset, name, value):
        return queryset.filter(Exact(Folded(F("city")), fold(value)))

    def filter_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())

    def filter_age_min(self, queryset, name, value):
        return queryset.aged_between(int(value), None, today=timezone.localdate())

    def filter_age_max(self, queryset, name, value):
        return queryset.aged_between(None, int(value), today=timezone.localdate())

    def filter_search(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            Q(external_id=value)
            | Q(email__icontains=value)
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
        )


class IdentityFilter(FilterSet):
    class Meta:
        model = Identity
        fields = ["profile", "type", "value"]


class AttributeDefinitionFilter(FilterSet):
    class Meta:
        model = AttributeDefinition
        fields = ["key", "type"]


class SurveyQuestionFilter(FilterSet):
    class Meta:
        model = SurveyQuestion
        fields = ["survey", "question"]


class EventFilter(FilterSet):
    occurred_after = DateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = DateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["profile", "type", "channel"]


class OrderFilter(FilterSet):
    ordered_after = DateTimeFilter(field_name="ordered_at", lookup_expr="gte")
    ordered_before = DateTimeFilter(field_name="ordered_at", lookup_expr="lt")
    amount_min = django_filters.NumberFilter(field_name="amount", lookup_expr="gte")
    amount_max = django_filters.NumberFilter(field_name="amount", lookup_expr="lte")

    class Meta:
        model = Order
        fields = ["profile", "order_id", "channel", "status", "currency"]


class SurveyResponseFilter(FilterSet):
    class Meta:
        model = SurveyResponse
        fields = ["profile", "survey", "question"]


class ImportJobFilter(FilterSet):
    class Meta:
        model = ImportJob
        fields = ["kind", "status"]
