"""The lean read path of profiles (core.lean): a profile, a list of profiles, an audience's members."""

import functools

from core.lean import Plan
from customers.api import serializers as s
from customers.models import Identity, age_of
from customers.selectors import profile_summary


@functools.cache
def profile_plan() -> Plan:
    return Plan(s.ProfileOutput, computed={"age": lambda row: age_of(row["birth_date"])})


@functools.cache
def _identity_plan() -> Plan:
    return Plan(s.IdentityOutput)


@functools.cache
def _summary_plan() -> Plan:
    return Plan(s.ProfileSummaryOutput)


def profile_detail(row: dict) -> dict:
    """ProfileDetailOutput's answer for the profile read as `profile_plan().columns` (and its id)."""
    identities = Identity.objects.filter(profile_id=row["id"]).values(*_identity_plan().columns)
    return {
        **profile_plan().row(row),
        "identities": _identity_plan().rows(identities),
        "summary": _summary_plan().row(profile_summary(profile_id=row["id"])),
    }
