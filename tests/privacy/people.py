"""A person whose data went everywhere Cible keeps it, for the privacy tests."""

from datetime import timedelta

import numpy as np
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audiences.exports import export_request, export_run
from campaigns.activation import campaign_deliveries, campaign_handoff
from campaigns.models import Campaign, PendingSend, Touch
from customers.models import Identity, ImportJob, Profile
from customers.services import profile_create, survey_response_create
from insights.features import features_refresh
from insights.models import (
    ClvRun,
    ClvScore,
    Lookalike,
    LookalikeMember,
    Persona,
    PersonaMember,
    PersonaRun,
    PredictiveModel,
)
from insights.prediction import scores_write
from insights.rfm import rfm_compute
from segments.models import ManualMember
from tests.factories import make_campaign, make_consent, make_event, make_order, make_segment

PAST = timezone.now() - timedelta(days=10)
EMAIL = "claire.martin@example.com"
PHONE = "+33612345678"


def contactable(workspace, external_id: str, *, email: str, phone: str = "", channels=("email", "sms")) -> Profile:
    profile = profile_create(
        workspace=workspace, external_id=external_id, email=email, phone=phone, first_name="Claire", country="FR"
    )
    for channel in channels:
        make_consent(profile=profile, channel=channel, recorded_at=PAST)
    make_consent(profile=profile, purpose="ad_targeting", channel="display", recorded_at=PAST)
    return profile


def learnt(workspace, segment, people: list[Profile]) -> None:
    """What insights learns of them: features and RFM scores (computed), a model's scores, a
    persona, a lookalike band and a lifetime value (written as the jobs write them; training
    needs a larger base)."""
    features_refresh(workspace=workspace)
    rfm_compute(workspace=workspace)
    ids = np.array(sorted(p.pk for p in people), dtype=np.int64)
    model = PredictiveModel.objects.create(workspace=workspace, kind="membership", name="Everyone", segment=segment)
    scores_write(model=model, ids=ids, scores=np.full(len(ids), 0.5))
    run = PersonaRun.objects.create(workspace=workspace, version=1, k=1, status="ready")
    persona = Persona.objects.create(workspace=workspace, number=1, name="Everyone", run=run)
    lookalike = Lookalike.objects.create(workspace=workspace, seed=segment, version=1, status="ready")
    clv = ClvRun.objects.create(workspace=workspace, version=1, as_of=timezone.now(), status="ready")
    for profile in people:
        PersonaMember.objects.create(workspace=workspace, run=run, profile=profile, persona=persona)
        LookalikeMember.objects.create(workspace=workspace, lookalike=lookalike, version=1, profile=profile, band=1)
        ClvScore.objects.create(
            workspace=workspace,
            run=clv,
            profile=profile,
            frequency=1,
            recency=2,
            age=3,
            monetary=40,
            p_alive=0.8,
            purchases=0.5,
            value=40,
            clv=120,
            decile=10,
        )


def running(workspace, segment, channels=("email",)) -> Campaign:
    campaign = make_campaign(workspace=workspace, segment=segment, channels=channels)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    campaign.refresh_from_db()
    return campaign


from campaigns.models import ChannelPreference  # noqa: E402
from campaigns.preferences import channel_preferences_compute  # noqa: E402


def everywhere(workspace, user):
    """Claire, with her data in every table and file that can hold it; plus Bob, who must stay intact."""
    claire = contactable(workspace, "CRM-CLAIRE", email=EMAIL, phone=PHONE)
    bob = contactable(workspace, "CRM-BOB", email="bob@example.com")
    Identity.objects.create(workspace=workspace, profile=claire, type="cookie", value=f"cookie-of-{EMAIL}")
    make_event(profile=claire, type="product_view", properties={"email": EMAIL, "name": "Trail shoes"})
    make_event(profile=claire, type="cart_abandoned", properties={"contact": PHONE})
    make_order(profile=claire, amount="120.00", items=[{"sku": "T1", "gift_message": f"for {EMAIL}"}])
    make_order(profile=bob, amount="30.00")
    survey_response_create(
        profile=claire, survey="nps", question="why", answer=f"call me on {PHONE}", answered_at=timezone.now()
    )
    segment = make_segment(workspace=workspace)  # everyone, computed
    ManualMember.objects.create(workspace=segment.workspace, segment=segment, profile=claire, action="include")
    # A plain and a hashed export: files holding her identifiers.
    for identifiers, channel, fmt in (("plain", "email", "csv"), ("hashed", "display", "json")):
        export = export_request(
            segment=segment,
            purpose="direct_marketing" if channel == "email" else "ad_targeting",
            channel=channel,
            format=fmt,
            identifiers=identifiers,
            by=user,
            role="admin",
        )
        export_run(export_id=export.pk)
    # A campaign delivered through the file connector (a CSV of e-mails), and one still pending.
    delivered = running(workspace, segment)
    campaign_deliveries(campaign_id=delivered.pk)
    campaign_handoff(campaign_id=delivered.pk)
    pending = running(workspace, segment, channels=("sms",))
    campaign_deliveries(campaign_id=pending.pk)
    trigger = make_campaign(
        workspace=workspace,
        targets=[
            {"segment": None, "variant": "T", "trigger_event": "cart_abandoned", "trigger_delay": timedelta(hours=1)}
        ],
    )
    Campaign.objects.filter(pk=trigger.pk).update(status=Campaign.Status.ACTIVE)
    event = make_event(profile=claire, type="cart_abandoned")
    PendingSend.objects.create(
        workspace=workspace,
        target=trigger.targets.get(),
        profile=claire,
        event=event,
        due_at=timezone.now() + timedelta(hours=1),
    )
    # An imported file naming her, and the admin's change log.
    ImportJob.objects.create(
        workspace=workspace,
        kind="profiles",
        filename="crm.csv",
        content=f"external_id,email,phone\nCRM-CLAIRE,{EMAIL},{PHONE}\nCRM-BOB,bob@example.com,\n",
        content_sha256="x",
        status="succeeded",
    )
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[claire], action_flag=CHANGE, change_message=f"Changed email to {EMAIL}."
    )
    learnt(workspace, segment, [claire, bob])
    channel_preferences_compute(workspace=workspace)  # what they respond to, from their deliveries
    assert ChannelPreference.objects.filter(profile=claire).exists()
    assert Touch.objects.filter(profile=claire, status="sent").exists()
    assert Touch.objects.filter(profile=claire, status="pending").exists()
    return claire, bob, {"delivered": delivered, "pending": pending, "trigger": trigger, "segment": segment}


def columns_holding(text: str) -> list[str]:
    """Every text-bearing column of every table that contains `text` (any case)."""
    found = []
    needle = f"%{text.lower()}%"
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                cursor.execute(
                    f"SELECT COUNT(*) FROM {qn(table)} WHERE LOWER(CAST({qn(column.name)} AS TEXT)) LIKE %s",
                    [needle],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column.name}")
    return found


def files_holding(root, text: str) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and text.lower() in path.read_bytes().decode("utf-8", "replace").lower()
    ]


def url(name: str, pk=None, ws: str = "maison") -> str:
    """A workspace resource's URL: its list, or one object with `pk`."""
    return reverse(name, kwargs={"workspace": ws, **({"pk": pk} if pk else {})})
