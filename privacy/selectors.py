from datetime import datetime

from django.db.models import QuerySet

from customers.models import Profile
from privacy.models import ConsentRecord


def consent_state(*, profile: Profile, at: datetime | None = None) -> QuerySet[ConsentRecord]:
    """The consent in force per purpose and channel, now or at a past time."""
    records = ConsentRecord.objects.filter(profile=profile)
    return (records.valid_at(at) if at is not None else records.current()).order_by("purpose", "channel")
