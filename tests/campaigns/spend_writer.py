"""A separate process recording spend on one campaign from several threads (run by the cap tests).

    python -m tests.campaigns.spend_writer <campaign id> <key prefix> <threads> <entries per thread> <amount>

Prints one JSON line: how many entries were accepted, replayed and refused.
"""

import json
import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")

import django

django.setup()

from django.core.exceptions import ValidationError  # noqa: E402
from django.db import connection  # noqa: E402

from campaigns.models import Campaign  # noqa: E402
from campaigns.services import spend_record  # noqa: E402


def main() -> None:
    campaign_id, prefix, threads, per_thread, amount = sys.argv[1:6]
    campaign = Campaign.objects.get(pk=int(campaign_id))
    counts = {"accepted": 0, "replayed": 0, "refused": 0}
    lock = threading.Lock()
    start = threading.Barrier(int(threads))

    def write(thread: int) -> None:
        start.wait()
        try:
            for i in range(int(per_thread)):
                # Each key is sent twice, as a retried notice would be.
                key = f"{prefix}-{thread}-{i}"
                for _ in range(2):
                    try:
                        created = spend_record(campaign=campaign, amount=amount, idempotency_key=key).created
                        outcome = "accepted" if created else "replayed"
                    except ValidationError:
                        outcome = "refused"
                    with lock:
                        counts[outcome] += 1
        finally:
            connection.close()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
