"""The segment page's panels below the rules: the index table, its suggestion, and the exports.

They are rendered as read-only fields of the segment admin; their buttons post to the
admin views in `segments.admin` (the change form is one HTML form, so each button names
its own `formaction`).
"""

from django import forms
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.admin_base import admin_datetime
from audiences.models import AudienceExport
from customers.models import Channel
from privacy.models import ConsentPurpose
from segments.models import Segment, SegmentAnalysis

SHOWN_ROWS = 60
SHOWN_EXPORTS = 10
BUSY = {"queued", "running", "computing"}


class AnalyseForm(forms.Form):
    """The thresholds of an index table (the same bounds as the API's analyse action)."""

    prefix = "analysis"
    min_index = forms.FloatField(min_value=0, initial=120.0, label="Index at least")
    min_count = forms.IntegerField(min_value=0, initial=100, label="Members at least")
    min_abs_z = forms.FloatField(min_value=0, initial=2.0, label="|z| at least")


class ExportForm(forms.Form):
    prefix = "export"
    purpose = forms.ChoiceField(choices=ConsentPurpose.choices, initial=ConsentPurpose.DIRECT_MARKETING)
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.EMAIL)
    format = forms.ChoiceField(choices=AudienceExport.Format.choices)
    identifiers = forms.ChoiceField(choices=AudienceExport.Identifiers.choices)


def form_errors(form: forms.Form) -> list[str]:
    """`field: reason` lines for the admin's messages."""
    return [f"{name}: {message}" for name, messages in form.errors.items() for message in messages]


def _button(url: str, label: str, name: str) -> SafeString:
    return format_html(
        '<button type="submit" class="button cible-action" name="{}" formaction="{}" formmethod="post" '
        "formnovalidate>{}</button>",
        name,
        url,
        label,
    )


def _fields(form: forms.Form) -> SafeString:
    return format_html_join(
        " ", '<label class="cible-inline">{} {}</label>', ((field.label, field) for field in form.visible_fields())
    )


def _p(text: str) -> SafeString:
    return format_html("<p>{}</p>", text)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def index_panel(segment: Segment, *, can_write: bool) -> SafeString:
    analysis = SegmentAnalysis.objects.filter(segment=segment).first()
    parts = []
    if analysis is None:
        parts.append(_p("Not analysed yet."))
    else:
        parts.append(
            format_html(
                '<p>Status: <strong class="cible-status" data-job="analysis" data-status="{}">{}</strong>'
                " — audience version {}, {} members out of {} (computed {}). Thresholds: index ≥ {}, n ≥ {},"
                " |z| ≥ {}.</p>",
                analysis.status,
                analysis.get_status_display(),
                analysis.audience_version,
                analysis.segment_size,
                analysis.base_size,
                admin_datetime(analysis.computed_at),
                analysis.min_index,
                analysis.min_count,
                analysis.min_abs_z,
            )
        )
        if analysis.status == SegmentAnalysis.Status.FAILED:
            parts.append(format_html('<p class="errornote">{}</p>', analysis.error))
        if analysis.rows:
            parts.append(_index_table(analysis.rows))
    if can_write:
        if segment.audience.current_version:
            initial = (
                {"min_index": analysis.min_index, "min_count": analysis.min_count, "min_abs_z": analysis.min_abs_z}
                if analysis
                else None
            )
            parts.append(
                format_html(
                    "<p>{} {}</p>",
                    _fields(AnalyseForm(initial=initial)),
                    _button(
                        reverse("admin:segments_segment_analyse", args=[segment.pk]),
                        "Compute the index table",
                        "_analyse",
                    ),
                )
            )
        else:
            parts.append(_p("Compute the audience first; the index table describes its members."))
    return format_html('<div id="cible-index">{}</div>', format_html_join("", "{}", ((part,) for part in parts)))


def _index_table(rows: list[dict]) -> SafeString:
    body = format_html_join(
        "",
        '<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}</td></tr>",
        (
            (
                "cible-over" if row["over_represented"] else "",
                row["criterion"].replace("_", " "),
                row["value"],
                row["n_seg"],
                _pct(row["p_seg"]),
                _pct(row["p_base"]),
                "-" if row["index"] is None else f"{row['index']:.0f}",
                "-" if row["z"] is None else f"{row['z']:.1f}",
                f"{row['excess']:+.0f}",
                "✔" if row["over_represented"] else "",
            )
            for row in rows[:SHOWN_ROWS]
        ),
    )
    more = len(rows) - SHOWN_ROWS
    return format_html(
        '<table class="cible-index"><thead><tr><th>Criterion</th><th>Value</th><th>In segment</th>'
        "<th>Share in segment</th><th>Share in base</th><th>Index</th><th>z</th><th>Excess members</th>"
        "<th>Over-represented</th></tr></thead><tbody>{}</tbody></table>{}",
        body,
        format_html("<p>{} more rows in the API.</p>", more) if more > 0 else "",
    )


def suggestion_panel(segment: Segment, suggestion: dict | None, *, can_write: bool) -> SafeString:
    if suggestion is None:
        return _p("Shown once the index table is ready.")
    if suggestion["definition"] is None:
        return _p("No criterion is over-represented in both index and volume.")
    criteria = format_html_join(
        ", ",
        "{} = {} (index {}, +{} members)",
        (
            (c["criterion"].replace("_", " "), c["value"], f"{c['index']:.0f}", f"{c['excess']:.0f}")
            for c in suggestion["criteria"]
        ),
    )
    button = (
        _button(
            reverse("admin:segments_segment_suggestion_create", args=[segment.pk]),
            "Create this segment",
            "_suggestion",
        )
        if can_write
        else ""
    )
    return format_html(
        '<p id="cible-suggestion">Any of: {}.<br>Size <strong>{}</strong> ({} of the base); it reaches {} of this'
        " segment's members.</p><p>{}</p>",
        criteria,
        suggestion["size"],
        _pct(suggestion["share"]),
        _pct(suggestion["reach"]),
        button,
    )


def exports_panel(segment: Segment, *, can_write: bool) -> SafeString:
    return format_html('<div id="cible-exports">{}</div>', _exports(segment, can_write=can_write))


def _exports(segment: Segment, *, can_write: bool) -> SafeString:
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
        else _p("No export yet.")
    )
    if not can_write:
        return table
    if not segment.audience.current_version:
        return format_html("{}<p>Compute the audience before exporting it.</p>", table)
    return format_html(
        '{}<p>{} {}</p><p class="help">Only the members whose consent covers the purpose and channel when the'
        " file is written are exported.</p>",
        table,
        _fields(ExportForm()),
        _button(reverse("admin:segments_segment_export", args=[segment.pk]), "Export the audience", "_export"),
    )


def job_statuses(segment: Segment) -> dict:
    """What the page polls while something runs: the audience, the analysis and the recent exports."""
    audience = segment.audience
    analysis = SegmentAnalysis.objects.filter(segment=segment).values_list("status", flat=True).first()
    exports = dict(AudienceExport.objects.filter(segment=segment).values_list("pk", "status")[:SHOWN_EXPORTS])
    jobs = {"audience": audience.status, **({"analysis": analysis} if analysis else {})}
    jobs.update({f"export-{pk}": status for pk, status in exports.items()})
    return {
        "jobs": jobs,
        "busy": any(status in BUSY for status in jobs.values()),
        "audience": {"version": audience.current_version, "size": audience.size},
    }
