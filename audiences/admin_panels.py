"""The segment page's audience panels: the exports of the audience and what the page polls."""

from django import forms
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from accounts.admin_base import admin_datetime
from audiences.models import AudienceExport
from customers.models import Channel
from privacy.models import ConsentPurpose
from segments.admin_panels import panel_button, panel_fields, panel_text
from segments.models import Segment

SHOWN_EXPORTS = 10


class ExportForm(forms.Form):
    prefix = "export"
    purpose = forms.ChoiceField(choices=ConsentPurpose.choices, initial=ConsentPurpose.DIRECT_MARKETING)
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.EMAIL)
    format = forms.ChoiceField(choices=AudienceExport.Format.choices)
    identifiers = forms.ChoiceField(choices=AudienceExport.Identifiers.choices)

    def __init__(self, *args, plain: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not plain:  # a role that may not export plain identifiers is not offered them
            field = self.fields["identifiers"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [
                choice for choice in AudienceExport.Identifiers.choices if choice[0] != AudienceExport.Identifiers.PLAIN
            ]


def exports_panel(segment: Segment, *, can_write: bool, can_export_plain: bool = False) -> SafeString:
    return format_html(
        '<div id="cible-exports">{}</div>', _exports(segment, can_write=can_write, can_export_plain=can_export_plain)
    )


def _exports(segment: Segment, *, can_write: bool, can_export_plain: bool) -> SafeString:
    exports = list(AudienceExport.objects.filter(segment=segment).select_related("created_by")[:SHOWN_EXPORTS])
    rows = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td class="cible-status" data-job="export-{}"'
        ' data-status="{}">{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                admin_datetime(e.created_at),
                e.created_by or "-",
                e.purpose,
                e.channel,
                e.get_format_display(),
                e.get_identifiers_display().split(" (")[0],
                e.pk,
                e.status,
                e.get_status_display(),
                "-" if e.row_count is None else f"{e.row_count} of {e.audience_size}",
                format_html(
                    '<a href="{}">Download</a>', reverse("admin:audiences_audienceexport_download", args=[e.pk])
                )
                if e.status == AudienceExport.Status.READY
                else e.error,
            )
            for e in exports
        ),
    )
    table = (
        format_html(
            '<table class="cible-exports"><thead><tr><th>Requested</th><th>By</th><th>Purpose/channel</th>'
            "<th>Format</th><th>Identifiers</th><th>Status</th><th>Rows</th><th>File</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )
        if exports
        else panel_text(_("No export yet."))
    )
    if not can_write:
        return table
    if not segment.audience.current_version:
        return format_html("{}<p>{}</p>", table, _("Compute the audience before exporting it."))
    return format_html(
        '{}<p>{} {}</p><p class="help">Only the members whose consent covers the purpose and channel when the'
        " file is written are exported.</p>",
        table,
        panel_fields(ExportForm(plain=can_export_plain)),
        panel_button(reverse("admin:segments_segment_export", args=[segment.pk]), _("Export the audience"), "_export"),
    )


def job_statuses(segment: Segment) -> dict[str, str]:
    """The audience and the recent exports, as the page polls them while they run."""
    exports = dict(AudienceExport.objects.filter(segment=segment).values_list("pk", "status")[:SHOWN_EXPORTS])
    return {"audience": segment.audience.status, **{f"export-{pk}": status for pk, status in exports.items()}}
