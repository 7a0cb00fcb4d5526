from django.contrib import admin

from privacy.audit import Action, audit_record


class AuditedViewsAdmin(admin.ModelAdmin):
    """Logs each admin view of one person's data (who, when, which profile) in the audit log."""

    audited_profile_path = "pk"  # how to reach the profile id from the object

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, object_id)
            if obj is not None:
                profile_id = obj.pk if self.audited_profile_path == "pk" else getattr(obj, self.audited_profile_path)
                audit_record(
                    workspace_id=obj.workspace_id,
                    actor=request.user,
                    action=Action.PROFILE_VIEWED,
                    object_type=obj._meta.model_name,
                    object_id=obj.pk,
                    profile_id=profile_id,
                    detail={"via": "admin"},
                )
        return response
