"""How privacy takes part in profile merges (PrivacyConfig.ready)."""

from core.sql import rows_reassign
from privacy.audit import Action, audit_record
from privacy.models import ConsentRecord, DataSubjectRequest, RemovalNotice


def profile_merging(sender, *, survivor, merged, **kwargs) -> dict[str, int]:
    # The consent history moves whole: each record keeps its time, so the state in force
    # after the merge is the latest statement of either person.
    return {
        "consents": rows_reassign(model=ConsentRecord, survivor=survivor, merged=merged),
        "privacy_requests": rows_reassign(model=DataSubjectRequest, survivor=survivor, merged=merged),
        "removal_notices": rows_reassign(model=RemovalNotice, survivor=survivor, merged=merged),
    }


def profile_viewed(sender, *, workspace_id, actor, object_type, object_id, profile_id, via, **kwargs) -> None:
    audit_record(
        workspace_id=workspace_id,
        actor=actor,
        action=Action.PROFILE_VIEWED,
        object_type=object_type,
        object_id=object_id,
        profile_id=profile_id,
        detail={"via": via},
    )
