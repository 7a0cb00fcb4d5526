"""Criteria families that higher apps add to the rule language.

Segments owns the rule language, but some criteria are computed above it: RFM scores, personas,
membership probabilities and lookalike bands are learnt by `insights`, which registers them
here in its AppConfig.ready (segments never imports insights). A family is a leaf key of a
definition (`{"rfm": {"segment": "champions"}}`) with a validator, which reports each problem
with the path of the node and may check that what it names exists in the workspace, and a
compiler, which returns the profiles it selects as a set of ids tested with `core.sql.InRows`
(set-based, like every other leaf). A family may also add rows to a segment's index table
(`IndexDimension`): counts by value, one GROUP BY, with the rule that selects each value.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# (spec, path, workspace_id or None, errors) -> None; append "path: message" to errors.
Validator = Callable[[Any, str, int | None, list[str]], None]
# (spec, ctx) -> a query of profile ids (one column), evaluated inside the segment's query.
Compiler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class IndexDimension:
    """Rows of the index table a criterion family adds: `counts(profiles, workspace_id)` returns
    {value: people} for a queryset of profiles (one GROUP BY); `rule(value)` is the condition of
    the family that selects exactly the people of a value; `values` labels them, in their order."""

    name: str
    label: str
    values: tuple[tuple[str, str], ...]
    counts: Callable[[Any, int], dict[str, int]]
    rule: Callable[[str], dict]


@dataclass(frozen=True)
class Criterion:
    key: str
    validate: Validator
    compile: Compiler
    # The facets whose features this criterion reads (insights leaves them out of a model of it).
    facets: tuple[tuple[str, ...], ...] = ()
    dimensions: tuple[IndexDimension, ...] = ()
    # For the segment builder: its name, and what a marketer may pick of it in a workspace, as
    # (label, leaf) pairs, e.g. ("Champions", {"rfm": {"segment": "champions"}}).
    label: Any = ""  # a (lazily) translated text
    choices: Callable[[int], list[tuple[str, dict]]] | None = None
    # The JSON schema of its value, for the API's schema (a family without one is described only).
    schema: dict | None = None


_families: dict[str, Criterion] = {}


def criterion_register(criterion: Criterion) -> None:
    _families[criterion.key] = criterion


def criteria() -> dict[str, Criterion]:
    """The registered families, by leaf key."""
    return dict(_families)


def index_dimensions() -> dict[str, tuple[str, IndexDimension]]:
    """The index-table rows the families add: dimension name -> (family key, dimension)."""
    return {dimension.name: (key, dimension) for key, family in _families.items() for dimension in family.dimensions}
