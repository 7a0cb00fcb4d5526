"""A Python client generated from the OpenAPI schema (openapi-python-client) runs a marketer's
workflow against a live server: every 2xx body parses into its model, and the errors a client
meets (a validation error, an illegal transition, a protected row, a duplicate) parse into
FieldErrors it can read."""

import importlib
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import Role
from tests.factories import make_profile, make_user, token_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The client package, generated from the schema the server serves; imported as `cible_client`."""
    where = tmp_path_factory.mktemp("client")
    schema = where / "schema.json"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--format", "openapi-json", "--file", str(schema)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    tool = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent)) or "openapi-python-client"
    result = subprocess.run(
        [tool, "generate", "--path", str(schema), "--output-path", str(where / "cible_client"), "--meta", "none"],
        cwd=where,
        env={**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("cible_client")
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.startswith("cible_client")]:
            del sys.modules[name]


def _errors(parsed) -> dict[str, list[tuple[str, str]]]:
    """A FieldErrors as {field: [(code, message)]}, read through the generated models."""
    out = {}
    for field, problems in parsed.additional_properties.items():
        out[field] = [(problem.code, problem.message) for problem in problems if hasattr(problem, "code")]
    return out


def test_a_generated_client_runs_a_marketers_workflow_errors_included(generated, live_server, workspace):
    from cible_client import AuthenticatedClient
    from cible_client.api.campaigns import campaigns_create, campaigns_pause_create, campaigns_retrieve
    from cible_client.api.reports import reports_csv_retrieve, reports_refresh_create, reports_retrieve
    from cible_client.api.segments import segments_create, segments_destroy, segments_list, segments_preview_create
    from cible_client.models import (
        CampaignInputRequest,
        CampaignOutput,
        DefinitionInputRequest,
        FieldErrors,
        QueuedOutput,
        ReasonInputRequest,
        ReportOutput,
        ReportsCsvRetrieveGroupByItem,
        ReportsRetrieveGroupByItem,
        RollupInputRequest,
        SegmentInputRequest,
        SegmentWithAudienceOutput,
    )

    for n in range(3):
        make_profile(workspace=workspace, external_id=f"L{n}", city="Lyon")
    user = make_user(workspace=workspace, role=Role.ADMIN)
    client = AuthenticatedClient(base_url=live_server.url, token=token_for(user), raise_on_unexpected_status=True)
    ws = workspace.slug
    lyon = {"field": "city", "op": "eq", "value": "Lyon"}

    # A preview, then a segment: the bodies parse into their models.
    preview = segments_preview_create.sync_detailed(
        ws, client=client, body=DefinitionInputRequest.from_dict({"definition": lyon})
    )
    assert preview.status_code == 200 and preview.parsed.count == 3
    created = segments_create.sync_detailed(
        ws, client=client, body=SegmentInputRequest.from_dict({"name": "Lyon", "definition": lyon})
    )
    assert created.status_code == 201 and isinstance(created.parsed, SegmentWithAudienceOutput)
    segment_id = created.parsed.id
    listed = segments_list.sync_detailed(ws, client=client)
    assert listed.status_code == 200 and [s.name for s in listed.parsed.results] == ["Lyon"]

    # A rule the validator refuses: a 400 the client reads field by field.
    bad = segments_create.sync_detailed(
        ws,
        client=client,
        body=SegmentInputRequest.from_dict(
            {"name": "Bad", "definition": {"field": "shoe_size", "op": "eq", "value": 1}}
        ),
    )
    assert bad.status_code == 400 and isinstance(bad.parsed, FieldErrors)
    [(code, message)] = _errors(bad.parsed)["definition"]
    assert code == "invalid_rule" and "shoe_size" in message

    # The same name again: a 409 naming the field.
    again = segments_create.sync_detailed(
        ws, client=client, body=SegmentInputRequest.from_dict({"name": "Lyon", "definition": lyon})
    )
    assert again.status_code == 409 and _errors(again.parsed)["name"][0][0] == "unique"

    # A campaign on it; pausing a draft is an illegal transition.
    start = timezone.now() + timedelta(days=1)
    campaign = campaigns_create.sync_detailed(
        ws,
        client=client,
        body=CampaignInputRequest.from_dict(
            {
                "name": "Autumn",
                "channels": ["email"],
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(days=10)).isoformat(),
                "targets": [
                    {
                        "segment": segment_id,
                        "restriction": {"not": {"field": "postal_code", "op": "eq", "value": "69009"}},
                    }
                ],
            }
        ),
    )
    assert campaign.status_code == 201, campaign.content
    assert isinstance(campaign.parsed, CampaignOutput)
    assert [str(channel) for channel in campaign.parsed.channels] == ["email"]
    campaign_id = campaign.parsed.id
    paused = campaigns_pause_create.sync_detailed(
        ws, campaign_id, client=client, body=ReasonInputRequest.from_dict({"reason": "too early"})
    )
    assert paused.status_code == 400
    assert _errors(paused.parsed)["status"][0][0] == "illegal_transition"
    assert campaigns_retrieve.sync_detailed(ws, campaign_id, client=client).parsed.status == "draft"

    # The segment is used by the campaign: deleting it is refused (409 protected).
    protected = segments_destroy.sync_detailed(ws, segment_id, client=client)
    assert protected.status_code == 409
    assert any(code == "protected" for problems in _errors(protected.parsed).values() for code, _ in problems)

    # Reports: JSON, CSV as its own operation, and a roll-up queued (202 with its body).
    report = reports_retrieve.sync_detailed(ws, client=client, group_by=[ReportsRetrieveGroupByItem("channel")])
    assert report.status_code == 200 and isinstance(report.parsed, ReportOutput)
    csv_file = reports_csv_retrieve.sync_detailed(
        ws, client=client, group_by=[ReportsCsvRetrieveGroupByItem("channel")]
    )
    assert csv_file.status_code == 200 and csv_file.content.decode().startswith("channel,")
    queued = reports_refresh_create.sync_detailed(ws, client=client, body=RollupInputRequest.from_dict({}))
    assert queued.status_code == 202 and isinstance(queued.parsed, QueuedOutput) and queued.parsed.queued
