from datetime import datetime

from django.db.models import Count, Max, QuerySet, Sum

from customers.models import ConsentRecord, Profile


def consent_state(*, profile: Profile, at: datetime | None = None) -> QuerySet[ConsentRecord]:
    """The consent in force per purpose and channel, now or at a past time."""
    records = ConsentRecord.objects.filter(profile=profile)
    return (records.valid_at(at) if at is not None else records.current()).order_by("purpose", "channel")


def profile_summary(*, profile: Profile) -> dict:
    """Transactional and behavioural figures of one person, for the 360 view."""
    orders = profile.orders.filter(status="completed").aggregate(
        count=Count("id"), total=Sum("amount"), last=Max("ordered_at")
    )
    events = profile.events.aggregate(count=Count("id"), last=Max("occurred_at"))
    return {
        "orders_count": orders["count"],
        "orders_total": orders["total"],
        "last_order_at": orders["last"],
        "events_count": events["count"],
        "last_event_at": events["last"],
    }
