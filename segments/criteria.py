"""Criteria families that higher apps add to the rule language.

Segments owns the rule language, but some criteria are computed above it: RFM scores, personas,
membership probabilities and lookalike bands are learnt by `insights`, which registers them
here in its AppConfig.ready (segments never imports insights). A family is a leaf key of a
definition (`{"rfm": {"segment": "champions"}}`) with a validator, which reports each problem
with the path of the node and may check that what it names exists in the workspace, and a
compiler, which returns the profiles it selects as a set of ids tested with `core.sql.InRows`
(set-based, like every other leaf).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# (spec, path, workspace_id or None, errors) -> None; append "path: message" to errors.
Validator = Callable[[Any, str, int | None, list[str]], None]
# (spec, ctx) -> a query of profile ids (one column), evaluated inside the segment's query.
Compiler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Criterion:
    key: str
    validate: Validator
    compile: Compiler
    # The facets whose features this criterion reads (insights leaves them out of a model of it).
    facets: tuple[tuple[str, ...], ...] = ()


_families: dict[str, Criterion] = {}


def criterion_register(criterion: Criterion) -> None:
    _families[criterion.key] = criterion


def criteria() -> dict[str, Criterion]:
    """The registered families, by leaf key."""
    return dict(_families)
