"""Data for the insights tests: real public transactions (CDNOW) and bases with planted structure."""

import importlib.util
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from django.utils import timezone

from customers.models import Event, Order, Profile
from privacy.models import ConsentRecord

UTC = UTC


def cdnow_path() -> Path:
    """CDNOW_master.txt as the `lifetimes` package ships it (its datasets folder, not imported:
    lifetimes itself does not import under current numpy)."""
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations, "the lifetimes package is a dev requirement"
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"


def cdnow_rows(limit_customers: int | None = None) -> list[tuple[int, datetime, Decimal]]:
    """(customer, day, amount) of the CDNOW master file: 69,659 purchases of 23,570 customers."""
    rows = []
    for line in cdnow_path().read_text().splitlines():
        if not line.strip() or line.split()[0] == "customer_id":
            continue  # the header
        customer, day, _units, amount = line.split()
        customer_id = int(customer)
        if limit_customers is not None and customer_id > limit_customers:
            continue
        moment = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
        rows.append((customer_id, moment, Decimal(amount)))
    return rows


def load_cdnow(workspace, rows) -> dict[int, int]:
    """Profiles and completed orders for the rows; returns customer -> profile id."""
    customers = sorted({c for c, _, _ in rows})
    Profile.objects.bulk_create(
        [Profile(workspace=workspace, external_id=f"cdnow-{c}") for c in customers], batch_size=5000
    )
    ids = dict(
        (int(ext.split("-")[1]), pk)
        for ext, pk in Profile.objects.filter(workspace=workspace).values_list("external_id", "pk")
    )
    Order.objects.bulk_create(
        [
            Order(
                workspace=workspace,
                profile_id=ids[c],
                order_id=f"o{i}",
                amount=amount,
                currency="USD",
                ordered_at=moment,
                channel="web",
            )
            for i, (c, moment, amount) in enumerate(rows)
        ],
        batch_size=5000,
    )
    return ids


def planted_base(workspace, *, n: int = 1500, seed: int = 0) -> dict[str, np.ndarray]:
    """Three kinds of people whose behaviour differs (known clusters), a region that goes with
    the first kind (for a segment defined on region), and a mild noise everywhere."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, size=n)
    now = timezone.now()
    regions = np.where(
        kind == 0,
        np.where(rng.random(n) < 0.8, "Bretagne", "Normandie"),
        np.where(rng.random(n) < 0.1, "Bretagne", "Normandie"),
    )
    Profile.objects.bulk_create(
        [
            Profile(
                workspace=workspace, external_id=f"pl-{i}", region=str(regions[i]), gender="female" if i % 2 else "male"
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    ids = np.array(
        Profile.objects.filter(workspace=workspace, external_id__startswith="pl-")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    externals = Profile.objects.filter(pk__in=ids.tolist()).order_by("pk").values_list("external_id", flat=True)
    order_index = np.array([int(e.split("-")[1]) for e in externals])
    kind = kind[order_index]
    regions = regions[order_index]
    events, orders = [], []
    serial = 0
    # kind 0: store visits and big baskets; kind 1: app opens and e-mail clicks; kind 2: page views only.
    habits = {0: ("store_visit", "store", 8), 1: ("app_open", "app", 10), 2: ("page_view", "web", 6)}
    for i, pid in enumerate(ids.tolist()):
        event, channel, mean = habits[int(kind[i])]
        for _ in range(int(rng.poisson(mean))):
            serial += 1
            events.append(
                Event(
                    workspace=workspace,
                    profile_id=pid,
                    type=event,
                    channel=channel,
                    occurred_at=now - timedelta(days=float(rng.uniform(1, 80))),
                    idempotency_key=f"e{serial}",
                )
            )
        if rng.random() < 0.3:
            serial += 1
            events.append(
                Event(
                    workspace=workspace,
                    profile_id=pid,
                    type="search",
                    channel="web",
                    occurred_at=now - timedelta(days=float(rng.uniform(1, 80))),
                    idempotency_key=f"e{serial}",
                )
            )
        if kind[i] == 0 or rng.random() < 0.15:
            for _ in range(int(rng.integers(1, 4))):
                serial += 1
                amount = rng.uniform(80, 200) if kind[i] == 0 else rng.uniform(10, 40)
                orders.append(
                    Order(
                        workspace=workspace,
                        profile_id=pid,
                        order_id=f"o{serial}",
                        amount=Decimal(f"{amount:.2f}"),
                        currency="EUR",
                        ordered_at=now - timedelta(days=float(rng.uniform(1, 200))),
                        channel="web",
                    )
                )
    Event.objects.bulk_create(events, batch_size=5000)
    Order.objects.bulk_create(orders, batch_size=5000)
    return {"ids": ids, "kind": kind, "region": regions}


def affinity_base(workspace, *, n: int = 3000, seed: int = 0) -> None:
    """A latent affinity per person, seen through a noisy behaviour (e-mail opens); the seed
    segment (region "Bretagne") holds mostly people of high affinity, about 12 % of the base."""
    rng = np.random.default_rng(seed)
    affinity = rng.random(n)
    breton = np.where(affinity > 0.85, rng.random(n) < 0.75, rng.random(n) < 0.01)
    Profile.objects.bulk_create(
        [
            Profile(workspace=workspace, external_id=f"af-{i}", region="Bretagne" if breton[i] else "Alsace")
            for i in range(n)
        ],
        batch_size=2000,
    )
    ids = dict(Profile.objects.filter(workspace=workspace).values_list("external_id", "pk"))
    now = timezone.now()
    events = []
    for i in range(n):
        for j in range(int(rng.poisson(0.5 + 14 * affinity[i] ** 3))):
            events.append(
                Event(
                    workspace=workspace,
                    profile_id=ids[f"af-{i}"],
                    type="email_open",
                    channel="email",
                    occurred_at=now - timedelta(days=float(rng.uniform(1, 80))),
                    idempotency_key=f"a{i}-{j}",
                )
            )
    Event.objects.bulk_create(events, batch_size=5000)


def grant(workspace, profile_ids, *, purpose: str, channel: str) -> None:
    """Consent granted a day ago by each of the profiles, for the purpose and channel."""
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            workspace=workspace,
            profile_id=pk,
            purpose=purpose,
            channel=channel,
            status="granted",
            legal_basis="consent",
            recorded_at=timezone.now() - timedelta(days=1),
        )
        for pk in profile_ids
    )
