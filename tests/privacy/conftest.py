import pytest

from accounts.models import Role


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Files (exports, deliveries, access requests) go to a directory of this test only."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def officer(client_for):
    return client_for(Role.PRIVACY_OFFICER)
