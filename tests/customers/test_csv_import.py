import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from customers.models import AttributeDefinition, ImportJob, Order, Profile

PROSPECTS = (
    "external_id;first_name;email;birth_date;city;latitude;longitude;attr.interests\n"
    "P1;Léa;lea@example.com;1992-03-04;Lyon;45,76;4,84;running|wine\n"
    "P2;Hugo;not-an-email;1985-01-01;Paris;;;\n"
    "P3;Inès;ines@example.com;31/12/1990;Lille;;;\n"
    "P4;Jules;jules@example.com;;Nantes;;;cooking\n"
)


@pytest.fixture
def interests(workspace):
    return AttributeDefinition.objects.create(
        workspace=workspace, key="interests", label="Interests", type="string_list"
    )


def test_the_command_imports_valid_rows_and_reports_each_bad_row_with_its_line(workspace, interests, tmp_path, capsys):
    path = tmp_path / "prospects.csv"
    path.write_bytes(PROSPECTS.encode("cp1252"))  # as a French Excel saves it
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_csv", "profiles", str(path), workspace="maison")
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert "4 rows: 2 created, 0 updated, 0 duplicates, 2 rejected." in out
    assert "row 3: email: Enter a valid e-mail address. (invalid_email)" in err
    assert "row 4: birth_date: Expected a date as YYYY-MM-DD. (invalid_date)" in err
    lea = Profile.objects.get(workspace=workspace, external_id="P1")
    assert (lea.first_name, lea.latitude, lea.longitude, lea.attributes) == (
        "Léa",
        45.76,
        4.84,
        {"interests": ["running", "wine"]},
    )
    assert Profile.objects.get(external_id="P4").attributes == {"interests": ["cooking"]}


def test_importing_the_same_file_twice_adds_nothing(workspace, interests, tmp_path, capsys):
    path = tmp_path / "prospects.csv"
    path.write_text(PROSPECTS.replace("not-an-email", "hugo@example.com").replace("31/12/1990", "1990-12-31"))
    call_command("import_csv", "profiles", str(path), workspace="maison")
    call_command("import_csv", "profiles", str(path), workspace="maison")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "4 rows: 4 created, 0 updated, 0 duplicates, 0 rejected.",
        "4 rows: 0 created, 0 updated, 4 duplicates, 0 rejected.",
    ]
    assert Profile.objects.filter(workspace=workspace).count() == 4


def test_an_unknown_column_refuses_the_whole_file(workspace, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("external_id,shoe_size\nP1,42\n")
    with pytest.raises(CommandError, match="Unknown column"):
        call_command("import_csv", "profiles", str(path), workspace="maison")
    assert not Profile.objects.exists()


def test_orders_import_from_csv(workspace, tmp_path, capsys):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,external_id,amount,ordered_at,channel,items\n"
        'A-1,C1,19.90,2026-03-01T10:00:00+01:00,store,"[{""sku"": ""S1"", ""quantity"": 2}]"\n'
        "A-2,C1,abc,2026-03-01T10:00:00+01:00,store,\n"
    )
    with pytest.raises(SystemExit):
        call_command("import_csv", "orders", str(path), workspace="maison")
    assert "row 3: amount" in capsys.readouterr().err
    order = Order.objects.get(workspace=workspace, order_id="A-1")
    assert order.items == [{"sku": "S1", "quantity": 2}]
    assert order.profile.lifecycle_stage == "customer"


def test_a_csv_uploaded_through_the_api_is_imported_and_reports_rows(
    marketer, workspace, interests, eager_tasks, django_capture_on_commit_callbacks
):
    # In-process here; the real worker runs imports in tests/test_worker.py.
    upload = SimpleUploadedFile("prospects.csv", PROSPECTS.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        r = marketer.post(
            reverse("import-job-list", kwargs={"workspace": "maison"}),
            {"kind": "profiles", "file": upload},
            format="multipart",
        )
    assert r.status_code == 202
    assert r.json()["status"] == "pending"  # the response was built before the (captured) commit
    body = marketer.get(reverse("import-job-detail", kwargs={"workspace": "maison", "pk": r.json()["id"]})).json()
    assert (body["status"], body["rows"], body["created"], body["rejected"]) == ("succeeded", 4, 2, 2)
    assert body["errors"][0] == {
        "row": 3,
        "field": "email",
        "message": "Enter a valid e-mail address.",
        "code": "invalid_email",
    }
    job = ImportJob.objects.get(pk=body["id"])
    assert job.created_by == marketer.user


def test_an_empty_upload_is_a_400(marketer, workspace):
    upload = SimpleUploadedFile("empty.csv", b"", content_type="text/csv")
    r = marketer.post(
        reverse("import-job-list", kwargs={"workspace": "maison"}),
        {"kind": "profiles", "file": upload},
        format="multipart",
    )
    assert r.status_code == 400
    assert "file" in r.json()
    assert not ImportJob.objects.exists()


def test_import_jobs_of_another_workspace_are_not_visible(outsider, marketer, workspace, eager_tasks):
    upload = SimpleUploadedFile("p.csv", b"external_id\nP1\n", content_type="text/csv")
    job_id = marketer.post(
        reverse("import-job-list", kwargs={"workspace": "maison"}),
        {"kind": "profiles", "file": upload},
        format="multipart",
    ).json()["id"]
    assert outsider.get(reverse("import-job-detail", kwargs={"workspace": "maison", "pk": job_id})).status_code == 404
    assert outsider.get(reverse("import-job-detail", kwargs={"workspace": "rival", "pk": job_id})).status_code == 404


def test_a_file_that_is_not_text_is_a_400_not_a_server_error(marketer, workspace):
    upload = SimpleUploadedFile("weird.csv", b"external_id\n\x81\x9d\n", content_type="text/csv")
    r = marketer.post(
        reverse("import-job-list", kwargs={"workspace": "maison"}),
        {"kind": "profiles", "file": upload},
        format="multipart",
    )
    assert r.status_code == 400
    assert r.json()["file"][0]["code"] == "encoding"


def test_an_import_that_crashes_is_marked_failed_not_left_running(workspace, monkeypatch):
    from customers import services

    job = ImportJob.objects.create(
        workspace=workspace, kind="profiles", filename="x.csv", content="external_id\nP1\n", content_sha256="0" * 64
    )

    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "csv_import", explode)  # stands in for any unforeseen bug
    services.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.failure.startswith("Unexpected error (RuntimeError)")
    assert job.finished_at is not None
