from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from core.leases import LOST, job_recoverer, lease_recoverer_register
        from customers.signals import profile_merging
        from privacy import registry
        from segments import receivers
        from segments.models import SegmentAnalysis
        from segments.tasks import segment_analysis_run_task

        lease_recoverer_register(
            name="segment analyses",
            recover=job_recoverer(
                model=SegmentAnalysis,
                requeue={"status": SegmentAnalysis.Status.QUEUED},
                give_up={"status": SegmentAnalysis.Status.FAILED, "error": LOST},
                enqueue=lambda pk: segment_analysis_run_task.delay(
                    segment_id=SegmentAnalysis.objects.values_list("segment_id", flat=True).get(pk=pk)
                ),
            ),
        )
        profile_merging.connect(receivers.profile_merging, dispatch_uid="segments.merge")
        registry.profiles_erasing.connect(receivers.profiles_erasing, dispatch_uid="segments.erase")
        registry.register(registry.access_sections, receivers.access_section)
