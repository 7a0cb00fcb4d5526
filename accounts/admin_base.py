"""Tenancy for the admin: the same rule as the API, for staff who are not superusers.

A member sees the rows of their workspaces only, may change them only where
their role allows, and cannot point a row at another workspace or at another
workspace's profile (foreign keys are checked on save).
"""

import zoneinfo
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import ForeignKey, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext

from accounts.models import Workspace
from accounts.roles import Capability, role_can
from accounts.selectors import user_roles
from core.api import IsoDurationFormField, SafeJSONFormField
from core.time import duration_text


def admin_datetime(value) -> str:
    """A date-time as the admin shows it: local time, the locale's format, "-" when empty."""
    return date_format(localtime(value), "DATETIME_FORMAT") if value else "-"


def duration_column(field: models.DurationField):
    """A list column showing a duration as a person writes it (core.time.duration_text)."""

    @admin.display(description=field.verbose_name, ordering=field.name)
    def column(obj) -> str:
        return duration_text(getattr(obj, field.name))

    column.__name__ = f"{field.name}_shown"
    return column


def errors_on_form(form: forms.BaseForm, exc: ValidationError) -> None:
    """A service's refusal shown on the form: each message on its field, or on the whole form."""
    for field, reasons in exc.message_dict.items():
        name = field if field in form.fields else None
        for reason in reasons:
            form.add_error(name, reason)


def errors_as_messages(modeladmin: admin.ModelAdmin, request, exc: ValidationError, prefix: str = "") -> None:
    """A service's refusal as admin messages, for the button views that have no form to show it on."""
    for field, reasons in exc.message_dict.items():
        label = "" if field in ("non_field_errors", "__all__") else f"{field}: "
        for reason in reasons:
            modeladmin.message_user(
                request,
                gettext("%(prefix)s%(label)s%(reason)s") % {"prefix": prefix, "label": label, "reason": reason},
                messages.ERROR,
            )


def post_button(*, name: str, label: str, url: str) -> str:
    """A submit button of a change page that posts to one of the admin's own action views."""
    return format_html(
        '<button type="submit" class="button cible-action" name="_{}" formaction="{}" formmethod="post" '
        "formnovalidate>{}</button>",
        name,
        url,
        label,
    )


def roles_for(request) -> dict[int, str]:
    if not hasattr(request, "_cible_roles"):
        request._cible_roles = user_roles(user=request.user)
    return request._cible_roles


def workspace_ids_with(request, capability: Capability) -> set[int]:
    return {pk for pk, role in roles_for(request).items() if role_can(role, capability)}


class WorkspaceScopedForm(forms.ModelForm):
    allowed_workspace_ids: ClassVar[set[int]] = set()

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns; the stubs type that as optional
        workspace = cleaned.get("workspace") or getattr(self.instance, "workspace", None)
        if workspace is None:
            return cleaned
        if workspace.pk not in self.allowed_workspace_ids:
            raise ValidationError({"workspace": "You cannot write in this workspace."})
        for name, value in cleaned.items():
            related_ws = getattr(value, "workspace_id", None)
            if name != "workspace" and related_ws is not None and related_ws != workspace.pk:
                self.add_error(name, gettext("This belongs to another workspace."))
        return cleaned


class WorkspaceScopedAdmin(admin.ModelAdmin):
    write_capability: ClassVar[Capability] = Capability.WRITE_CUSTOMERS
    workspace_path: ClassVar[str] = "workspace"
    form = WorkspaceScopedForm
    # JSON typed in the admin obeys the API's limits (depth, Unicode, 64-bit integers).
    formfield_overrides = {
        models.JSONField: {"form_class": SafeJSONFormField},
        models.DurationField: {"form_class": IsoDurationFormField},
    }

    def get_list_display(self, request):
        """Durations read as a person writes them, not `3 days, 0:00:00`."""
        shown = []
        for name in super().get_list_display(request):
            field = None
            if isinstance(name, str):
                field = next((f for f in self.model._meta.concrete_fields if f.name == name), None)
            shown.append(duration_column(field) if isinstance(field, models.DurationField) else name)
        return shown

    def get_list_filter(self, request):
        """A filter on a workspace (or on any related row) offers only what the rows the user may
        see name: a plain related filter would list every workspace's names to every member."""
        filters = []
        for spec in super().get_list_filter(request):
            if isinstance(spec, str) and self._is_relation(spec):
                spec = (spec, admin.RelatedOnlyFieldListFilter)
            filters.append(spec)
        return filters

    def _is_relation(self, path: str) -> bool:
        model = self.model
        field = None
        for part in path.split("__"):
            try:
                field = model._meta.get_field(part)
            except FieldDoesNotExist:
                return False
            if not field.is_relation:
                return False
            model = field.related_model
        return field is not None and (field.many_to_one or field.one_to_one or field.many_to_many)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A change page is shown and saved in its workspace's time zone (accounts.admin_time)."""
        workspace_id = None
        if object_id:
            obj = self.get_object(request, unquote(object_id))
            workspace_id = self._workspace_of(obj) if obj is not None else None
        elif request.POST.get("workspace", "").isdigit():
            workspace_id = int(request.POST["workspace"])
        zone = Workspace.objects.filter(pk=workspace_id).values_list("time_zone", flat=True).first()
        if zone is None or workspace_id not in roles_for(request):
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return response

    def _workspace_of(self, obj) -> int | None:
        target = obj
        for part in self.workspace_path.split("__"):
            target = getattr(target, part, None)
        return getattr(target, "pk", None)

    def get_queryset(self, request) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.workspace_path}__in": list(roles_for(request))})

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and bool(roles_for(request))

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        return self._workspace_of(obj) in roles_for(request)

    def _can_write(self, request, obj=None) -> bool:
        allowed = workspace_ids_with(request, self.write_capability)
        return bool(allowed) if obj is None else self._workspace_of(obj) in allowed

    def has_add_permission(self, request) -> bool:
        return self._can_write(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        allowed = workspace_ids_with(request, self.write_capability)
        return type(form.__name__, (form,), {"allowed_workspace_ids": allowed})

    def get_changeform_initial_data(self, request):
        """A user who may write in one workspace only finds it chosen on an add page."""
        initial = super().get_changeform_initial_data(request)
        allowed = workspace_ids_with(request, self.write_capability)
        if "workspace" not in initial and len(allowed) == 1:
            initial["workspace"] = next(iter(allowed))
        return initial

    def formfield_for_foreignkey(self, db_field: ForeignKey, request, **kwargs):
        if db_field.related_model is Workspace:
            kwargs["queryset"] = Workspace.objects.filter(pk__in=workspace_ids_with(request, self.write_capability))
        elif hasattr(db_field.related_model, "workspace_id") and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model._default_manager.filter(workspace__in=list(roles_for(request)))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyScopedAdmin(WorkspaceScopedAdmin):
    """A log or history: listed and viewed by the workspace's members, never edited in the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ScopedInline(admin.TabularInline):
    """Inline rows follow their parent's workspace rights."""

    extra = 0
    write_capability: ClassVar[Capability] = Capability.WRITE_CUSTOMERS

    def _can_write(self, request, obj) -> bool:
        if obj is None:
            return bool(workspace_ids_with(request, self.write_capability))
        return obj.workspace_id in workspace_ids_with(request, self.write_capability)

    def has_view_permission(self, request, obj=None) -> bool:
        return obj is None or obj.workspace_id in roles_for(request)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can_write(request, obj)
