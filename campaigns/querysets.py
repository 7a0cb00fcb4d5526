from django.db import models


class CampaignQuerySet(models.QuerySet):
    def for_workspace(self, workspace) -> "CampaignQuerySet":
        """Campaigns of one workspace."""
        return self.filter(workspace=workspace)

    def active(self) -> "CampaignQuerySet":
        """Campaigns delivering now: the only ones that send, trigger and accept new spend."""
        return self.filter(status="active")

    def running(self) -> "CampaignQuerySet":
        """Campaigns under way: active or paused (rules watch them, reports refresh them)."""
        return self.filter(status__in=("active", "paused"))


class TargetQuerySet(models.QuerySet):
    def of_active_campaigns(self) -> "TargetQuerySet":
        """Targets whose campaign is active."""
        return self.filter(campaign__status="active")

    def triggered(self) -> "TargetQuerySet":
        """Targets started by an event (cart abandoned...) rather than by an audience."""
        return self.exclude(trigger_event="")
