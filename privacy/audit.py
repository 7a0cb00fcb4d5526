"""The audit log's one writer: who did what, when, to whose data (ids only, never identifiers)."""

from typing import Any

from privacy.models import AuditEntry

Action = AuditEntry.Action


def audit_record(
    *,
    workspace_id: int,
    actor,
    action: str,
    object_type: str,
    object_id: Any = "",
    profile_id: int | None = None,
    detail: dict | None = None,
) -> AuditEntry:
    """Append one entry. `actor` is a user, or None for a scheduled task (named in `detail`)."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        workspace_id=workspace_id,
        actor=user,
        actor_name=user.get_username() if user else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        profile_id=profile_id,
        detail=detail or {},
    )
