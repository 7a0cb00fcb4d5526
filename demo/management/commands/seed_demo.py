import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Role, Workspace
from accounts.services import membership_set, token_get_or_create, workspace_create
from customers.models import Profile
from demo.seed import demo_reset, demo_seed

DEMO_PASSWORD = "cible-demo"
DEMO_USERS = [
    ("admin", Role.ADMIN, True),
    ("marina", Role.MARKETER, False),
    ("manon", Role.MANAGER, False),
    ("victor", Role.VIEWER, False),
    ("pauline", Role.PRIVACY_OFFICER, False),
]


class Command(BaseCommand):
    help = "Create the demo workspace, its users (one per role) and a realistic French customer base."

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=5_000, help="How many profiles (up to 1,000,000).")
        parser.add_argument("--events-per-profile", type=float, default=10.0)
        parser.add_argument("--orders-per-profile", type=float, default=2.0)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--workspace", default="demo", help="Slug of the workspace to fill.")
        parser.add_argument("--reset", action="store_true", help="Delete the workspace's customer data first.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the workspace has profiles.")

    def handle(self, *args, **options):
        if not 0 <= options["profiles"] <= 5_000_000:
            raise CommandError("--profiles must be between 0 and 5,000,000.")
        User = get_user_model()
        with transaction.atomic():
            workspace = Workspace.objects.filter(slug=options["workspace"]).first() or workspace_create(
                name="Maison Cible (demo)" if options["workspace"] == "demo" else options["workspace"],
                slug=options["workspace"],
                currency="EUR",
                time_zone="Europe/Paris",
            )
            for username, role, superuser in DEMO_USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    create = User.objects.create_superuser if superuser else User.objects.create_user
                    user = create(username=username, email=f"{username}@example.com", password=DEMO_PASSWORD)
                membership_set(workspace=workspace, user=user, role=role)
        existing = Profile.objects.filter(workspace=workspace).exists()
        if existing and options["if_empty"]:
            self.stdout.write(f"Workspace {workspace.slug} already has profiles; nothing seeded.")
        else:
            if existing and not options["reset"]:
                raise CommandError(f"Workspace {workspace.slug} already has profiles: add --reset to replace them.")
            if options["reset"]:
                demo_reset(workspace=workspace)
            started = time.monotonic()
            report = demo_seed(
                workspace=workspace,
                profiles=options["profiles"],
                events_per_profile=options["events_per_profile"],
                orders_per_profile=options["orders_per_profile"],
                seed=options["seed"],
                progress=lambda message: self.stderr.write(f"  {message}") if options["verbosity"] > 1 else None,
            )
            elapsed = time.monotonic() - started
            self.stdout.write(
                f"Seeded {report.profiles} profiles, {report.identities} identities, {report.events} events, "
                f"{report.orders} orders, {report.consents} consent records, {report.survey_responses} survey answers "
                f"in {elapsed:.1f} s ({report.profiles / elapsed if elapsed else 0:,.0f} profiles/s)."
            )
        admin = User.objects.get(username="admin")
        self.stdout.write(
            f"Workspace: {workspace.slug}. Users (password {DEMO_PASSWORD!r}): "
            + ", ".join(f"{u} ({r.label})" for u, r, _ in DEMO_USERS)
            + f". API token of admin: {token_get_or_create(user=admin).key}"
        )
