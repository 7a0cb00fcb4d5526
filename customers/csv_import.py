"""CSV files of profiles or orders (a marketer's prospect file, a CRM export),
turned into ingestion items so they follow exactly the API's rules.

The idempotency key of a row is the file's SHA-256 and the row number: importing
the same file again adds nothing, and a corrected file imports afresh.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from accounts.models import Workspace
from core.csvfiles import UnreadableRow, checked_header, checked_rows
from core.errors import CommonErrorCode
from customers.errors import CustomerErrorCode
from customers.ingestion import ORDER_READERS, PROFILE_READERS, IngestReport, orders_ingest, profiles_ingest
from customers.models import AttributeDefinition, AttributeType

CHUNK_ROWS = 5_000  # ~1.5 s per chunk of profiles on PostgreSQL; bounds memory and transaction size
MAX_REPORTED_ERRORS = 1_000
_TRUE = {"1", "true", "yes", "y", "oui", "vrai"}
_FALSE = {"0", "false", "no", "n", "non", "faux"}


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (encoding, header)."""


def decode(content: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 as saved by a French Excel."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise CsvFormatError("The file is not CSV text in UTF-8 or Windows-1252.")


def csv_text(content: bytes) -> str:
    """An uploaded CSV file as text, or a ValidationError saying why it cannot be one."""
    if len(content) > settings.IMPORT_MAX_BYTES:
        raise ValidationError(
            gettext("The file is over %(import_max_bytes)s bytes.") % {"import_max_bytes": settings.IMPORT_MAX_BYTES},
            code=CommonErrorCode.MAX_LENGTH,
        )
    if not content.strip():
        raise ValidationError(gettext("The file is empty."), code=CommonErrorCode.EMPTY)
    try:
        return decode(content)
    except CsvFormatError as exc:
        raise ValidationError(str(exc), code=CustomerErrorCode.ENCODING) from None


def _delimiter(text: str) -> str:
    """The separator used in the header line: French spreadsheets save with semicolons."""
    header = text.split("\n", 1)[0]
    return max([",", ";", "\t", "|"], key=header.count)


def _number(raw: str) -> Any:
    text = raw.replace(",", ".") if raw.count(",") == 1 and "." not in raw else raw
    try:
        value = float(text)
    except ValueError:
        return raw  # left as text: the validator rejects it with its own message
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _attribute(kind: str, raw: str) -> Any:
    if kind == AttributeType.NUMBER:
        return _number(raw)
    if kind == AttributeType.BOOLEAN:
        lowered = raw.strip().lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else raw
    if kind == AttributeType.STRING_LIST:
        return [part.strip() for part in raw.replace(";", "|").split("|") if part.strip()]
    return raw


def _rows(text: str, kind: str, workspace: Workspace) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        # Every line read before any is imported: a line the csv module cannot read (a cell over
        # its limit) fails the file with the line's number, with nothing half-imported.
        header = [name.strip() for name in checked_header(reader)]
        reader.fieldnames = header
        records = list(checked_rows(reader))
    except UnreadableRow as problem:
        raise CsvFormatError(str(problem)) from None
    if not header:
        raise CsvFormatError("The file is empty: expected a header row.")
    attribute_types = dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "type"))
    if kind == "profiles":
        allowed = set(PROFILE_READERS) - {"attributes", "identities"}
    else:
        allowed = set(ORDER_READERS)
    unknown = [
        name
        for name in header
        if name not in allowed and not (kind == "profiles" and name.startswith("attr.") and name[5:] in attribute_types)
    ]
    if unknown:
        raise CsvFormatError(
            f"Unknown column(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}"
            + (", and attr.<key> for each attribute definition." if kind == "profiles" else ".")
        )

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for line_number, record in enumerate(records, start=2):
            item: dict[str, Any] = {}
            for name, raw in record.items():
                if name is None or raw is None:
                    continue
                raw = raw.strip()
                if raw == "":
                    continue  # an empty cell leaves the stored value alone
                if name.startswith("attr."):
                    item.setdefault("attributes", {})[name[5:]] = _attribute(attribute_types[name[5:]], raw)
                elif name in ("latitude", "longitude"):
                    item[name] = _number(raw)
                elif name == "items":
                    try:
                        item[name] = json.loads(raw)
                    except ValueError:
                        item[name] = raw
                else:
                    item[name] = raw
            if item:
                yield line_number, item

    return header, rows()


@dataclass
class CsvImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # [{row, field, message, code}]

    def add(self, report: IngestReport, lines: list[int]) -> None:
        self.rows += report.received
        self.created += report.created
        self.updated += report.updated
        self.duplicates += report.duplicates
        self.rejected += len(report.rejected)
        for entry in report.rejected:
            for field_name, messages in entry["errors"].items():
                for message in messages:
                    if len(self.errors) < MAX_REPORTED_ERRORS:
                        self.errors.append({"row": lines[entry["index"]], "field": field_name, **message})


def csv_import(*, workspace: Workspace, kind: str, text: str, content_sha256: str) -> CsvImportResult:
    """Import a whole file in chunks; each chunk is one transaction."""
    ingest = profiles_ingest if kind == "profiles" else orders_ingest
    _, rows = _rows(text, kind, workspace)
    result = CsvImportResult()
    chunk: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        items = [{**item, "idempotency_key": f"csv:{content_sha256[:32]}:{line}"} for line, item in chunk]
        result.add(ingest(workspace=workspace, items=items), [line for line, _ in chunk])
        chunk.clear()

    for line, item in rows:
        chunk.append((line, item))
        if len(chunk) >= CHUNK_ROWS:
            flush()
    if chunk:
        flush()
    return result
