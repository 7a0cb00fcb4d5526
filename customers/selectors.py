from django.db.models import Count, Max, Sum

from customers.models import Profile


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
