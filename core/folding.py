"""Text compared the way people type it: case, accents and separators do not count.

"Île-de-France", "ile de france" and "ILE-DE-FRANCE" fold to the same text, so a rule on a place
name or a text value finds the people whichever way the marketer (or the source system) wrote it.
`fold` is the Python side; `Folded` is the same folding in SQL: on PostgreSQL `translate(lower(x),
...)` (both immutable, so an expression index serves it), on SQLite a function registered on each
connection. Both use the one table below, so the two sides always agree.
"""

import unicodedata
from typing import Any

from django.db.backends.signals import connection_created
from django.db.models import CharField, Func

# Accented Latin letters (both cases: lower() depends on the database's locale), each folded to its
# plain lower-case letter, and separators folded to a space.
_LETTERS = (
    "àáâãäåāăąÀÁÂÃÄÅĀĂĄçćčÇĆČďĎèéêëēėęěÈÉÊËĒĖĘĚìíîïīįÌÍÎÏĪĮłŁñńňÑŃŇòóôõöøōőÒÓÔÕÖØŌŐŕřŔŘśšşŚŠŞťŤ"
    "ùúûüūůűųÙÚÛÜŪŮŰŲýÿÝŸžźżŽŹŻ"
)
_SEPARATORS = "-_'’"
_PLAIN = {"ł": "l", "Ł": "l", "ø": "o", "Ø": "o"}  # letters that have no decomposition
_FROM = _LETTERS + _SEPARATORS
_TO = "".join(
    _PLAIN.get(letter) or unicodedata.normalize("NFKD", letter)[0].lower() for letter in _LETTERS
) + " " * len(_SEPARATORS)
_TABLE = str.maketrans(_FROM, _TO)


def fold(value: Any) -> str:
    """The folded form of a text: lower case, no accents, hyphens and apostrophes as spaces,
    surrounding spaces and doubled spaces dropped."""
    return " ".join(str(value).lower().translate(_TABLE).split())


def _fold_column(value: Any) -> str | None:
    # What the SQL side computes (no collapsing of inner spaces: translate cannot).
    return None if value is None else str(value).lower().translate(_TABLE)


def fold_sql(column_sql: str) -> str:
    """The folding of a column as PostgreSQL SQL (for an expression index that `Folded` uses)."""
    quoted_from, quoted_to = (text.replace("'", "''") for text in (_FROM, _TO))
    return f"translate(lower({column_sql}), '{quoted_from}', '{quoted_to}')"


class Folded(Func):
    """The folded form of a text expression, in SQL (see the module docstring)."""

    output_field = CharField()
    arity = 1

    def as_sql(self, compiler, connection, **extra_context):
        inner, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return fold_sql(inner), params
        return f"cible_fold({inner})", params


def _register_sqlite(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("cible_fold", 1, _fold_column, deterministic=True)


connection_created.connect(_register_sqlite, dispatch_uid="core.folding.sqlite")
