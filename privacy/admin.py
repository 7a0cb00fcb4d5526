from typing import ClassVar

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from accounts.admin_base import (
    ReadOnlyScopedAdmin,
    ScopedInline,
    WorkspaceScopedAdmin,
    WorkspaceScopedForm,
    admin_datetime,
    errors_as_messages,
    errors_on_form,
    post_button,
    workspace_ids_with,
)
from accounts.roles import Capability
from customers import admin as customers_admin
from customers.admin_audit import AuditedViewsAdmin
from customers.models import Profile
from privacy import consent, requests, retention
from privacy.api.views import request_file_response
from privacy.destinations import export_destinations
from privacy.models import (
    CONSENT_FIELDS,
    AuditEntry,
    ConsentRecord,
    DataSubjectRequest,
    RemovalNotice,
    RetentionPolicy,
    Suppression,
)
from privacy.processing import processing_records
from privacy.selectors import consent_state


class InForceFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("current", "In force now (latest per purpose and channel)")]

    def queryset(self, request, queryset):
        return queryset.current() if self.value() == "current" else queryset


@admin.register(ConsentRecord)
class ConsentRecordAdmin(AuditedViewsAdmin, WorkspaceScopedAdmin):
    """Append-only: a record can be added (with its proof), never edited or deleted."""

    audited_profile_path = "profile_id"
    write_capability = Capability.RECORD_CONSENT
    list_display = ["recorded_at", "profile", "purpose", "channel", "status", "legal_basis", "source", "workspace"]
    list_filter = [InForceFilter, "workspace", "purpose", "channel", "status", "legal_basis"]
    search_fields = ["profile__external_id", "source", "form"]
    raw_id_fields = ["profile"]
    list_select_related = ["profile", "workspace"]
    show_full_result_count = False
    fields = ["workspace", "profile", *CONSENT_FIELDS]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in self.fields if name not in ("workspace", "profile")}
        record = consent.consent_record_create(profile=form.cleaned_data["profile"], by=request.user, **data)
        obj.pk = record.pk


class PrivacyScopedAdmin(WorkspaceScopedAdmin):
    """Seen and handled only by the roles that handle privacy (privacy officer, admin)."""

    write_capability = Capability.HANDLE_PRIVACY

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(workspace__in=workspace_ids_with(request, Capability.HANDLE_PRIVACY))

    def has_module_permission(self, request) -> bool:
        return (
            request.user.is_active
            and request.user.is_staff
            and (request.user.is_superuser or bool(workspace_ids_with(request, Capability.HANDLE_PRIVACY)))
        )

    def has_view_permission(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        if obj is None:
            return self.has_module_permission(request)
        return obj.workspace_id in workspace_ids_with(request, Capability.HANDLE_PRIVACY)


class PrivacyLogAdmin(PrivacyScopedAdmin, ReadOnlyScopedAdmin):
    """A privacy history or list: seen by the privacy roles, never added, changed or deleted here."""


class RemovalNoticeInline(ScopedInline):
    model = RemovalNotice
    write_capability = Capability.HANDLE_PRIVACY
    fields: ClassVar[tuple[str, ...]] = ("channel", "reason", "status", "attempts", "error", "created_at", "sent_at")
    readonly_fields = fields
    can_delete = False
    max_num = 0


class RequestForm(WorkspaceScopedForm):
    class Meta:
        model = DataSubjectRequest
        fields = ["workspace", "kind", "profile", "subject", "received_at", "changes", "notes"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not self.errors:
            try:
                self.created = requests.request_create(
                    workspace=cleaned["workspace"],
                    kind=cleaned["kind"],
                    profile=cleaned.get("profile"),
                    subject=cleaned.get("subject") or "",
                    received_at=cleaned.get("received_at"),
                    changes=cleaned.get("changes") or {},
                    notes=cleaned.get("notes") or "",
                    by=self.user,
                )
            except ValidationError as exc:
                errors_on_form(self, exc)
        return cleaned


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(PrivacyScopedAdmin):
    form = RequestForm
    change_form_template = "admin/privacy/datasubjectrequest/change_form.html"
    list_display = ["id", "kind", "status", "received_at_local", "due_on", "overdue", "profile", "workspace"]
    list_filter = ["workspace", "status", "kind"]
    raw_id_fields = ["profile"]
    list_select_related = ["workspace", "profile"]
    inlines = [RemovalNoticeInline]
    readonly = [
        "status",
        "due_on",
        "original_due_on",
        "extension_reason",
        "subject_hashes",
        "resolution",
        "outcome_table",
        "download",
        "destinations",
        "handled_by",
        "completed_at",
        "controls",
    ]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a request is kept: it is the proof it was answered

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["workspace", "kind", "profile", "subject", "received_at", "changes", "notes"]
        editable = ["notes", "changes"] if obj.open else []
        return ["workspace", "kind", "profile", "subject", "received_at", *self.readonly, *editable]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        keep = ["notes", "changes"] if obj.open else []
        return [
            f
            for f in ["workspace", "kind", "profile", "subject", "received_at", *self.readonly, "notes", "changes"]
            if f not in keep
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.user = request.user
        return form

    def get_changeform_initial_data(self, request):
        from django.utils import timezone

        return {"received_at": timezone.now()}

    def save_model(self, request, obj, form, change):
        if not change:
            obj.pk = form.created.pk
            obj.refresh_from_db()
            return
        requests.request_update(
            request=obj,
            by=request.user,
            notes=form.cleaned_data.get("notes", obj.notes),
            **({"changes": form.cleaned_data["changes"]} if obj.kind == DataSubjectRequest.Kind.RECTIFICATION else {}),
        )

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description="Received")
    def received_at_local(self, obj):
        return admin_datetime(obj.received_at)

    @admin.display(description="Overdue", boolean=True)
    def overdue(self, obj):
        from django.utils import timezone

        return obj.open and obj.due_on < timezone.localdate()

    @admin.display(description="Outcome")
    def outcome_table(self, obj):
        if not obj.outcome:
            return "-"
        return format_html(
            '<table id="cible-outcome">{}</table>',
            format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", sorted(obj.outcome.items())),
        )

    @admin.display(description="The person's data")
    def download(self, obj):
        if not obj.export_file:
            return "-"
        return format_html(
            '<a id="cible-download" href="{}">Download the JSON file</a>',
            reverse("admin:privacy_datasubjectrequest_download", args=[obj.pk]),
        )

    @admin.display(description="Past export destinations")
    def destinations(self, obj):
        if obj.profile_id is None:
            return "-"
        rows = export_destinations(profile=obj.profile)
        if not rows:
            return "None: the person's data was never exported or handed off."
        return format_html(
            '<table id="cible-destinations"><tr><th>What</th><th>Id</th><th>Channel</th><th>When</th></tr>{}</table>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((d["type"].replace("_", " "), d["id"], d["channel"], admin_datetime(d["at"])) for d in rows),
            ),
        )

    @admin.display(description="Actions")
    def controls(self, obj):
        if not obj.open:
            return "-"

        def button(name, label):
            url = reverse(f"admin:privacy_datasubjectrequest_{name}", args=[obj.pk])
            return post_button(name=name, label=label, url=url)

        buttons = [button("complete", f"Carry out the {obj.get_kind_display().split(' (')[0].lower()} and complete")]
        if obj.status == DataSubjectRequest.Status.RECEIVED:
            buttons.insert(0, button("start", "Start handling"))
        buttons.append(button("reject", "Reject"))
        if obj.extended_at is None:
            buttons.append(button("extend", "Extend by two months"))
        return format_html(
            '<div id="cible-controls"><p><label class="cible-inline">Reason (to reject or extend) '
            '<input type="text" name="action-reason" size="50"></label></p><p>{}</p></div>',
            format_html_join(" ", "{}", ((b,) for b in buttons)),
        )

    def get_urls(self):
        def route(name, view):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(require_POST(view)),
                name=f"privacy_datasubjectrequest_{name}",
            )

        return [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="privacy_datasubjectrequest_download",
            ),
            route("start", self.action_view("start")),
            route("extend", self.action_view("extend")),
            route("reject", self.action_view("reject")),
            route("complete", self.action_view("complete")),
            *super().get_urls(),
        ]

    def _request(self, request, object_id) -> DataSubjectRequest:
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such request.")
        return obj

    def download_view(self, request, object_id):
        return request_file_response(self._request(request, object_id), by=request.user)

    def action_view(self, name: str):
        def view(request, object_id):
            obj = self._request(request, object_id)
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
            reason = request.POST.get("action-reason", "")
            try:
                if name == "start":
                    requests.request_start(request=obj, by=request.user)
                elif name == "extend":
                    requests.request_extend(request=obj, reason=reason, by=request.user)
                elif name == "reject":
                    requests.request_reject(request=obj, reason=reason, by=request.user)
                else:
                    requests.request_complete(request=obj, by=request.user)
            except ValidationError as exc:
                errors_as_messages(self, request, exc)
            else:
                done = {"start": "started", "extend": "extended", "reject": "rejected", "complete": "completed"}[name]
                self.message_user(request, gettext("The request was %(done)s.") % {"done": done}, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:privacy_datasubjectrequest_change", args=[obj.pk]))

        return view


@admin.register(Suppression)
class SuppressionAdmin(PrivacyLogAdmin):
    """Entries come from objection requests, or from the API with the identifier, hashed on arrival."""

    list_display = ["created_at", "kind", "hash", "reason", "request", "workspace"]
    list_filter = ["workspace", "kind", "reason"]
    search_fields = ["hash"]


@admin.register(AuditEntry)
class AuditEntryAdmin(PrivacyLogAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_id", "profile_id", "workspace"]
    list_filter = ["workspace", "action", "object_type"]
    search_fields = ["actor_name", "object_id"]
    show_full_result_count = False


@admin.register(RemovalNotice)
class RemovalNoticeAdmin(PrivacyLogAdmin):
    list_display = ["created_at", "channel", "reason", "status", "attempts", "request", "workspace"]
    list_filter = ["workspace", "status", "reason", "channel"]


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(PrivacyScopedAdmin):
    list_display = ["workspace", "events_months", "inactive_prospect_months", "export_files_days", "last_purge_at"]
    fields = [
        "workspace",
        "events_months",
        "inactive_prospect_months",
        "export_files_days",
        "last_purge_at",
        "last_purge",
        "records_of_processing",
    ]
    readonly_fields = ["last_purge_at", "last_purge", "records_of_processing"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "workspace"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name] for name in ("events_months", "inactive_prospect_months", "export_files_days")
        }
        policy = retention.retention_policy_update(
            workspace=form.cleaned_data.get("workspace") or obj.workspace, by=request.user, **fields
        )
        obj.pk = policy.pk

    @admin.display(description="Records of processing (GDPR Art. 30)")
    def records_of_processing(self, obj):
        if obj is None or obj.workspace_id is None:
            return "-"
        rows = processing_records(workspace=obj.workspace)
        return format_html(
            '<table id="cible-processing"><tr><th>Category</th><th>Purposes</th><th>Legal basis</th>'
            "<th>Retention</th><th>On erasure</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (r["category"], "; ".join(r["purposes"]), r["legal_basis"], r["retention"], r["erasure"])
                    for r in rows
                ),
            ),
        )


class ProfileWithConsentAdmin(customers_admin.ProfileAdmin):
    """The customers' profile page, with the consent in force (owned by privacy)."""

    readonly_fields = [*customers_admin.ProfileAdmin.readonly_fields, "consents_in_force"]
    fieldsets = [
        *customers_admin.ProfileAdmin.fieldsets[:-1],
        (
            "Activity",
            {"fields": ["summary", "consents_in_force", "journey", "created_at", "updated_at"]},
        ),
    ]

    @admin.display(description="Consent in force")
    def consents_in_force(self, obj: Profile):
        if obj.pk is None:
            return "-"
        rows = consent_state(profile=obj)
        if not rows:
            return "No consent recorded (not contactable)."
        return format_html_join(
            "",
            "<div>{} / {}: <strong>{}</strong> ({}, {})</div>",
            (
                (r.get_purpose_display(), r.get_channel_display(), r.status, r.source, admin_datetime(r.recorded_at))
                for r in rows
            ),
        )


admin.site.unregister(Profile)
admin.site.register(Profile, ProfileWithConsentAdmin)
