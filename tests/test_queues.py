"""Long jobs run on their own queue, so a long hand-off never delays a short periodic tick."""

import pytest

from config.celery import app
from config.queues import LONG_TASKS, TICK_TASKS, queue_names, task_routes


def test_every_routed_task_exists_and_each_has_one_queue():
    app.loader.import_default_modules()  # every app's tasks module, as a worker loads them
    registered = set(app.tasks)
    assert set(LONG_TASKS) <= registered
    assert set(TICK_TASKS) <= registered
    assert not set(LONG_TASKS) & set(TICK_TASKS)


def test_hand_offs_exports_and_analyses_go_to_the_long_queue_and_ticks_to_theirs(settings):
    names = queue_names(settings.CELERY_TASK_DEFAULT_QUEUE)
    routes = task_routes(settings.CELERY_TASK_DEFAULT_QUEUE)
    router = app.amqp.router
    for task in ("campaigns.tasks.campaign_handoff_task", "audiences.tasks.audience_export_run_task"):
        assert routes[task]["queue"] == names["long"]
        assert router.route({}, task)["queue"].name == names["long"]
    assert router.route({}, "campaigns.tasks.campaigns_tick_task")["queue"].name == names["ticks"]
    # Short work stays on the default queue.
    assert router.route({}, "audiences.tasks.audience_compute_task")["queue"].name == names["default"]


@pytest.mark.django_db
def test_every_periodic_tick_that_beat_sends_is_on_the_ticks_queue():
    from django_celery_beat.models import PeriodicTask

    scheduled = set(PeriodicTask.objects.values_list("task", flat=True)) - {"celery.backend_cleanup"}
    assert scheduled <= set(TICK_TASKS)
