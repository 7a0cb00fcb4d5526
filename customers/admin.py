from typing import ClassVar

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.admin_base import (
    ScopedInline,
    WorkspaceScopedAdmin,
    WorkspaceScopedForm,
    admin_datetime,
    workspace_ids_with,
)
from accounts.roles import Capability
from core.personal_data import key_digest
from core.workers import QueuedJobAdminMixin
from customers import services
from customers.admin_audit import AuditedViewsAdmin
from customers.api.serializers import PROFILE_WRITABLE
from customers.csv_import import csv_text
from customers.models import (
    AttributeDefinition,
    Channel,
    Event,
    Identity,
    IdentityType,
    ImportJob,
    MatchRule,
    Order,
    Profile,
    ProfileMerge,
    SurveyQuestion,
    SurveyResponse,
)
from customers.normalise import normalise_email, normalise_phone
from customers.selectors import identity_graph, profile_summary
from customers.timeline import profile_timeline


class IdentityInline(ScopedInline):
    model = Identity
    fields = ["type", "value", "source", "created_at", "last_seen_at"]
    readonly_fields = ["source", "created_at", "last_seen_at"]


class ReadOnlyInline(ScopedInline):
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class OrderInline(ReadOnlyInline):
    model = Order
    fields: ClassVar[tuple[str, ...]] = ("order_id", "amount", "currency", "ordered_at", "channel", "status")
    readonly_fields = fields
    max_num = 0
    ordering = ["-ordered_at"]


class SurveyResponseInline(ReadOnlyInline):
    model = SurveyResponse
    fields: ClassVar[tuple[str, ...]] = ("survey", "question", "answer", "answered_at")
    readonly_fields = fields


class ProfileForm(WorkspaceScopedForm):
    """Contact fields normalised as the API does, with errors shown on the field."""

    def clean_email(self):
        email = self.cleaned_data.get("email")
        return normalise_email(email) if email else email

    def clean_phone(self):
        phone = self.cleaned_data.get("phone")
        workspace = self.cleaned_data.get("workspace") or getattr(self.instance, "workspace", None)
        region = workspace.country if workspace else "FR"
        return normalise_phone(phone, default_region=region) if phone else phone


@admin.register(Profile)
class ProfileAdmin(AuditedViewsAdmin, WorkspaceScopedAdmin):
    form = ProfileForm
    list_display = ["external_id", "first_name", "last_name", "email", "city", "region", "lifecycle_stage", "workspace"]
    list_filter = [
        "workspace",
        "lifecycle_stage",
        "anonymous",
        "gender",
        "socio_professional_category",
        "region",
        "country",
    ]
    search_fields = ["external_id", "email", "last_name", "first_name", "postal_code"]
    list_select_related = ["workspace"]
    show_full_result_count = False  # COUNT(*) on a million profiles on every page is wasted work
    readonly_fields = ["age", "anonymous", "summary", "journey", "identity_graph", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["workspace", "external_id", "lifecycle_stage", "anonymous"]}),
        ("Contact", {"fields": ["first_name", "last_name", "email", "phone"]}),
        ("Demographic", {"fields": ["birth_date", "age", "gender", "socio_professional_category"]}),
        ("Geographic", {"fields": ["city", "postal_code", "region", "country", "latitude", "longitude"]}),
        ("Attitudinal", {"fields": ["attributes"]}),
        (_("Identity"), {"fields": ["identity_graph"]}),
        ("Activity", {"fields": ["summary", "journey", "created_at", "updated_at"]}),
    ]
    inlines = [IdentityInline, OrderInline, SurveyResponseInline]
    actions = ["merge_profiles"]
    journey_entries = 100

    class Media:
        js = ["customers/journey.js"]

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/unmerge/<int:merge_id>/",
                self.admin_site.admin_view(require_POST(self.unmerge_view)),
                name="customers_profile_unmerge",
            )
        ]
        return urls + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._request = request
        profile = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if profile is not None and self._can_unmerge(request, profile):
            extra["unmerge_forms"] = ProfileMerge.objects.filter(survivor=profile, unmerged_at__isnull=True)
        return super().change_view(request, object_id, form_url, extra)

    def _can_unmerge(self, request, profile: Profile) -> bool:
        return request.user.is_superuser or profile.workspace_id in workspace_ids_with(
            request, Capability.MERGE_PROFILES
        )

    def unmerge_view(self, request, object_id, merge_id):
        profile = self.get_object(request, object_id)
        if profile is None:
            raise Http404
        back = HttpResponseRedirect(reverse("admin:customers_profile_change", args=[profile.pk]))
        if not self._can_unmerge(request, profile):
            self.message_user(request, gettext("Your role does not allow splitting merges."), messages.ERROR)
            return back
        merge = ProfileMerge.objects.filter(survivor=profile, pk=merge_id).first()
        if merge is None:
            raise Http404
        try:
            restored = services.profile_unmerge(merge=merge, by=request.user)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return back
        self.message_user(
            request,
            gettext("%(external_id)s was split back from this profile, with its own history.")
            % {"external_id": restored.external_id},
            messages.SUCCESS,
        )
        return back

    @admin.display(description=_("Journey across channels"))
    def journey(self, obj: Profile):
        if obj.pk is None:
            return "-"
        page = profile_timeline(profile=obj, limit=self.journey_entries)
        labels = dict(Channel.choices)
        entries = [{**entry, "channel_label": labels.get(entry["channel"], "-")} for entry in page["entries"]]
        present = {entry["channel"] for entry in entries if entry["channel"]}
        return render_to_string(
            "admin/customers/profile/_journey.html",
            {
                "entries": entries,
                "time_zone": page["time_zone"],
                "channels": [(value, label) for value, label in Channel.choices if value in present],
                "more": page["next_before"] is not None,
                "shown": len(entries),
            },
        )

    @admin.display(description=_("Identity graph"))
    def identity_graph(self, obj: Profile):
        if obj.pk is None:
            return "-"
        graph = identity_graph(profile=obj)
        types = dict(IdentityType.choices)
        for merge in graph["merges"]:
            if merge.reason == ProfileMerge.Reason.RULE:
                merge.how = gettext("%(type)s match rule, from %(source)s") % {
                    "type": types.get(merge.rule_type, merge.rule_type),
                    "source": merge.source,
                }
            else:
                merge.how = gettext("By hand, by %(user)s") % {"user": merge.merged_by or "-"}
            merge.moved_text = ", ".join(f"{name}: {count}" for name, count in (merge.moved or {}).items() if count)
        request = getattr(self, "_request", None)
        return render_to_string(
            "admin/customers/profile/_identity.html",
            {**graph, "can_unmerge": request is not None and self._can_unmerge(request, obj)},
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not workspace_ids_with(request, Capability.MERGE_PROFILES) and not request.user.is_superuser:
            actions.pop("merge_profiles", None)  # shown only to a role that may merge
        return actions

    @admin.display(description="Age")
    def age(self, obj: Profile):
        return "-" if obj.age is None else obj.age

    @admin.display(description="Orders and events")
    def summary(self, obj: Profile) -> str:
        if obj.pk is None:
            return "-"
        data = profile_summary(profile_id=obj.pk)
        return (
            f"{data['orders_count']} orders, {data['orders_total'] or 0} {obj.workspace.currency} in all, "
            f"last {admin_datetime(data['last_order_at'])}; {data['events_count']} events, last {admin_datetime(data['last_event_at'])}"
        )

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in PROFILE_WRITABLE if name in form.cleaned_data}
        if change:
            saved = services.profile_update(profile=obj, **fields)
        else:
            saved = services.profile_create(workspace=form.cleaned_data["workspace"], **fields)
        obj.pk = saved.pk

    @admin.action(description="Merge the selected profiles into the oldest one")
    def merge_profiles(self, request, queryset: QuerySet[Profile]):
        profiles = list(queryset.order_by("pk")[:3])
        if len(profiles) != 2:
            self.message_user(request, gettext("Select exactly two profiles to merge."), messages.ERROR)
            return
        survivor, merged = profiles
        if survivor.workspace_id not in workspace_ids_with(request, Capability.MERGE_PROFILES):
            self.message_user(request, gettext("Your role does not allow merging profiles."), messages.ERROR)
            return
        try:
            services.profile_merge(survivor=survivor, merged=merged, by=request.user)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        self.message_user(
            request,
            gettext("%(external_id)s was merged into %(external_id_x)s.")
            % {"external_id": merged.external_id, "external_id_x": survivor.external_id},
            messages.SUCCESS,
        )


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(WorkspaceScopedAdmin):
    list_display = ["key", "label", "type", "workspace"]
    list_filter = ["workspace", "type"]
    search_fields = ["key", "label"]

    def get_readonly_fields(self, request, obj=None):
        return ["type", "key"] if obj is not None else []


@admin.register(SurveyQuestion)
class SurveyQuestionAdmin(WorkspaceScopedAdmin):
    list_display = ["survey", "question", "label", "workspace"]
    list_filter = ["workspace", "survey"]
    search_fields = ["survey", "question", "label"]


@admin.register(Identity)
class IdentityAdmin(WorkspaceScopedAdmin):
    list_display = [
        "type",
        "value",
        "profile",
        "source",
        "created_at",
        "last_seen_at",
        "profiles_joined",
        "shared",
        "workspace",
    ]
    list_filter = ["workspace", "type", "source", "shared"]
    readonly_fields = ["source", "created_at", "last_seen_at", "profiles_joined"]
    search_fields = ["value", "profile__external_id"]
    raw_id_fields = ["profile"]
    show_full_result_count = False


class ReadOnlyHistoryAdmin(WorkspaceScopedAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyHistoryAdmin):
    list_display = ["occurred_at", "type", "channel", "profile", "workspace"]
    list_filter = ["workspace", "type", "channel"]
    search_fields = ["profile__external_id"]
    date_hierarchy = "occurred_at"
    list_select_related = ["profile", "workspace"]
    show_full_result_count = False
    raw_id_fields = ["profile"]

    def get_search_results(self, request, queryset, search_term):
        # Keys are kept as digests: the key a client sent finds its event through its digest.
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            found |= queryset.filter(idempotency_key=key_digest(search_term.strip()))
        return found, duplicates


@admin.register(Order)
class OrderAdmin(ReadOnlyHistoryAdmin):
    list_display = ["order_id", "ordered_at", "amount", "currency", "channel", "status", "profile", "workspace"]
    list_filter = ["workspace", "status", "channel", "currency"]
    search_fields = ["order_id", "profile__external_id"]
    date_hierarchy = "ordered_at"
    list_select_related = ["profile", "workspace"]
    show_full_result_count = False


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyHistoryAdmin):
    list_display = ["survey", "question", "answer", "answered_at", "profile", "workspace"]
    list_filter = ["workspace", "survey", "question"]
    search_fields = ["profile__external_id"]
    list_select_related = ["profile", "workspace"]


@admin.register(ProfileMerge)
class ProfileMergeAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "merged_at",
        "merged_external_id",
        "survivor",
        "reason",
        "rule_type",
        "merged_by",
        "moved",
        "unmerged_at",
        "workspace",
    ]
    list_filter = ["workspace", "reason", "rule_type", ("unmerged_at", admin.EmptyFieldListFilter)]
    search_fields = ["merged_external_id", "survivor__external_id"]
    exclude = ["merged_snapshot", "survivor_snapshot"]


@admin.register(MatchRule)
class MatchRuleAdmin(WorkspaceScopedAdmin):
    """How each identifier type stitches profiles at ingestion. A type without a rule follows the
    default: customer id, loyalty card, e-mail, phone and hashed e-mail are deterministic; device and
    cookie are weak."""

    write_capability = Capability.MANAGE_WORKSPACE
    list_display = ["type", "strength", "priority", "max_profiles", "workspace"]
    list_filter = ["workspace", "strength"]
    fields = ["workspace", "type", "strength", "priority", "max_profiles"]


class ImportJobForm(WorkspaceScopedForm):
    upload = forms.FileField(label="CSV file", help_text="Comma or semicolon separated, UTF-8 or Windows-1252.")

    class Meta:
        model = ImportJob
        fields = ["workspace", "kind"]

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        if upload.size > settings.IMPORT_MAX_BYTES:  # before reading it into memory
            raise ValidationError(
                gettext("The file is over %(import_max_bytes)s bytes.")
                % {"import_max_bytes": settings.IMPORT_MAX_BYTES}
            )
        self.upload_content = upload.read()
        csv_text(self.upload_content)
        return upload


@admin.register(ImportJob)
class ImportJobAdmin(QueuedJobAdminMixin, WorkspaceScopedAdmin):
    """Upload a CSV of profiles or orders; a worker imports it and reports each rejected row."""

    list_display = [
        "created_at",
        "filename",
        "kind",
        "status_shown",
        "rows",
        "created",
        "updated",
        "duplicates",
        "rejected",
        "workspace",
    ]
    list_filter = ["workspace", "kind", "status"]
    readonly_fields = [
        "filename",
        "status_shown",
        "rows",
        "created",
        "updated",
        "duplicates",
        "rejected",
        "error_report",
        "failure",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ImportJobForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["workspace", "kind", "upload"]
        return ["workspace", "kind", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else ["workspace", "kind", *self.readonly_fields]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of what was imported, and by whom, stays

    def response_add(self, request, obj, post_url_continue=None):
        # Straight to the job's page: its status and rejected rows are what the marketer wants next.
        self.message_user(
            request,
            gettext("Uploaded %(filename)s; its import status is below.") % {"filename": obj.filename},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:customers_importjob_change", args=[obj.pk]))

    @admin.display(description="Rejected rows")
    def error_report(self, obj: ImportJob):
        if not obj.errors:
            return "-"
        return format_html_join(
            "",
            "<div>row {}: <strong>{}</strong>: {} ({})</div>",
            ((e["row"], e["field"], e["message"], e["code"]) for e in obj.errors),
        )

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data["upload"]
        job = services.import_job_create(
            workspace=form.cleaned_data["workspace"],
            kind=form.cleaned_data["kind"],
            filename=upload.name,
            content=form.upload_content,
            by=request.user,
        )
        obj.pk, obj.filename = job.pk, job.filename
