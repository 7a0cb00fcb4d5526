"""A realistic French customer base for demos, tests and benchmarks.

Rows are generated in Python in large chunks and written set-based: COPY on
PostgreSQL, executemany of one prepared INSERT on SQLite. Nothing is saved a
row at a time through the ORM. Generation is deterministic for a given seed.
"""

import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.models import Workspace
from core.personal_data import key_digest
from core.sql import column_of, table_field
from customers.models import (
    AttributeDefinition,
    AttributeType,
    Event,
    Identity,
    ImportJob,
    IngestReceipt,
    MatchRule,
    MergeRow,
    Order,
    Profile,
    ProfileMerge,
    SurveyQuestion,
    SurveyResponse,
)
from privacy.models import CONSENT_FIELDS, ConsentRecord

CHUNK = 50_000  # rows per generated chunk: ~40 MB of tuples at most, one COPY each
# From this many rows, PostgreSQL builds a table's secondary indexes once after the
# load instead of maintaining them row by row: random B-tree inserts into a table of
# millions of rows write a full page to the WAL each, which made a 1M-profile seed
# take 14 minutes (the rebuild itself takes seconds).
INDEX_REBUILD_ROWS = 500_000

# (city, postal prefix, region, latitude, longitude, weight ~ metropolitan population in 100k)
CITIES: list[tuple[str, str, str, float, float, int]] = [
    ("Paris", "750", "Ile-de-France", 48.8566, 2.3522, 110),
    ("Boulogne-Billancourt", "921", "Ile-de-France", 48.8397, 2.2399, 6),
    ("Saint-Denis", "932", "Ile-de-France", 48.9362, 2.3574, 6),
    ("Versailles", "780", "Ile-de-France", 48.8049, 2.1204, 5),
    ("Lyon", "690", "Auvergne-Rhone-Alpes", 45.7640, 4.8357, 24),
    ("Grenoble", "380", "Auvergne-Rhone-Alpes", 45.1885, 5.7245, 7),
    ("Saint-Etienne", "420", "Auvergne-Rhone-Alpes", 45.4397, 4.3872, 5),
    ("Clermont-Ferrand", "630", "Auvergne-Rhone-Alpes", 45.7772, 3.0870, 5),
    ("Annecy", "740", "Auvergne-Rhone-Alpes", 45.8992, 6.1294, 3),
    ("Marseille", "130", "Provence-Alpes-Cote d'Azur", 43.2965, 5.3698, 19),
    ("Nice", "060", "Provence-Alpes-Cote d'Azur", 43.7102, 7.2620, 10),
    ("Toulon", "830", "Provence-Alpes-Cote d'Azur", 43.1242, 5.9280, 6),
    ("Aix-en-Provence", "131", "Provence-Alpes-Cote d'Azur", 43.5297, 5.4474, 4),
    ("Toulouse", "310", "Occitanie", 43.6047, 1.4442, 14),
    ("Montpellier", "340", "Occitanie", 43.6108, 3.8767, 8),
    ("Nimes", "300", "Occitanie", 43.8367, 4.3601, 3),
    ("Perpignan", "660", "Occitanie", 42.6887, 2.8948, 3),
    ("Bordeaux", "330", "Nouvelle-Aquitaine", 44.8378, -0.5792, 13),
    ("Limoges", "870", "Nouvelle-Aquitaine", 45.8336, 1.2611, 3),
    ("Poitiers", "860", "Nouvelle-Aquitaine", 46.5802, 0.3404, 3),
    ("La Rochelle", "170", "Nouvelle-Aquitaine", 46.1603, -1.1511, 2),
    ("Bayonne", "641", "Nouvelle-Aquitaine", 43.4929, -1.4748, 3),
    ("Lille", "590", "Hauts-de-France", 50.6292, 3.0573, 12),
    ("Amiens", "800", "Hauts-de-France", 49.8941, 2.2958, 3),
    ("Nantes", "440", "Pays de la Loire", 47.2184, -1.5536, 10),
    ("Angers", "490", "Pays de la Loire", 47.4784, -0.5632, 4),
    ("Le Mans", "720", "Pays de la Loire", 48.0061, 0.1996, 3),
    ("Rennes", "350", "Bretagne", 48.1173, -1.6778, 7),
    ("Brest", "290", "Bretagne", 48.3904, -4.4861, 3),
    ("Strasbourg", "670", "Grand Est", 48.5734, 7.7521, 8),
    ("Reims", "510", "Grand Est", 49.2583, 4.0317, 3),
    ("Metz", "570", "Grand Est", 49.1193, 6.1757, 4),
    ("Nancy", "540", "Grand Est", 48.6921, 6.1844, 4),
    ("Rouen", "760", "Normandie", 49.4432, 1.0999, 6),
    ("Caen", "140", "Normandie", 49.1829, -0.3707, 4),
    ("Le Havre", "766", "Normandie", 49.4944, 0.1079, 3),
    ("Dijon", "210", "Bourgogne-Franche-Comte", 47.3220, 5.0415, 4),
    ("Besancon", "250", "Bourgogne-Franche-Comte", 47.2378, 6.0241, 3),
    ("Tours", "370", "Centre-Val de Loire", 47.3941, 0.6848, 4),
    ("Orleans", "450", "Centre-Val de Loire", 47.9030, 1.9093, 4),
    ("Ajaccio", "200", "Corse", 41.9192, 8.7386, 1),
]
FIRST_NAMES = {
    "female": [
        "Camille",
        "Lea",
        "Manon",
        "Chloe",
        "Emma",
        "Ines",
        "Sarah",
        "Julie",
        "Marie",
        "Louise",
        "Anne",
        "Sophie",
        "Claire",
        "Nathalie",
        "Isabelle",
        "Sylvie",
        "Lucie",
        "Alice",
        "Jade",
        "Zoe",
    ],
    "male": [
        "Lucas",
        "Hugo",
        "Louis",
        "Gabriel",
        "Arthur",
        "Jules",
        "Thomas",
        "Nicolas",
        "Julien",
        "Pierre",
        "Antoine",
        "Maxime",
        "Alexandre",
        "Philippe",
        "Laurent",
        "Olivier",
        "Paul",
        "Leo",
        "Nathan",
        "Adam",
    ],
}
FIRST_NAMES["other"] = FIRST_NAMES["female"][:5] + FIRST_NAMES["male"][:5]
FIRST_NAMES["unknown"] = FIRST_NAMES["other"]
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefebvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefevre",
    "Faure",
    "Andre",
]
INTERESTS = [
    "running",
    "cycling",
    "hiking",
    "cooking",
    "wine",
    "travel",
    "fashion",
    "beauty",
    "home_decor",
    "gardening",
    "tech",
    "gaming",
    "books",
    "cinema",
    "music",
    "kids",
    "pets",
    "eco_living",
    "fitness",
    "yoga",
]
INTEREST_LABELS = {
    "running": "Course à pied",
    "cycling": "Vélo",
    "hiking": "Randonnée",
    "cooking": "Cuisine",
    "wine": "Vin",
    "travel": "Voyages",
    "fashion": "Mode",
    "beauty": "Beauté",
    "home_decor": "Décoration",
    "gardening": "Jardinage",
    "tech": "High-tech",
    "gaming": "Jeux vidéo",
    "books": "Lecture",
    "cinema": "Cinéma",
    "music": "Musique",
    "kids": "Enfants",
    "pets": "Animaux",
    "eco_living": "Vie écoresponsable",
    "fitness": "Fitness",
    "yoga": "Yoga",
}
LIFESTYLE_LABELS = {
    "urban_active": "Urbain actif",
    "young_family": "Jeune famille",
    "senior_comfort": "Senior confort",
    "student_budget": "Étudiant petit budget",
    "eco_conscious": "Écoresponsable",
    "premium_seeker": "Amateur de premium",
}
LIFESTYLES = ["urban_active", "young_family", "senior_comfort", "student_budget", "eco_conscious", "premium_seeker"]
CATEGORIES = [
    ("shoes", 79),
    ("apparel", 45),
    ("outdoor", 120),
    ("home", 60),
    ("beauty", 30),
    ("electronics", 199),
    ("kids", 35),
    ("books", 18),
    ("grocery", 25),
    ("sport", 55),
]
# (type, channel, weight)
EVENT_MIX = [
    ("page_view", "web", 30),
    ("product_view", "web", 20),
    ("product_view", "app", 8),
    ("search", "web", 6),
    ("add_to_cart", "web", 6),
    ("add_to_cart", "app", 2),
    ("cart_abandoned", "web", 3),
    ("cart_abandoned", "app", 1),
    ("checkout_started", "web", 2),
    ("purchase", "web", 2),
    ("email_open", "email", 8),
    ("email_click", "email", 3),
    ("app_open", "app", 5),
    ("push_open", "push", 1),
    ("store_visit", "store", 2),
    ("ad_click", "display", 1),
    ("customer_service_contact", "call_center", 1),
    ("survey_response", "web", 1),
    ("sms_click", "sms", 1),
]
CSP_WORKING = [
    ("executive", 19),
    ("intermediate", 25),
    ("employee", 26),
    ("worker", 19),
    ("crafts_trade_business", 7),
    ("farmer", 2),
    ("other_inactive", 2),
]


@dataclass
class SeedReport:
    profiles: int = 0
    identities: int = 0
    events: int = 0
    orders: int = 0
    consents: int = 0
    survey_responses: int = 0
    seconds: float = 0.0


class _Writer:
    """COPY on PostgreSQL, executemany on SQLite; values are already DB-ready."""

    def __init__(self, model: type[Model], columns: Sequence[str]):
        self.table = model._meta.db_table
        self.columns = [column_of(table_field(model, name)) for name in columns]

    def write(self, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        qn = connection.ops.quote_name
        cols = ", ".join(qn(c) for c in self.columns)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {qn(self.table)} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(f"INSERT INTO {qn(self.table)} ({cols}) VALUES ({marks})", rows)
        return len(rows)


def _ts(value: datetime) -> Any:
    # SQLite stores naive UTC text; PostgreSQL takes the aware datetime.
    if connection.vendor == "postgresql":
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def demo_reset(*, workspace: Workspace) -> None:
    """Remove the workspace's customer data with one DELETE a table (no ORM cascade collection)."""
    qn = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (
            Event,
            Order,
            ConsentRecord,
            SurveyResponse,
            Identity,
            MergeRow,
            ProfileMerge,
            MatchRule,
            IngestReceipt,
            ImportJob,
            Profile,
            AttributeDefinition,
            SurveyQuestion,
        ):
            cursor.execute(f"DELETE FROM {qn(model._meta.db_table)} WHERE workspace_id = %s", [workspace.pk])


def _attribute_definitions(workspace: Workspace) -> None:
    definitions = [
        ("interests", "Interests", AttributeType.STRING_LIST),
        ("lifestyle", "Lifestyle", AttributeType.STRING),
        ("loyalty_tier", "Loyalty tier", AttributeType.STRING),
        ("has_children", "Has children", AttributeType.BOOLEAN),
        ("household_size", "Household size", AttributeType.NUMBER),
        ("loyalty_joined_on", "Joined the loyalty programme", AttributeType.DATE),
    ]
    options = {
        "interests": [{"value": value, "label": label} for value, label in INTEREST_LABELS.items()],
        "lifestyle": [{"value": value, "label": label} for value, label in LIFESTYLE_LABELS.items()],
    }
    AttributeDefinition.objects.bulk_create(
        [
            AttributeDefinition(workspace=workspace, key=k, label=label, type=t, options=options.get(k, []))
            for k, label, t in definitions
        ],
        ignore_conflicts=True,
    )
    # The survey's wording and closed answers: the index table reads answers by these labels.
    questions = [
        ("nps", "Recommanderiez-vous la marque (0 à 10) ?", []),
        (
            "preferred_channel",
            "Canal préféré",
            [
                {"value": "email", "label": "E-mail"},
                {"value": "sms", "label": "SMS"},
                {"value": "app", "label": "Application mobile"},
                {"value": "store", "label": "Magasin"},
            ],
        ),
        (
            "sustainability_matters",
            "La démarche écoresponsable compte pour moi",
            [{"value": True, "label": "Oui"}, {"value": False, "label": "Non"}],
        ),
    ]
    SurveyQuestion.objects.bulk_create(
        [
            SurveyQuestion(workspace=workspace, survey="satisfaction_2026", question=q, label=label, options=opts)
            for q, label, opts in questions
        ],
        ignore_conflicts=True,
    )


def demo_seed(
    *,
    workspace: Workspace,
    profiles: int,
    events_per_profile: float = 10.0,
    orders_per_profile: float = 2.0,
    seed: int = 42,
    progress: Callable[[str], None] = lambda message: None,
) -> SeedReport:
    started = timezone.now()
    rng = random.Random(seed)
    report = SeedReport()
    now = timezone.now().replace(microsecond=0)
    today = now.date()
    _attribute_definitions(workspace)

    first_id = (Profile.objects.filter(workspace=workspace).count() or 0) + 1
    city_weights = [c[5] for c in CITIES]
    profile_writer = _Writer(
        Profile,
        [
            "workspace",
            "external_id",
            "lifecycle_stage",
            "first_name",
            "last_name",
            "email",
            "phone",
            "birth_date",
            "gender",
            "socio_professional_category",
            "city",
            "postal_code",
            "region",
            "country",
            "latitude",
            "longitude",
            "attributes",
            "created_at",
            "updated_at",
        ],
    )
    customers_share = 0.6
    for start in range(0, profiles, CHUNK):
        n = min(CHUNK, profiles - start)
        rows = []
        genders = rng.choices(["female", "male", "other", "unknown"], [49, 47, 1, 3], k=n)
        cities = rng.choices(CITIES, city_weights, k=n)
        ages = [min(90, max(18, int(rng.gauss(44, 16)))) for _ in range(n)]
        for i in range(n):
            number = first_id + start + i
            gender = genders[i]
            first = rng.choice(FIRST_NAMES[gender])
            last = rng.choice(LAST_NAMES)
            age = ages[i]
            birth = today - timedelta(days=age * 365 + rng.randrange(365))
            if age >= 65:
                csp = "retired"
            elif age < 24 and rng.random() < 0.6:
                csp = "student"
            else:
                csp = rng.choices([c for c, _ in CSP_WORKING], [w for _, w in CSP_WORKING])[0]
            city, prefix, region, lat, lon, _ = cities[i]
            interests = rng.sample(INTERESTS, k=rng.choice((1, 2, 2, 3, 3, 4)))
            attributes = {
                "interests": interests,
                "lifestyle": rng.choice(LIFESTYLES),
                "loyalty_tier": rng.choices(["bronze", "silver", "gold"], [60, 30, 10])[0],
                "has_children": rng.random() < (0.55 if 28 <= age <= 55 else 0.15),
                "household_size": rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5)),
            }
            if rng.random() < 0.4:
                attributes["loyalty_joined_on"] = (today - timedelta(days=rng.randrange(2000))).isoformat()
            created = now - timedelta(days=rng.randrange(1, 1500), seconds=rng.randrange(86400))
            rows.append(
                (
                    workspace.pk,
                    f"C{number:08d}",
                    "customer" if rng.random() < customers_share else "prospect",
                    first,
                    last,
                    f"{first.lower()}.{last.lower()}.{number}@example.com",
                    f"+336{(number * 7919) % 90_000_000 + 10_000_000}",
                    birth,
                    gender,
                    csp,
                    city,
                    f"{prefix}{rng.randrange(10, 99):02d}",
                    region,
                    "FR",
                    round(lat + rng.uniform(-0.04, 0.04), 5),
                    round(lon + rng.uniform(-0.05, 0.05), 5),
                    _json(attributes),
                    _ts(created),
                    _ts(created),
                )
            )
        with transaction.atomic():
            report.profiles += profile_writer.write(rows)
        progress(f"profiles {report.profiles}/{profiles}")

    # Ids and stages of what was just written, in insertion order.
    people = list(
        Profile.objects.filter(workspace=workspace, external_id__gte=f"C{first_id:08d}")
        .order_by("external_id")
        .values_list("id", "email", "phone", "lifecycle_stage", "created_at")
    )[:profiles]
    _seed_identities(people, workspace, rng, report)
    _seed_consents(people, workspace, rng, now, report)
    _seed_surveys(people, workspace, rng, now, report)
    progress(f"identities {report.identities}, consents {report.consents}, surveys {report.survey_responses}")
    with _indexes_built_after(Event, int(len(people) * events_per_profile), progress):
        _seed_events(people, workspace, rng, now, events_per_profile, report, progress)
    with _indexes_built_after(Order, int(len(people) * orders_per_profile), progress):
        _seed_orders(people, workspace, rng, now, orders_per_profile, report, progress)
    _seed_journeys(workspace, rng, now, min(40, len(people)))
    if connection.vendor == "postgresql":
        # VACUUM also sets the visibility map, so index-only scans serve segment queries right
        # after a load instead of after autovacuum's next pass; it cannot run in a transaction.
        verb = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            for model in (Profile, Event, Order, Identity, ConsentRecord, SurveyResponse):
                cursor.execute(f"{verb} {connection.ops.quote_name(model._meta.db_table)}")
    report.seconds = (timezone.now() - started).total_seconds()
    return report


@contextmanager
def _indexes_built_after(model: type[Model], rows: int, progress: Callable[[str], None]) -> Iterator[None]:
    """Drop the model's secondary (non-unique) indexes for a large load, and build them again after."""
    if connection.vendor != "postgresql" or rows < INDEX_REBUILD_ROWS:
        yield
        return
    names = [index.name for index in model._meta.indexes]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)",
            [model._meta.db_table, names],
        )
        definitions = cursor.fetchall()
        for name, _ in definitions:
            cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(name)}")
    try:
        yield
    finally:
        # Rebuilt even when the load fails, so the schema is never left without them.
        progress(f"building {len(definitions)} indexes of {model._meta.db_table}")
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for _, definition in definitions:
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")


def _chunks(rows: Iterable[Sequence[Any]], writer: _Writer) -> int:
    written = 0
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            with transaction.atomic():
                written += writer.write(batch)
            batch = []
    with transaction.atomic():
        written += writer.write(batch)
    return written


def _seed_journeys(workspace, rng, now, visitors: int) -> None:
    """Anonymous visitors browsing before they log in, through the real ingestion: half of them log
    in as a known customer afterwards, and the match rules stitch their browsing to that customer
    (the identity graph and the journey of those customers show it)."""
    from customers.ingestion import INGESTERS

    if visitors < 2:
        return
    customers = list(
        Profile.objects.filter(workspace=workspace, anonymous=False)
        .order_by("pk")
        .values_list("external_id", flat=True)[:visitors]
    )
    browsing = []
    for n in range(visitors):
        cookie = [{"type": "cookie", "value": f"ck-visit-{n:03d}"}]
        for step, kind in enumerate(("page_view", "product_view", "add_to_cart", "cart_abandoned")[: 2 + n % 3]):
            at = now - timedelta(days=2, hours=n, minutes=-10 * step)
            browsing.append(
                {
                    "idempotency_key": f"demo-visit-{n}-{step}",
                    "identities": cookie,
                    "type": kind,
                    "channel": "web",
                    "occurred_at": at.isoformat(),
                    "properties": {"path": "/chaussures"} if kind == "page_view" else {"sku": "SKU-SHO-042"},
                }
            )
    INGESTERS["events"](workspace=workspace, items=browsing)
    logins = [
        {
            "idempotency_key": f"demo-login-{n}",
            "external_id": customers[n],
            "identities": [{"type": "cookie", "value": f"ck-visit-{n:03d}"}],
            "type": "app_open" if n % 2 else "page_view",
            "channel": "app" if n % 2 else "web",
            "occurred_at": (now - timedelta(days=1, hours=n)).isoformat(),
        }
        for n in range(0, visitors, 2)
        if n < len(customers)
    ]
    INGESTERS["events"](workspace=workspace, items=logins)


def _seed_identities(people, workspace, rng, report) -> None:
    writer = _Writer(Identity, ["workspace", "profile", "type", "value", "created_at"])
    created = _ts(timezone.now())

    def rows():
        for pk, email, phone, _, _ in people:
            yield (workspace.pk, pk, "email", email, created)
            if rng.random() < 0.5:
                yield (workspace.pk, pk, "phone", phone, created)
            if rng.random() < 0.7:
                yield (workspace.pk, pk, "cookie", f"ck-{rng.getrandbits(64):016x}", created)

    report.identities = _chunks(rows(), writer)


# (purpose, channel, P(grant), P(deny)); the rest never answered. 5% of grants are later withdrawn.
CONSENT_MIX = [
    ("direct_marketing", "email", 0.62, 0.10),
    ("direct_marketing", "sms", 0.35, 0.15),
    ("direct_marketing", "push", 0.25, 0.05),
    ("personalisation", "web", 0.55, 0.10),
    ("ad_targeting", "display", 0.40, 0.20),
    ("ad_targeting", "social", 0.38, 0.20),
    ("profiling", "web", 0.45, 0.15),
]


def _seed_consents(people, workspace, rng, now, report) -> None:
    writer = _Writer(
        ConsentRecord,
        ["workspace", "profile", *CONSENT_FIELDS, "created_at"],
    )
    created = _ts(now)
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"

    def rows():
        for pk, _, _, _, joined in people:
            for purpose, channel, grant, deny in CONSENT_MIX:
                draw = rng.random()
                if draw >= grant + deny:
                    continue
                at = joined + timedelta(minutes=rng.randrange(5, 600))
                ip = f"82.{rng.randrange(64, 128)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                status = "granted" if draw < grant else "denied"
                yield (
                    workspace.pk,
                    pk,
                    purpose,
                    channel,
                    status,
                    "consent",
                    _ts(at),
                    "web-signup",
                    "/account/create",
                    "2024-03",
                    ip,
                    agent,
                    "",
                    created,
                )
                if status == "granted" and rng.random() < 0.05:
                    later = at + timedelta(days=rng.randrange(1, 300))
                    if later < now:
                        yield (
                            workspace.pk,
                            pk,
                            purpose,
                            channel,
                            "withdrawn",
                            "consent",
                            _ts(later),
                            "preference-centre",
                            "/account/preferences",
                            "2024-03",
                            ip,
                            agent,
                            "",
                            created,
                        )

    report.consents = _chunks(rows(), writer)


def _seed_surveys(people, workspace, rng, now, report) -> None:
    writer = _Writer(
        SurveyResponse, ["workspace", "profile", "survey", "question", "answer", "answered_at", "created_at"]
    )
    created = _ts(now)

    def rows():
        for pk, _, _, _, _ in people:
            if rng.random() >= 0.2:
                continue
            at = _ts(now - timedelta(days=rng.randrange(1, 365)))
            yield (
                workspace.pk,
                pk,
                "satisfaction_2026",
                "nps",
                _json(rng.choices(range(11), [1, 1, 1, 2, 2, 4, 6, 10, 14, 12, 8])[0]),
                at,
                created,
            )
            yield (
                workspace.pk,
                pk,
                "satisfaction_2026",
                "preferred_channel",
                _json(rng.choice(["email", "sms", "app", "store"])),
                at,
                created,
            )
            yield (
                workspace.pk,
                pk,
                "satisfaction_2026",
                "sustainability_matters",
                _json(rng.random() < 0.6),
                at,
                created,
            )

    report.survey_responses = _chunks(rows(), writer)


def _seed_events(people, workspace, rng, now, per_profile, report, progress) -> None:
    writer = _Writer(
        Event,
        ["workspace", "profile", "type", "channel", "occurred_at", "received_at", "properties", "idempotency_key"],
    )
    total = int(len(people) * per_profile)
    kinds = [(t, c) for t, c, _ in EVENT_MIX]
    weights = [w for _, _, w in EVENT_MIX]
    received = _ts(now)
    # People differ in activity: a quarter do half the events.
    activity = [p[0] for p in people]
    heavy = activity[: max(1, len(activity) // 4)]
    first_serial = Event.objects.filter(workspace=workspace).count()
    written = 0
    while written < total:
        n = min(CHUNK, total - written)
        picks = rng.choices(kinds, weights, k=n)
        owners = [rng.choice(heavy) if rng.random() < 0.5 else rng.choice(activity) for _ in range(n)]
        rows = []
        for i in range(n):
            kind, channel = picks[i]
            at = now - timedelta(seconds=int(365 * 86400 * rng.random() ** 1.5))
            category, price = CATEGORIES[rng.randrange(len(CATEGORIES))]
            if kind in ("product_view", "add_to_cart", "cart_abandoned"):
                properties = f'{{"sku":"SKU-{category[:3].upper()}-{rng.randrange(1000):03d}","category":"{category}","price":{price}}}'
            elif kind == "page_view":
                properties = f'{{"path":"/{category}"}}'
            elif kind == "search":
                properties = f'{{"query":"{category}"}}'
            elif kind in ("email_open", "email_click"):
                properties = f'{{"campaign":"newsletter-{at:%Y-%m}"}}'
            elif kind == "store_visit":
                properties = f'{{"store":"{rng.choice(CITIES)[0]}"}}'
            else:
                properties = "{}"
            rows.append(
                (
                    workspace.pk,
                    owners[i],
                    kind,
                    channel,
                    _ts(at),
                    received,
                    properties,
                    key_digest(f"seed:{first_serial + written + i}"),  # as ingestion keeps keys
                )
            )
        with transaction.atomic():
            written += writer.write(rows)
        progress(f"events {written}/{total}")
    report.events = written


def _seed_orders(people, workspace, rng, now, per_profile, report, progress) -> None:
    writer = _Writer(
        Order,
        [
            "workspace",
            "profile",
            "order_id",
            "amount",
            "currency",
            "ordered_at",
            "channel",
            "status",
            "items",
            "created_at",
            "updated_at",
        ],
    )
    buyers = [p[0] for p in people if p[3] == "customer"]
    if not buyers:
        report.orders = 0
        return
    total = int(len(people) * per_profile)
    created = _ts(now)
    first_serial = Order.objects.filter(workspace=workspace).count()
    written = 0
    while written < total:
        n = min(CHUNK, total - written)
        rows = []
        for i in range(n):
            lines = []
            amount = Decimal("0")
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                category, price = CATEGORIES[rng.randrange(len(CATEGORIES))]
                unit = Decimal(price) * Decimal(str(round(rng.uniform(0.6, 1.6), 2)))
                unit = unit.quantize(Decimal("0.01"))
                quantity = rng.choice((1, 1, 1, 2))
                amount += unit * quantity
                lines.append(
                    {
                        "sku": f"SKU-{category[:3].upper()}-{rng.randrange(1000):03d}",
                        "category": category,
                        "quantity": quantity,
                        "unit_price": str(unit),
                    }
                )
            at = now - timedelta(seconds=int(730 * 86400 * rng.random() ** 1.3))
            status = "completed" if rng.random() < 0.94 else rng.choice(("cancelled", "refunded"))
            rows.append(
                (
                    workspace.pk,
                    rng.choice(buyers),
                    f"ORD-{first_serial + written + i + 1:09d}",
                    amount,
                    workspace.currency,
                    _ts(at),
                    rng.choices(("web", "app", "store", "phone"), (55, 20, 22, 3))[0],
                    status,
                    _json(lines),
                    created,
                    created,
                )
            )
        with transaction.atomic():
            written += writer.write(rows)
        progress(f"orders {written}/{total}")
    report.orders = written
