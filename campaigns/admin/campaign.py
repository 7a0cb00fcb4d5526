"""The campaign page: its targets, the lifecycle and budget buttons, the ledger and transitions."""

from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.admin_base import (
    WorkspaceScopedAdmin,
    WorkspaceScopedForm,
    admin_datetime,
    errors_as_messages,
    errors_on_form,
    post_button,
    roles_for,
)
from accounts.roles import Capability
from campaigns import services
from campaigns.admin.setup_panels import delivery_panel, setup_panel
from campaigns.models import (
    TARGET_FIELDS,
    Campaign,
    CampaignChannel,
    Target,
    shares_over_100,
)
from campaigns.services.setup import MAX_TARGETS
from campaigns.setup_aids import campaign_calendar, message_test_send
from core.api import SafeJSONFormField
from segments.widgets import RowsEditor, RuleBuilder

Status = Campaign.Status
EDITABLE = (Status.DRAFT, Status.SCHEDULED)


class CampaignForm(WorkspaceScopedForm):
    channels = forms.MultipleChoiceField(
        label=gettext_lazy("Channels"), choices=CampaignChannel.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Campaign
        fields = [
            "workspace",
            "name",
            "objective",
            "channels",
            "channel_choice",
            "starts_at",
            "ends_at",
            "currency",
            "budget_total",
            "budget_daily",
            "pacing",
            "holdout_percent",
        ]
        labels = {
            "workspace": gettext_lazy("Workspace"),
            "name": gettext_lazy("Name"),
            "objective": gettext_lazy("Objective"),
            "starts_at": gettext_lazy("Starts at"),
            "ends_at": gettext_lazy("Ends at"),
            "currency": gettext_lazy("Currency"),
            "budget_total": gettext_lazy("Total budget"),
            "budget_daily": gettext_lazy("Daily budget"),
            "pacing": gettext_lazy("Pacing"),
            "holdout_percent": gettext_lazy("Control group (%)"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "currency" in self.fields:
            self.fields["currency"].required = False
            self.fields["currency"].help_text = _("Empty: the workspace's currency.")
        if "holdout_percent" in self.fields:
            self.fields["holdout_percent"].required = False  # empty: no control group
        if "channel_choice" in self.fields:
            self.fields["channel_choice"].required = False  # empty: every channel, as before

    def clean_channel_choice(self):
        return self.cleaned_data.get("channel_choice") or "every"

    def clean_holdout_percent(self):
        value = self.cleaned_data.get("holdout_percent")
        return Decimal(0) if value is None else value


class TargetForm(forms.ModelForm):
    restriction = SafeJSONFormField(
        required=False,
        label=gettext_lazy("Restriction"),
        widget=RuleBuilder(facets=("geographic",), attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Optional: the area this target keeps of its segment (a region, a city, a postal code, near a place)."
        ),
    )
    trigger_properties = SafeJSONFormField(
        required=False,
        label=gettext_lazy("Event properties"),
        widget=RowsEditor(
            mode="map",
            columns=[
                {"name": "key", "label": gettext_lazy("Property"), "type": "text"},
                {"name": "value", "label": gettext_lazy("Value"), "type": "text"},
            ],
            attrs={"rows": 2},
        ),
        help_text=gettext_lazy("Optional: what the event must carry, e.g. the category “shoes”."),
    )

    class Meta:
        model = Target
        fields = TARGET_FIELDS
        labels = {
            "segment": gettext_lazy("Segment"),
            "mode": gettext_lazy("Mode"),
            "min_probability": gettext_lazy("Minimum probability"),
            "variant": gettext_lazy("Variant"),
            "split_weight": gettext_lazy("Share of the audience (A/B test)"),
            "budget_share": gettext_lazy("Budget share (%)"),
            "subject_template": gettext_lazy("Subject"),
            "body_template": gettext_lazy("Message"),
            "discount_code": gettext_lazy("Discount code"),
            "discount_percent": gettext_lazy("Discount (%)"),
            "trigger_event": gettext_lazy("Triggered by the event"),
            "trigger_delay": gettext_lazy("After a delay of"),
            "trigger_properties": gettext_lazy("Event properties"),
        }

    def clean(self):
        cleaned = super().clean()
        if self.errors or cleaned.get("DELETE"):
            return cleaned
        if cleaned.get("trigger_properties") is None:
            cleaned["trigger_properties"] = {}
        target = Target(campaign=self.parent_campaign, **{n: cleaned[n] for n in TARGET_FIELDS if n in cleaned})
        try:
            services.target_check(target=target)
        except ValidationError as exc:
            errors_on_form(self, exc)
        return cleaned


class TargetFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        over = shares_over_100([f.cleaned_data.get("budget_share") for f in kept])
        if over is not None:
            raise over

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.parent_campaign = self.instance  # unsaved on the add page, but with its workspace
        form.fields["restriction"].widget.workspace_id = self.instance.workspace_id
        return form

    @property
    def empty_form(self):  # the row "Add another target" copies
        form = super().empty_form
        form.fields["restriction"].widget.workspace_id = self.instance.workspace_id
        return form


class TargetInline(admin.StackedInline):
    model = Target
    form = TargetForm
    formset = TargetFormSet
    extra = 0
    max_num = MAX_TARGETS
    fields = [
        ("segment", "mode", "min_probability"),
        ("variant", "split_weight", "budget_share"),
        "subject_template",
        "body_template",
        ("discount_code", "discount_percent"),
        "restriction",
        ("trigger_event", "trigger_delay", "trigger_properties"),
    ]
    write_capability = Capability.RUN_CAMPAIGNS

    def _can_write(self, request, obj) -> bool:
        if obj is not None and obj.status not in EDITABLE:
            return False  # a running campaign's targets are fixed: pause or cancel it instead
        allowed = {pk for pk, role in roles_for(request).items() if _can(role)}
        return bool(allowed) if obj is None else obj.workspace_id in allowed

    def has_view_permission(self, request, obj=None) -> bool:
        return obj is None or obj.workspace_id in roles_for(request)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "segment":
            from segments.models import Segment

            kwargs["queryset"] = Segment.objects.filter(workspace__in=list(roles_for(request)))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _can(role) -> bool:
    from accounts.roles import role_can

    return role_can(role, Capability.RUN_CAMPAIGNS)


@admin.register(Campaign)
class CampaignAdmin(WorkspaceScopedAdmin):
    form = CampaignForm
    write_capability = Capability.RUN_CAMPAIGNS
    inlines = [TargetInline]
    change_form_template = "admin/campaigns/campaign/change_form.html"
    list_display = [
        "name",
        "status",
        "channel_list",
        "starts_at",
        "ends_at",
        "budget",
        "spend_to_date",
        "workspace",
    ]
    list_filter = ["status", "objective", "pacing", "workspace", "starts_at"]
    search_fields = ["name"]
    date_hierarchy = "starts_at"
    list_select_related = ["workspace"]
    readonly_fields = [
        "status",
        "owner",
        "spend_summary",
        "controls",
        "setup",
        "delivery",
        "transition_log",
        "recent_ledger",
    ]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a campaign is cancelled, never deleted: its ledger and touches stay

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in EDITABLE:
            return [*CampaignForm.Meta.fields, *self.readonly_fields]
        if obj is not None:
            # Budgets of a scheduled campaign change through the budget button (a ledger entry).
            fixed = ["workspace"] + (["budget_total", "budget_daily", "currency"] if obj.status != Status.DRAFT else [])
            return [*fixed, *self.readonly_fields]
        return self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        main = (
            None,
            {
                "fields": [
                    "workspace",
                    "name",
                    "objective",
                    "channels",
                    "channel_choice",
                    ("starts_at", "ends_at"),
                    ("currency", "budget_total", "budget_daily", "pacing"),
                    "holdout_percent",
                ]
            },
        )
        if obj is None:
            return [main]
        aids = (
            (gettext_lazy("Before activating"), {"fields": ["setup"]})
            if obj.status in EDITABLE
            else (gettext_lazy("What happened"), {"fields": ["delivery"]})
        )
        return [
            (gettext_lazy("State and actions"), {"fields": ["status", "owner", "spend_summary", "controls"]}),
            aids,
            main,
            (gettext_lazy("History"), {"fields": ["transition_log", "recent_ledger"], "classes": ["collapse"]}),
        ]

    # --- list columns -----------------------------------------------------------------

    @admin.display(description=gettext_lazy("Channels"))
    def channel_list(self, obj):
        return ", ".join(obj.channels)

    @admin.display(description=gettext_lazy("Budget"), ordering="budget_total")
    def budget(self, obj):
        total = f"{obj.budget_total} {obj.currency}" if obj.budget_total is not None else "uncapped"
        return total + (f" ({obj.budget_daily}/day)" if obj.budget_daily is not None else "")

    @admin.display(description=gettext_lazy("Spend to date"), ordering="spent")
    def spend_to_date(self, obj):
        if obj.budget_total:
            share = obj.spent / obj.budget_total * 100
            return format_html("{} {} ({}%)", obj.spent, obj.currency, f"{share:.0f}")
        return f"{obj.spent} {obj.currency}"

    # --- change page panels -------------------------------------------------------------

    @admin.display(description=gettext_lazy("Budget and spend"))
    def spend_summary(self, obj):
        allowed = services.spend_allowed_today(campaign=obj)
        return format_html(
            _(
                '<span id="cible-spend">Spent <strong>{} {}</strong> of {}; daily cap {}; pacing: {}; allowed today: {}.</span>'
            ),
            obj.spent,
            obj.currency,
            _("no cap") if obj.budget_total is None else f"{obj.budget_total} {obj.currency}",
            _("none") if obj.budget_daily is None else f"{obj.budget_daily} {obj.currency}",
            obj.get_pacing_display().split(":")[0],
            _("no limit") if allowed is None else f"{allowed} {obj.currency}",
        )

    @admin.display(description=gettext_lazy("Actions"))
    def controls(self, obj):
        if not getattr(obj, "_can_write", False) or obj.is_final:
            return "-"

        def button(name, label):
            return post_button(name=name, label=label, url=reverse(f"admin:campaigns_campaign_{name}", args=[obj.pk]))

        possible = services.TRANSITIONS[obj.status]
        buttons = []
        if obj.status == Status.DRAFT:
            buttons.append(button("activate", _("Activate")))
        if Status.PAUSED in possible:
            buttons.append(button("pause", _("Pause")))
        if obj.status == Status.PAUSED:
            buttons.append(button("resume", _("Resume")))
        buttons.append(button("cancel", _("Cancel the campaign")))
        budget = format_html(
            '<label class="cible-inline">{} <input type="text" name="budget-total" size="10"></label> '
            '<label class="cible-inline">{} <input type="text" name="budget-daily" size="10"></label> {}',
            _("New total"),
            _("New daily cap"),
            button("budget", _("Adjust the budget")),
        )
        return format_html(
            '<div id="cible-controls"><p><label class="cible-inline">{} '
            '<input type="text" name="action-reason" size="50"></label></p><p>{}</p><p>{}</p></div>',
            _("Reason (required to cancel or change the budget)"),
            format_html_join(" ", "{}", ((b,) for b in buttons)),
            budget,
        )

    @admin.display(description=gettext_lazy("Set-up"))
    def setup(self, obj):
        return setup_panel(obj, can_write=getattr(obj, "_can_write", False))

    @admin.display(description=gettext_lazy("Deliveries"))
    def delivery(self, obj):
        return delivery_panel(obj)

    @admin.display(description=gettext_lazy("State changes"))
    def transition_log(self, obj):
        rows = obj.transitions.select_related("actor")[:30]
        if not rows:
            return "None yet."
        return format_html(
            '<table class="cible-transitions"><thead><tr><th>When</th><th>From</th><th>To</th><th>By</th>'
            "<th>Source</th><th>Reason</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((admin_datetime(t.at), t.from_status, t.to_status, t.actor or "-", t.source, t.reason) for t in rows),
            ),
        )

    @admin.display(description=gettext_lazy("Ledger (latest 20)"))
    def recent_ledger(self, obj):
        entries = obj.ledger.select_related("author")[:20]
        if not entries:
            return "Empty."
        link = reverse("admin:campaigns_ledgerentry_changelist") + f"?campaign__id__exact={obj.pk}"
        return format_html(
            '<table class="cible-ledger"><thead><tr><th>Recorded</th><th>Kind</th><th>Amount</th><th>New budget</th>'
            "<th>Day</th><th>Key</th><th>By</th><th>Reason</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">The whole ledger</a></p>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        admin_datetime(e.recorded_at),
                        e.get_kind_display(),
                        e.amount,
                        "-" if e.balance is None else e.balance,
                        e.day,
                        e.idempotency_key,
                        e.author or e.source or "-",
                        e.reason,
                    )
                    for e in entries
                ),
            ),
            link,
        )

    def get_object(self, request, object_id, from_field=None):
        campaign = super().get_object(request, object_id, from_field)
        if campaign is not None:
            campaign._can_write = self._can_write(request, campaign)
        return campaign

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.cleaned_data if name != "workspace"}
        if not data.get("currency"):
            data.pop("currency", None)
        if change:
            saved = services.campaign_update(campaign=obj, **data)
        else:
            saved = services.campaign_create(workspace=form.cleaned_data["workspace"], owner=request.user, **data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    # --- lifecycle and budget views ---------------------------------------------------------

    def get_urls(self):
        def route(name, view):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(require_POST(view)),
                name=f"campaigns_campaign_{name}",
            )

        urls = [
            path("calendar/", self.admin_site.admin_view(self.calendar_view), name="campaigns_campaign_calendar"),
            path(
                "<path:object_id>/test-send/",
                self.admin_site.admin_view(require_POST(self.test_send_view)),
                name="campaigns_campaign_test_send",
            ),
            route("activate", self.activate_view),
            route("pause", self.pause_view),
            route("resume", self.resume_view),
            route("cancel", self.cancel_view),
            route("budget", self.budget_view),
        ]
        return [*urls, *super().get_urls()]

    def _campaign(self, request, object_id) -> Campaign:
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404("No such campaign.")
        if not campaign._can_write:
            raise PermissionDenied
        return campaign

    def _run(self, request, object_id, do, done: str):
        campaign = self._campaign(request, object_id)
        reason = request.POST.get("action-reason", "").strip()
        try:
            changed = do(campaign, reason)
        except ValidationError as exc:
            errors_as_messages(self, request, exc)
        else:
            self.message_user(request, done.format(status=changed.get_status_display().lower()), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def test_send_view(self, request, object_id):
        """Send one target's message, rendered for a real member, to the user through its channel's webhook."""
        campaign = self._campaign(request, object_id)
        raw = request.GET.get("target", "")
        target = campaign.targets.filter(pk=int(raw)).first() if raw.isdigit() and len(raw) <= 18 else None
        channel = request.GET.get("channel", "")
        if target is None or channel not in campaign.channels:
            self.message_user(request, _("Choose one of the campaign's targets and channels."), messages.ERROR)
        else:
            try:
                where = message_test_send(target=target, channel=channel, email=request.user.email)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, _("Test sent. %(where)s") % {"where": where}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]) + "#cible-setup")

    def calendar_view(self, request):
        """The campaigns of the user's workspaces, by day of the month, with their channels and segments."""
        try:
            month = date.fromisoformat(request.GET.get("month", "") + "-01")
        except ValueError:
            month = timezone.localdate().replace(day=1)
        calendar = campaign_calendar(workspace_ids=list(roles_for(request)), month=month)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Campaign calendar"),
            "calendar": calendar,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/campaigns/campaign/calendar.html", context)

    def activate_view(self, request, object_id):
        return self._run(
            request,
            object_id,
            lambda c, reason: services.campaign_activate(campaign=c, actor=request.user, source="admin", reason=reason),
            _("Activated: the campaign is {status}."),
        )

    def pause_view(self, request, object_id):
        return self._run(
            request,
            object_id,
            lambda c, reason: services.campaign_transition(
                campaign=c, to=Status.PAUSED, actor=request.user, source="admin", reason=reason
            ),
            _("Paused."),
        )

    def resume_view(self, request, object_id):
        return self._run(
            request,
            object_id,
            lambda c, reason: services.campaign_resume(campaign=c, actor=request.user, source="admin", reason=reason),
            _("Resumed: the campaign is {status}."),
        )

    def cancel_view(self, request, object_id):
        return self._run(
            request,
            object_id,
            lambda c, reason: services.campaign_transition(
                campaign=c, to=Status.CANCELLED, actor=request.user, source="admin", reason=reason
            ),
            _("Cancelled."),
        )

    def budget_view(self, request, object_id):
        def change(campaign, reason):
            total = request.POST.get("budget-total", "").strip() or None
            daily = request.POST.get("budget-daily", "").strip() or None
            return services.budget_change(
                campaign=campaign, actor=request.user, reason=reason, total=total, daily=daily, source="admin"
            )

        return self._run(request, object_id, change, _("Budget changed."))

    @admin.action(description=gettext_lazy("Pause the selected active campaigns"))
    def pause_selected(self, request, queryset: QuerySet[Campaign]):
        paused = 0
        for campaign in queryset.filter(status=Status.ACTIVE):
            if self._can_write(request, campaign):
                services.campaign_transition(campaign=campaign, to=Status.PAUSED, actor=request.user, source="admin")
                paused += 1
        self.message_user(request, gettext("Paused %(paused)s campaign(s).") % {"paused": paused}, messages.SUCCESS)

    actions = ["pause_selected"]
