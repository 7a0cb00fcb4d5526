from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers (360 view)"

    def ready(self) -> None:
        from core.leases import LOST, job_recoverer, lease_recoverer_register
        from customers.models import ImportJob
        from customers.tasks import import_job_run_task

        lease_recoverer_register(
            name="imports",
            recover=job_recoverer(
                model=ImportJob,
                requeue={"status": ImportJob.Status.PENDING},
                give_up={"status": ImportJob.Status.FAILED, "failure": LOST},
                enqueue=lambda pk: import_job_run_task.delay(job_id=pk),
            ),
        )
