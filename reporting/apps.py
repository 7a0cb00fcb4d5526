from django.apps import AppConfig


class ReportingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reporting"

    def ready(self) -> None:
        from core.leases import LOST, job_recoverer, lease_recoverer_register
        from customers.followups import event_handler_register
        from customers.signals import profile_merging
        from privacy import registry
        from reporting import receivers
        from reporting.models import ReportJob
        from reporting.services import clicks_record
        from reporting.tasks import report_job_task

        event_handler_register(name="reporting.clicks", handler=clicks_record)  # clicks come in as events
        # A report file in the making holds a lease; the roll-up needs none: it runs in one transaction
        # under the workspace's row lock, which PostgreSQL releases the moment a killed worker's
        # connection drops, and its next tick (beat, every 15 minutes) does it again.
        lease_recoverer_register(
            name="report files",
            recover=job_recoverer(
                model=ReportJob,
                requeue={"status": ReportJob.Status.QUEUED},
                give_up={"status": ReportJob.Status.FAILED, "error": LOST},
                enqueue=lambda pk: report_job_task.delay(job_id=pk),
            ),
        )
        profile_merging.connect(receivers.profile_merging, dispatch_uid="reporting.merge")
        registry.register(registry.access_sections, receivers.access_section)
