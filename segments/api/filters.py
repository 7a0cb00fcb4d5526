import django_filters

from core.api import FilterSet, IdFilter
from segments.models import Segment


class SegmentFilter(FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    status = django_filters.CharFilter(field_name="audience__status")
    uses = IdFilter(field_name="depends_on", help_text="Segments that use this segment id.")

    class Meta:
        model = Segment
        fields = ["kind", "owner"]
