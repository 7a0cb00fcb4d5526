"""The campaign's surroundings in the admin: the spend ledger, frequency caps, connectors, deliveries."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy

from accounts.admin_base import (
    ReadOnlyScopedAdmin,
    WorkspaceScopedAdmin,
    WorkspaceScopedForm,
    errors_on_form,
    workspace_ids_with,
)
from accounts.roles import Capability
from campaigns import services
from campaigns.models import (
    ChannelPreference,
    Connector,
    FrequencyCap,
    Handoff,
    LedgerEntry,
    PendingSend,
    Touch,
)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyScopedAdmin):
    """The spend ledger: append-only, so read-only here too."""

    list_display = [
        "recorded_at",
        "campaign",
        "kind",
        "amount",
        "balance",
        "currency",
        "day",
        "idempotency_key",
        "source",
        "author",
        "reason",
    ]
    list_filter = ["kind", "campaign", "workspace", "day"]
    search_fields = ["idempotency_key", "reason", "campaign__name"]
    list_select_related = ["campaign", "author"]
    date_hierarchy = "recorded_at"


@admin.register(FrequencyCap)
class FrequencyCapAdmin(WorkspaceScopedAdmin):
    write_capability = Capability.RUN_CAMPAIGNS
    list_display = ["workspace", "channel", "max_touches", "window"]
    list_filter = ["workspace", "channel"]


class ConnectorForm(WorkspaceScopedForm):
    url = forms.URLField(required=False, assume_scheme="https", max_length=500)
    secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Empty keeps the current secret."
    )

    class Meta:
        model = Connector
        fields = [
            "workspace",
            "channel",
            "kind",
            "url",
            "secret",
            "batch_size",
            "timeout_seconds",
            "max_attempts",
            "active",
        ]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("secret") and self.instance.pk:
            cleaned["secret"] = self.instance.secret
        try:
            services.connector_check(
                kind=cleaned.get("kind"), url=cleaned.get("url") or "", secret=cleaned.get("secret") or ""
            )
        except ValidationError as exc:
            errors_on_form(self, exc)
        return cleaned


@admin.register(Connector)
class ConnectorAdmin(WorkspaceScopedAdmin):
    form = ConnectorForm
    write_capability = Capability.MANAGE_WORKSPACE
    list_display = ["workspace", "channel", "kind", "url", "active"]
    list_filter = ["workspace", "kind", "active"]


@admin.register(Touch)
class TouchAdmin(ReadOnlyScopedAdmin):
    list_display = ["created_at", "campaign", "target", "profile", "channel", "variant", "status", "sent_at"]
    list_filter = ["status", "channel", "workspace"]
    list_select_related = ["campaign", "target__segment", "profile"]
    raw_id_fields = ["profile", "event"]
    show_full_result_count = False


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyScopedAdmin):
    list_display = ["created_at", "campaign", "channel", "kind", "touches", "attempts", "status", "error"]
    list_filter = ["status", "kind", "channel", "workspace"]


@admin.register(PendingSend)
class PendingSendAdmin(ReadOnlyScopedAdmin):
    list_display = ["due_at", "target", "profile", "status", "reason"]
    list_filter = ["status", "workspace"]
    raw_id_fields = ["profile", "event"]


@admin.register(ChannelPreference)
class ChannelPreferenceAdmin(ReadOnlyScopedAdmin):
    """Each person's responsiveness by channel, rank 1 their preferred channel (computed daily)."""

    list_display = ["profile", "channel", "rank", "touches", "responses", "score", "computed_at"]
    list_filter = ["rank", "channel", "workspace"]
    search_fields = ["profile__external_id"]
    list_select_related = ["profile"]
    raw_id_fields = ["profile"]
    show_full_result_count = False
    actions = ["compute_now"]

    @admin.action(description=gettext_lazy("Compute the channel preferences of these workspaces again now"))
    def compute_now(self, request, queryset):
        from campaigns.tasks import channel_preferences_compute_task

        allowed = workspace_ids_with(request, Capability.RUN_CAMPAIGNS)
        workspaces = sorted(set(queryset.values_list("workspace_id", flat=True)) & allowed)
        for workspace_id in workspaces:
            channel_preferences_compute_task.delay(workspace_id=workspace_id)
        self.message_user(
            request,
            gettext("Channel preferences queued for computation in %(count)s workspace(s).")
            % {"count": len(workspaces)},
            messages.SUCCESS if workspaces else messages.WARNING,
        )
