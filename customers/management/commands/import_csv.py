import hashlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from customers.csv_import import CsvFormatError, csv_import, decode


class Command(BaseCommand):
    help = "Import a CSV file of profiles or orders into a workspace, with a row-level error report."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["profiles", "orders"])
        parser.add_argument("path", type=Path)
        parser.add_argument("--workspace", required=True, help="Workspace slug.")

    def handle(self, *args, kind: str, path: Path, workspace: str, **options):
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"No workspace with slug {workspace!r}.")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        try:
            result = csv_import(
                workspace=ws, kind=kind, text=decode(content), content_sha256=hashlib.sha256(content).hexdigest()
            )
        except CsvFormatError as exc:
            raise CommandError(str(exc)) from None
        for error in result.errors:
            self.stderr.write(f"row {error['row']}: {error['field']}: {error['message']} ({error['code']})")
        self.stdout.write(
            f"{result.rows} rows: {result.created} created, {result.updated} updated, "
            f"{result.duplicates} duplicates, {result.rejected} rejected."
        )
        if result.rejected:
            raise SystemExit(1)  # a shell script sees that some rows were refused
