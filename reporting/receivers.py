"""How reporting takes part in merges and access requests; clicks come in as events that name the
delivery they came from (`properties.touch_id`), recorded by a follow-up of the ingest."""

from typing import Any


def profile_merging(sender, *, journal, **kwargs) -> None:
    from reporting.models import Click

    journal.move(model=Click, name="clicks")


def access_section(profile) -> dict[str, Any]:
    from reporting.models import Click

    return {"clicks": list(Click.objects.filter(profile=profile).values("touch_id", "occurred_at"))}
