"""The segment page's panels below the rules: the index table and its suggestion (audiences add
the exports).

They are rendered as read-only fields of the segment admin; their buttons post to the
admin views in `segments.admin` (the change form is one HTML form, so each button names
its own `formaction`).
"""

from django import forms
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.admin_base import admin_datetime
from segments.membership import current_audience
from segments.models import Segment, SegmentAnalysis

SHOWN_ROWS = 60
BUSY = {"queued", "running", "computing"}


class AnalyseForm(forms.Form):
    """The thresholds of an index table (the same bounds as the API's analyse action)."""

    prefix = "analysis"
    min_index = forms.FloatField(min_value=0, initial=120.0, label=gettext_lazy("Index at least"))
    min_count = forms.IntegerField(min_value=0, initial=100, label=gettext_lazy("Members at least"))
    min_abs_z = forms.FloatField(min_value=0, initial=2.0, label="|z| at least")


def form_errors(form: forms.Form) -> list[str]:
    """`field: reason` lines for the admin's messages."""
    return [f"{name}: {message}" for name, messages in form.errors.items() for message in messages]


def panel_button(url: str, label: str, name: str) -> SafeString:
    return format_html(
        '<button type="submit" class="button cible-action" name="{}" formaction="{}" formmethod="post" '
        "formnovalidate>{}</button>",
        name,
        url,
        label,
    )


def panel_fields(form: forms.Form) -> SafeString:
    return format_html_join(
        " ", '<label class="cible-inline">{} {}</label>', ((field.label, field) for field in form.visible_fields())
    )


def panel_text(text: str) -> SafeString:
    return format_html("<p>{}</p>", text)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def index_panel(segment: Segment, *, can_write: bool) -> SafeString:
    analysis = SegmentAnalysis.objects.filter(segment=segment).first()
    parts = []
    if analysis is None:
        parts.append(panel_text(_("Not analysed yet.")))
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
        if analysis.status == SegmentAnalysis.Status.READY and not any(r["over_represented"] for r in analysis.rows):
            if analysis.segment_size < analysis.min_count:
                parts.append(
                    panel_text(
                        f"No criterion can be over-represented: the segment has {analysis.segment_size} members, "
                        f"fewer than the minimum count ({analysis.min_count}). Lower it, or analyse a larger segment."
                    )
                )
            else:
                parts.append(panel_text("No criterion outside the segment's own rules passes the thresholds."))
        defining = [row for row in analysis.rows if row.get("defining")]
        if defining:
            parts.append(
                format_html(
                    '<h3 id="cible-defining-rows">Defined by the segment\'s own criteria</h3><p>{}</p>{}',
                    "These rows describe the segment by definition: they are never ranked as findings.",
                    _index_table(defining, table_id="cible-defining-table"),
                )
            )
        findings = [row for row in analysis.rows if not row.get("defining")]
        if findings:
            if defining:
                parts.append(format_html("<h3>{}</h3>", "What else distinguishes the segment"))
            parts.append(_index_table(findings, table_id="cible-findings-table"))
    if can_write:
        if current_audience(segment=segment) is not None:
            initial = (
                {"min_index": analysis.min_index, "min_count": analysis.min_count, "min_abs_z": analysis.min_abs_z}
                if analysis
                else None
            )
            parts.append(
                format_html(
                    "<p>{} {}</p>",
                    panel_fields(AnalyseForm(initial=initial)),
                    panel_button(
                        reverse("admin:segments_segment_analyse", args=[segment.pk]),
                        _("Compute the index table"),
                        "_analyse",
                    ),
                )
            )
        else:
            parts.append(panel_text(_("Compute the audience first; the index table describes its members.")))
    return format_html('<div id="cible-index">{}</div>', format_html_join("", "{}", ((part,) for part in parts)))


def _index_table(rows: list[dict], *, table_id: str) -> SafeString:
    body = format_html_join(
        "",
        '<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}</td></tr>",
        (
            (
                "cible-over" if row["over_represented"] else ("cible-defining" if row.get("defining") else ""),
                row.get("label", "").split(": ", 1)[0] or row["criterion"].replace("_", " "),
                row.get("label", "").split(": ", 1)[-1] or row["value"],
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
        '<table class="cible-index" id="{}"><thead><tr><th>Criterion</th><th>Value</th><th>In segment</th>'
        "<th>Share in segment</th><th>Share in base</th><th>Index</th><th>z</th><th>Excess members</th>"
        "<th>Over-represented</th></tr></thead><tbody>{}</tbody></table>{}",
        table_id,
        body,
        format_html("<p>{} more rows in the API.</p>", more) if more > 0 else "",
    )


def suggestion_panel(segment: Segment, suggestion: dict | None, *, can_write: bool) -> SafeString:
    if suggestion is None:
        return panel_text(_("Shown once the index table is ready."))
    if suggestion["definition"] is None:
        return panel_text(suggestion.get("reason") or "No criterion is over-represented in both index and volume.")
    steps = format_html_join(
        "",
        "<tr><td>+ {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                step["added"],
                step["size"],
                _pct(step["share"]),
                _pct(step["precision"]),
                _pct(step["coverage"]),
                "-" if step["index"] is None else f"{step['index']:.0f}",
            )
            for step in suggestion["steps"]
        ),
    )
    criteria = format_html(
        '<table class="cible-suggestion-steps"><thead><tr><th>Any of</th><th>Size</th><th>Share of base</th>'
        "<th>Precision</th><th>Coverage</th><th>Index</th></tr></thead><tbody>{}</tbody></table>{}",
        steps,
        format_html("<p>{}</p>", suggestion["reason"]) if suggestion.get("reason") else "",
    )
    button = (
        panel_button(
            reverse("admin:segments_segment_suggestion_create", args=[segment.pk]),
            _("Create this segment"),
            "_suggestion",
        )
        if can_write
        else ""
    )
    return format_html(
        '<div id="cible-suggestion">{}<p>Size <strong>{}</strong> ({} of the base); {} of its people are members'
        " (index {}); it reaches {} of this segment's members.</p></div><p>{}</p>",
        criteria,
        suggestion["size"],
        _pct(suggestion["share"]),
        _pct(suggestion["precision"]),
        "-" if suggestion["index"] is None else f"{suggestion['index']:.0f}",
        _pct(suggestion["reach"]),
        button,
    )


def job_statuses(segment: Segment) -> dict[str, str]:
    """The segment's own jobs the page polls while they run: the index table."""
    analysis = SegmentAnalysis.objects.filter(segment=segment).values_list("status", flat=True).first()
    return {"analysis": analysis} if analysis else {}
