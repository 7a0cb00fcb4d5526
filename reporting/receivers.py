"""How reporting takes part in merges and access requests; clicks come in as events that name the
delivery they came from (`properties.touch_id`), recorded by a follow-up of the ingest."""

from typing import Any

from core.sql import rows_reassign


def profile_merging(sender, *, survivor, merged, **kwargs) -> dict[str, int]:
    from reporting.models import Click

    return {"clicks": rows_reassign(model=Click, survivor=survivor, merged=merged)}


def access_section(profile) -> dict[str, Any]:
    from reporting.models import Click

    return {"clicks": list(Click.objects.filter(profile=profile).values("touch_id", "occurred_at"))}
