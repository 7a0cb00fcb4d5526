"""The segment builder as a form widget: rules built by clicking, the JSON kept under "advanced".

The widget is the JSON textarea the form has always posted, wrapped: builder.js draws the builder
above it from the workspace's catalogue (segments.vocabulary) and writes the JSON back into it on
every change, so the form, its validation and its errors stay the JSON field's. Whatever the
builder cannot draw (a rare condition typed by hand) is kept as it is, shown as JSON.
"""

import json
from typing import Any

from django import forms
from django.urls import reverse
from django.utils.translation import gettext as _


class RuleBuilder(forms.Textarea):
    template_name = "segments/widgets/rule_builder.html"

    def __init__(
        self, *, count: bool = False, facets: tuple[str, ...] = (), attrs: dict[str, Any] | None = None
    ) -> None:
        super().__init__(attrs={"rows": 10, "cols": 90, "class": "vLargeTextField cible-definition", **(attrs or {})})
        # Whether to show the live count, the sentence and the hints under the builder.
        self.count = count
        # The facets offered (empty: all), for a field that takes only some criteria.
        self.facets = facets
        # The workspace of the object edited, when the form shows no workspace to choose.
        self.workspace_id: int | None = None

    class Media:
        css = {"all": ["segments/builder.css"]}
        js = ["segments/builder.js"]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["builder"] = {
            "catalogue": reverse("admin:segments_segment_catalogue"),
            "values": reverse("admin:segments_segment_values"),
            "preview": reverse("admin:segments_segment_preview"),
            "count": self.count,
            "workspace": self.workspace_id or "",
            "facets": ",".join(self.facets),
        }
        return context


class RowsEditor(forms.Textarea):
    """A list of flat conditions, or a map of properties, edited as rows of fields; the JSON stays
    under "advanced". `columns`: [{"name", "label", "type" ("text" or "integer"), "choices",
    "default"}]; with mode="map", two columns (key and value) edit an object."""

    template_name = "segments/widgets/rows_editor.html"

    def __init__(self, *, columns: list[dict[str, Any]], mode: str = "list", attrs: dict[str, Any] | None = None):
        super().__init__(attrs={"rows": 4, "cols": 60, **(attrs or {})})
        self.columns = columns
        self.mode = mode

    class Media:
        css = {"all": ["segments/builder.css"]}
        js = ["segments/rows.js"]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        columns = [
            {
                **column,
                "label": str(column["label"]),
                **({"choices": [[v, str(label)] for v, label in column["choices"]]} if "choices" in column else {}),
            }
            for column in self.columns
        ]
        texts = {"add": str(_("Add a row")), "remove": str(_("Remove"))}
        context["rows_spec"] = json.dumps({"mode": self.mode, "columns": columns, "texts": texts})
        return context
