"""The consent history moves from customers to privacy: the same table, now owned here."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        ("customers", "0003_order_updated_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ConsentRecord",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("purpose", models.CharField(choices=[("direct_marketing", "Direct marketing"), ("personalisation", "Personalisation"), ("profiling", "Profiling"), ("ad_targeting", "Ad targeting"), ("data_sharing", "Data sharing with partners"), ("analytics", "Analytics")], max_length=24)),
                        ("channel", models.CharField(choices=[("web", "Web site"), ("app", "Mobile app"), ("email", "E-mail"), ("sms", "SMS"), ("push", "Push notification"), ("phone", "Phone"), ("post", "Direct mail"), ("store", "Store"), ("social", "Social"), ("display", "Display"), ("search", "Search"), ("call_center", "Customer service")], max_length=16)),
                        ("status", models.CharField(choices=[("granted", "Granted"), ("denied", "Denied"), ("withdrawn", "Withdrawn")], max_length=10)),
                        ("legal_basis", models.CharField(choices=[("consent", "Consent"), ("contract", "Contract"), ("legal_obligation", "Legal obligation"), ("vital_interests", "Vital interests"), ("public_task", "Public task"), ("legitimate_interests", "Legitimate interests")], default="consent", max_length=24)),
                        ("recorded_at", models.DateTimeField(help_text="When the person gave, refused or withdrew it.")),
                        ("source", models.CharField(help_text="The system or process that collected it, e.g. web-checkout.", max_length=100)),
                        ("form", models.CharField(blank=True, help_text="The form or page where it was collected.", max_length=200)),
                        ("notice_version", models.CharField(blank=True, help_text="Version of the privacy notice shown.", max_length=40)),
                        ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                        ("user_agent", models.CharField(blank=True, max_length=500)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("workspace", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace")),
                        ("profile", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="consents", to="customers.profile")),
                    ],
                    options={
                        "ordering": ["-recorded_at", "-id"],
                        "db_table": "customers_consentrecord",
                        "indexes": [
                            models.Index(fields=["workspace", "purpose", "channel", "profile", "recorded_at"], name="customers_consent_ws_purpose"),
                            models.Index(fields=["profile", "purpose", "channel", "recorded_at"], name="customers_consent_profile"),
                        ],
                    },
                ),
            ],
        ),
    ]
