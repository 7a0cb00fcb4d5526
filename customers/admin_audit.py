from django.contrib import admin

from customers.signals import profile_viewed


class AuditedViewsAdmin(admin.ModelAdmin):
    """Announces each admin view of one person's data (who, when, which profile); the privacy
    app writes it to the audit log."""

    audited_profile_path = "pk"  # how to reach the profile id from the object

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, object_id)
            if obj is not None:
                profile_id = obj.pk if self.audited_profile_path == "pk" else getattr(obj, self.audited_profile_path)
                profile_viewed.send(
                    sender=type(obj),
                    workspace_id=obj.workspace_id,
                    actor=request.user,
                    object_type=obj._meta.model_name,
                    object_id=obj.pk,
                    profile_id=profile_id,
                    via="admin",
                )
        return response
