"""Reporting services: delivery figures in (figures), clicks and attribution (attribution), and the
incremental daily roll-up (rollup).

Everything that touches many rows is one SQL statement per step; Python only sees per-campaign
ranges and aggregated keys. The public services are importable from here.
"""

from reporting.services.attribution import attribution_run, attribution_settings, clicks_record
from reporting.services.figures import FiguresRejected, figure_check, figure_upsert, figures_ingest
from reporting.services.rollup import rollup_run, rollups_due

__all__ = [
    "FiguresRejected",
    "attribution_run",
    "attribution_settings",
    "clicks_record",
    "figure_check",
    "figure_upsert",
    "figures_ingest",
    "rollup_run",
    "rollups_due",
]
