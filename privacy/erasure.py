"""Erasure: a person's data removed or anonymised in every table and file, set-based.

It serves an erasure request (one person) and the retention purge of inactive prospects (a
batch of people) alike. What identifies or describes the person goes: contact and profile
fields, identities, aliases, survey answers, consent records (their IP and user agent), event
properties, order ids and items, audience memberships of every version, rows of export and
delivery files and of imported files, access-request files, and the admin's change log.
What counts stays, without identity: the emptied profile row, anonymous events, orders
(amount and date), deliveries and clicks, so reports and roll-ups keep their totals.
"""

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

import phonenumbers
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from core import csvfiles
from core.personal_data import key_digest
from core.sql import rows_delete
from customers.models import (
    Event,
    Identity,
    IdentityType,
    ImportJob,
    IngestReceipt,
    MergeRow,
    Order,
    Profile,
    ProfileMerge,
    SurveyResponse,
)
from privacy.models import ConsentRecord, DataSubjectRequest
from privacy.registry import counts_of, profiles_erasing
from privacy.suppression import profile_identifiers

# The profile fields an erasure empties, with the value each gets.
_BLANK: dict[str, Any] = {
    "first_name": "",
    "last_name": "",
    "email": "",
    "phone": "",
    "birth_date": None,
    "gender": "unknown",
    "socio_professional_category": "",
    "city": "",
    "postal_code": "",
    "region": "",
    "country": "",
    "latitude": None,
    "longitude": None,
    "attributes": {},
}


def _erased_key(prefix: str = "erased-"):
    return Concat(Value(prefix), Cast("pk", output_field=CharField()), output_field=CharField())


def profiles_erase(*, workspace_id: int, profile_ids: Iterable[int]) -> dict[str, int]:
    """Erase these people of the workspace; returns the rows changed by kind. Safe to repeat."""
    ids = sorted(
        set(Profile.objects.filter(workspace_id=workspace_id, pk__in=list(profile_ids)).values_list("pk", flat=True))
    )
    if not ids:
        return {}
    identifiers = profile_identifiers(ids)
    external_ids = dict(Profile.objects.filter(pk__in=ids).values_list("pk", "external_id"))
    aliases = dict(ProfileMerge.objects.filter(survivor_id__in=ids).values_list("merged_external_id", "survivor_id"))
    # Every text the files and logs may hold of these people, in the spellings people write them.
    needles = {spelling for values in identifiers.values() for kind, v in values for spelling in _spellings(kind, v)}
    needles |= set(external_ids.values()) | set(aliases)
    identities = list(Identity.objects.filter(profile_id__in=ids).values_list("type", "value"))
    needles |= {value for _, value in identities}  # cookies, devices...
    needles.discard("")
    request_files = list(
        DataSubjectRequest.objects.filter(profile_id__in=ids).exclude(export_file="").values_list("pk", flat=True)
    )
    now = timezone.now()
    done: dict[str, int] = {}
    with transaction.atomic():
        people = Profile.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        list(people.values_list("pk", flat=True))  # lock the rows, in id order
        done["identities"] = rows_delete(Identity.objects.filter(profile_id__in=ids))
        # The merges' journals hold what came from each side (and the merged profiles as they were).
        # A merge split back keeps the restored person's snapshot under the other profile: it goes too.
        merges = ProfileMerge.objects.filter(Q(survivor_id__in=ids) | Q(merged_profile_id__in=ids))
        rows_delete(MergeRow.objects.filter(merge__in=merges.values("pk")))
        done["aliases"] = rows_delete(merges)
        done["survey_responses"] = rows_delete(SurveyResponse.objects.filter(profile_id__in=ids))
        # The one path that deletes consent records: the person's right outranks the history.
        done["consents"] = rows_delete(ConsentRecord.objects.filter(profile_id__in=ids))
        done["events"] = Event.objects.filter(profile_id__in=ids).update(properties={}, idempotency_key=_erased_key())
        done["orders"] = Order.objects.filter(profile_id__in=ids).update(order_id=_erased_key(), items=[])
        # Every higher app erases its own rows and files (memberships, deliveries, exports...),
        # while the profiles still carry the external ids their files are keyed by.
        done.update(
            counts_of(
                profiles_erasing.send(
                    sender=Profile,
                    workspace_id=workspace_id,
                    profile_ids=ids,
                    external_ids={external_ids[p] for p in ids} | set(aliases),
                    identities=identities,
                )
            )
        )
        # Keys are kept as digests (a key cannot carry an identifier); a key that was exactly one
        # of the person's identifiers goes too.
        done["ingest_receipts"] = rows_delete(
            IngestReceipt.objects.filter(
                workspace_id=workspace_id, idempotency_key__in=[key_digest(needle) for needle in needles]
            )
        )
        done["admin_log"] = _scrub_admin_log(ids, needles)
        for request in DataSubjectRequest.objects.filter(profile_id__in=ids):
            notes = request.notes
            for needle in needles:
                notes = notes.replace(needle, "[erased]")
            DataSubjectRequest.objects.filter(pk=request.pk).update(subject="", changes={}, notes=notes)
        done["profiles"] = Profile.objects.filter(pk__in=ids).update(
            **_BLANK, external_id=_erased_key(), erased_at=now, updated_at=now
        )
        done["import_files"] = _scrub_imports(workspace_id, needles)
        for request in DataSubjectRequest.objects.filter(pk__in=request_files):
            request.export_file.delete(save=False)
            DataSubjectRequest.objects.filter(pk=request.pk).update(export_file="")
        done["access_files"] = len(request_files)
    return {kind: n for kind, n in done.items() if n}


def _spellings(kind: str, value: str) -> set[str]:
    """An identifier as it may have been typed: a phone in E.164 and in its national and
    international forms, spaced, dotted or not (+33612345678, 06 12 34 56 78, 0612345678...)."""
    found = {value}
    if kind != IdentityType.PHONE:
        return found
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return found
    for style in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
        text = phonenumbers.format_number(number, style)
        found |= {text, text.replace(" ", ""), text.replace(" ", "."), text.replace(" ", "-")}
    return found


def _scrub_admin_log(ids: list[int], needles: set[str]) -> int:
    """The admin's change log names objects by their text: take the people's out of it."""
    profile_type = ContentType.objects.get_for_model(Profile)
    match = Q(content_type=profile_type, object_id__in=[str(pk) for pk in ids])
    for needle in needles:
        match |= Q(object_repr__icontains=needle) | Q(change_message__icontains=needle)
    return LogEntry.objects.filter(match).update(object_repr="[erased]", change_message="")


def _read_rows(text: str, json_lines: bool) -> tuple[list[str], list]:
    if json_lines:
        return [], [json.loads(line) for line in text.splitlines() if line.strip()]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    return header, list(reader)


def file_rows_drop(*, holder, key: str, values: set[str]) -> int:
    """Write the holder's file (CSV or JSON lines) again without the rows whose `key` column is one
    of `values`; 1 when the file changed. The apps whose files name people call it on erasure."""
    with holder.file.open("rb") as f:
        text = f.read().decode("utf-8")
    json_lines = holder.file.name.endswith(".jsonl")
    header, rows = _read_rows(text, json_lines)
    if json_lines:
        kept = [row for row in rows if str(row.get(key, "")) not in values]
        content = "".join(json.dumps(row) + "\n" for row in kept)
    else:
        column = header.index(key) if key in header else None
        kept = [row for row in rows if column is None or row[column] not in values]
        buffer = io.StringIO()
        writer = csvfiles.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(kept)
        content = buffer.getvalue()
    if len(kept) == len(rows):
        return 0
    name = holder.file.name
    storage = holder.file.storage
    storage.delete(name)
    storage.save(name, ContentFile(content.encode("utf-8")))
    return 1


def _scrub_imports(workspace_id: int, needles: set[str]) -> int:
    """Imported files still kept: drop the lines that carry one of the people's identifiers."""
    if not needles:
        return 0
    lowered = {n.lower() for n in needles}
    changed = 0
    jobs = ImportJob.objects.filter(workspace_id=workspace_id).exclude(content="").only("pk", "content", "errors")
    for job in jobs.iterator(chunk_size=20):
        if not any(n in job.content.lower() for n in lowered):
            continue
        lines = job.content.splitlines(keepends=True)
        kept = [line for i, line in enumerate(lines) if i == 0 or not any(n in line.lower() for n in lowered)]
        errors = [e for e in job.errors if not any(n in json.dumps(e).lower() for n in lowered)]
        ImportJob.objects.filter(pk=job.pk).update(content="".join(kept), errors=errors)
        changed += 1
    return changed
