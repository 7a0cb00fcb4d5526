from django.contrib import admin
from django.core.exceptions import ValidationError

from accounts.admin_base import ReadOnlyScopedAdmin, WorkspaceScopedAdmin, WorkspaceScopedForm, roles_for
from accounts.roles import Capability
from programmatic.models import BidDay, BidderDay, Creative, LineItem


@admin.register(Creative)
class CreativeAdmin(WorkspaceScopedAdmin):
    write_capability = Capability.RUN_CAMPAIGNS
    list_display = ["name", "width", "height", "advertiser_domain", "active", "workspace"]
    list_filter = ["workspace", "active"]
    search_fields = ["name", "advertiser_domain"]


class LineItemForm(WorkspaceScopedForm):
    class Meta:
        model = LineItem
        fields = [
            "target",
            "base_cpm",
            "min_cpm",
            "max_cpm",
            "value_model",
            "cap_impressions",
            "cap_hours",
            "dayparts",
            "weekdays",
            "area",
            "inventory",
            "creatives",
        ]

    def clean(self):
        cleaned = super().clean()
        target = cleaned.get("target")
        if target is not None:
            if target.workspace_id not in self.allowed_workspace_ids:
                raise ValidationError({"target": "You cannot write in this workspace."})
            foreign = [c for c in cleaned.get("creatives") or [] if c.workspace_id != target.workspace_id]
            if foreign:
                self.add_error("creatives", "These creatives belong to another workspace.")
        return cleaned


@admin.register(LineItem)
class LineItemAdmin(WorkspaceScopedAdmin):
    form = LineItemForm
    write_capability = Capability.RUN_CAMPAIGNS
    list_display = ["target", "base_cpm", "min_cpm", "max_cpm", "cap_impressions", "cap_hours", "workspace"]
    list_filter = ["workspace"]
    list_select_related = ["target__campaign", "target__segment"]
    filter_horizontal = ["creatives"]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "creatives" and not request.user.is_superuser:
            kwargs["queryset"] = Creative.objects.filter(workspace__in=list(roles_for(request)))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(BidDay)
class BidDayAdmin(ReadOnlyScopedAdmin):
    list_display = ["day", "line_item", "bids", "wins", "impressions", "losses", "spend_nanos"]
    list_filter = ["workspace", "day"]


@admin.register(BidderDay)
class BidderDayAdmin(ReadOnlyScopedAdmin):
    list_display = ["day", "requests", "bid_requests", "late", "no_bid", "workspace"]
    list_filter = ["workspace"]
