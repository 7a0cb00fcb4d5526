"""The bidder is a process of its own: its hot path imports no Django and no Cible app but the
state's key names, and bin/bidder starts it."""

import subprocess
import sys

from tests.conftest import ROOT


def test_the_bidder_imports_no_django_and_no_app_but_the_states_keys():
    code = (
        "import sys, bidder.app; "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        "{'django', 'rest_framework', 'celery', 'psycopg', 'core', 'accounts', 'customers', 'privacy', "
        "'segments', 'audiences', 'insights', 'campaigns', 'programmatic', 'reporting', 'optimisation', 'config'}}), "
        "sorted(m for m in sys.modules if m.startswith('programmatic')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['programmatic'] ['programmatic', 'programmatic.state']"
