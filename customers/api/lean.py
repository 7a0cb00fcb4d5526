"""The lean read path of profiles (core.lean): a profile, a list of profiles, an audience's members."""

import functools

from django.db.models import QuerySet

from core.lean import Plan
from customers.api import serializers as s
from customers.models import Identity, age_of
from customers.selectors import profile_summary_columns, summary_of


@functools.cache
def profile_plan() -> Plan:
    return Plan(s.ProfileOutput, computed={"age": lambda row: age_of(row["birth_date"])})


@functools.cache
def _identity_plan() -> Plan:
    return Plan(s.IdentityOutput)


@functools.cache
def _summary_plan() -> Plan:
    return Plan(s.ProfileSummaryOutput)


def profile_detail_values(rows: QuerySet) -> QuerySet:
    """The profile's columns and its summary's, in one statement (`profile_detail` makes the answer)."""
    return rows.values(*profile_plan().columns, **profile_summary_columns())


def profile_detail(row: dict) -> dict:
    """ProfileDetailOutput's answer for the profile read by `profile_detail_values`."""
    identities = Identity.objects.filter(profile_id=row["id"]).values(*_identity_plan().columns)
    return {
        **profile_plan().row(row),
        "identities": _identity_plan().rows(identities),
        "summary": _summary_plan().row(summary_of(row=row)),
    }
