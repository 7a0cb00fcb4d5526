import django_filters

from segments.models import Segment


class SegmentFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    status = django_filters.CharFilter(field_name="audience__status")
    uses = django_filters.NumberFilter(field_name="depends_on", help_text="Segments that use this segment id.")

    class Meta:
        model = Segment
        fields = ["kind", "owner"]
