from django_filters import FilterSet, NumberFilter

from core.api import IdFilter
from insights.models import ClvScore


class ClvScoreFilter(FilterSet):
    run = IdFilter(help_text="A CLV run's id (default: the current run).")
    profile = IdFilter(help_text="A profile id.")
    decile_min = NumberFilter(field_name="decile", lookup_expr="gte", min_value=1, max_value=10)
    p_alive_max = NumberFilter(field_name="p_alive", lookup_expr="lte", min_value=0, max_value=1)
    p_alive_change_max = NumberFilter(
        field_name="p_alive_change",
        lookup_expr="lte",
        min_value=-1,
        max_value=1,
        help_text="p_alive fell at least this much since the previous run (-0.1: by 0.1 or more).",
    )

    class Meta:
        model = ClvScore
        fields = ["run", "profile", "decile"]
