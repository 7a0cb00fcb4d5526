"""Cible settings, read from the environment.

With no configuration at all Cible runs embedded: SQLite in the project folder
and Celery tasks executed in-process. Setting DATABASE_URL (PostgreSQL through
psycopg 3) and REDIS_URL (Celery broker and cache) switches to production mode,
where DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS become required.
"""

from datetime import timedelta
from pathlib import Path

import environ

from config.queues import task_queues, task_routes

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATABASE_URL = env("DATABASE_URL", default="")
REDIS_URL = env("REDIS_URL", default="")
# The Redis the bidder reads its state from (programmatic publishes it there): REDIS_URL unless set
# apart; empty in the embedded default, where nothing is published (the bidder needs Redis).
BIDDER_REDIS_URL = env("BIDDER_REDIS_URL", default=REDIS_URL)
EMBEDDED = not DATABASE_URL and not REDIS_URL

# A required setting that is missing fails at start-up, not at first use.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="embedded-dev-only-not-secret") if EMBEDDED else env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=EMBEDDED)
ALLOWED_HOSTS = (
    env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
    if EMBEDDED
    else env.list("DJANGO_ALLOWED_HOSTS")
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.admin.CibleAdminConfig",  # django.contrib.admin with Cible's site (config.admin)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served by Cible itself, no CDN
    "django_celery_beat",
    "axes",  # locks out the admin login after repeated failures
    # Cible's apps, lowest layer first (core.LAYERS; imports run downward only).
    "core",
    "accounts",
    "customers",
    "privacy",
    "segments",
    "audiences",
    "insights",
    "campaigns",
    "programmatic",  # line items, creatives, the bidder's state and notices (the bidder itself: bidder/)
    "reporting",
    "optimisation",
    "demo",  # the demo data generator (bin/demo): not a domain app
]

MIDDLEWARE = [
    "config.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.admin_time.AdminTimeZoneMiddleware",  # admin pages in the workspace's time zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.lockout.AddressLockoutMiddleware",  # answers a sign-in from a locked address
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out login
]

# --- Login lockout (django-axes) -------------------------------------------------
# After AXES_FAILURE_LIMIT failed logins for one username from one address, that pair is locked
# out for the cool-off time (the admin's login form and the token endpoint alike); a success
# resets the count. Locking by username alone would let anyone lock an administrator out.
# One address is also locked after CIBLE_LOGIN_ADDRESS_FAILURE_LIMIT failures across any usernames
# (password spraying), by accounts.lockout. Attempts while locked are not counted: they do not
# extend the lock. The answer says when to try again.
AUTHENTICATION_BACKENDS = [
    "accounts.lockout.AddressLockoutBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("CIBLE_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("CIBLE_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "core.addresses.client_address"
CIBLE_LOGIN_ADDRESS_FAILURE_LIMIT = env.int("CIBLE_LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
# How many proxies in front of Cible append to X-Forwarded-For (a load balancer: 1). None by
# default: the header is then ignored, since any client can write it (core.addresses).
CIBLE_TRUSTED_PROXIES = env.int("CIBLE_TRUSTED_PROXIES", default=0)
AXES_VERBOSE = False  # its log lines would name the username tried

ROOT_URLCONF = "config.urls"
# The covering index of orders (for segment aggregates) is a PostgreSQL optimisation; SQLite builds
# it without its INCLUDE columns, which is what W040 says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A server that accepts connections and never answers fails a request in seconds, not minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", default=str(BASE_DIR / "cible.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes the write lock when a transaction starts, so two
                # writers serialise instead of failing on lock upgrade; WAL lets
                # readers go on while one writes.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------
if REDIS_URL:
    # Django's Redis cache, with one client per connection pool rather than one per operation (core.cache).
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
# Cible's own translations (Django and the libraries bring theirs).
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media"))
MEDIA_URL = "media/"

# Bulk ingestion accepts 10,000 items a request; a rich event is ~1 KB of JSON.
# A larger body is refused with a 413 (core.api.exception_handler).
INGEST_MAX_ITEMS = 10_000
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=32 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# First wait between two attempts of a webhook hand-off; it doubles after each failure (max 60 s).
CIBLE_WEBHOOK_BACKOFF_SECONDS = env.float("CIBLE_WEBHOOK_BACKOFF_SECONDS", default=1.0)
# After a bulk load, a worker refreshes the planner statistics of the tables it changed (core.statistics).
CIBLE_STATISTICS_REFRESH = env.bool("CIBLE_STATISTICS_REFRESH", default=True)
# Bounded work: a preview (API and admin live count) or a macro-segment suggestion, answered while the
# client waits, is stopped by the database past this many seconds and answers a 400 saying what to
# narrow (gunicorn's own timeout is 30 s by default).
CIBLE_PREVIEW_TIMEOUT = env.float("CIBLE_PREVIEW_TIMEOUT", default=20.0)
# An audience computation or an index table in a worker: each statement past this many seconds is
# stopped and the run recorded as failed with that reason (not retried). Below the tasks' 12-minute
# time limit, so the database stops a runaway query before Celery kills the worker.
CIBLE_TASK_STATEMENT_TIMEOUT = env.float("CIBLE_TASK_STATEMENT_TIMEOUT", default=8 * 60.0)
# A CSV import is kept in the database so that any worker can read it.
IMPORT_MAX_BYTES = env.int("CIBLE_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)

# --- Security (check --deploy passes in production mode) ------------------
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGIN_URL = "admin:login"

# --- REST API ---------------------------------------------------------------
# The lean read path of the hot resources (core.lean): the same bytes as DRF's, faster. Off, DRF answers.
CIBLE_LEAN_READS = env.bool("CIBLE_LEAN_READS", default=True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "core.lean.JSONRenderer",  # DRF's, which also sends the lean read path's bytes as they are
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "core.api.FilterBackend",  # django-filter, skipped when no filter is asked for
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        # DRF's scopes and rates, counted per fixed window (core.throttles)
        "core.throttles.AnonThrottle",
        "core.throttles.UserThrottle",
        "core.throttles.ScopedThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("CIBLE_THROTTLE_ANON", default="60/minute"),
        "user": env("CIBLE_THROTTLE_USER", default="1200/minute"),
        "ingest": env("CIBLE_THROTTLE_INGEST", default="600/minute"),
        # Token requests (password attempts): per address, and per username from any address.
        "login": env("CIBLE_THROTTLE_LOGIN", default="20/minute"),
        "login_username": env("CIBLE_THROTTLE_LOGIN_USERNAME", default="5/minute"),
    },
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Forwarded addresses trusted only from the configured proxies (CIBLE_TRUSTED_PROXIES, core.addresses).
    "NUM_PROXIES": CIBLE_TRUSTED_PROXIES,
    "DEFAULT_PARSER_CLASSES": [
        # JSON within limits: depth, Unicode, 64-bit integers (core.payloads). JSON only: form encodings
        # cannot say null, a boolean or an empty list, and "" would be read as a value. File uploads
        # (imports, static lists) declare the multipart parser themselves.
        "core.parsers.SafeJSONParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.schema.CibleAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cible API",
    "DESCRIPTION": (
        "Campaign-management backend: workspaces, the customer 360 view, bulk ingestion and consent. "
        "Authenticate with `Authorization: Bearer <token>` (POST /api/auth/token/ to get one). "
        "Every resource lives under /api/workspaces/{workspace}/ and is scoped to the caller's membership. "
        "Errors are `{field: [{message, code}]}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Operations tagged (and named) by resource: /api/workspaces/{workspace}/segments/ is "segments",
    # so that a generated client has a module per resource, not one module of every operation.
    "SCHEMA_PATH_PREFIX": r"/api(/workspaces/\{workspace\})?",
    # Every operation's error answers (400, 401, 403, 404, 409, 413, 415, 429), after the default hooks.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.error_responses",
        "core.schema.blank_choices_inline",
        "core.schema.json_value_component",
        "segments.schema.rule_language_hook",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "customers.models.Channel",
        "RoleEnum": "accounts.models.Role",
        "CurrencyEnum": "accounts.models.Currency",
        "LifecycleStageEnum": "customers.models.LifecycleStage",
        "ConsentStatusEnum": "privacy.models.ConsentStatus",
        "OrderStatusEnum": "customers.models.Order.Status",
        "ImportJobStatusEnum": "customers.models.ImportJob.Status",
        "ImportJobKindEnum": "customers.models.ImportJob.Kind",
        "EventTypeEnum": "customers.models.EventType",
        "IdentityTypeEnum": "customers.models.IdentityType",
        "AttributeTypeEnum": "customers.models.AttributeType",
        "SegmentKindEnum": "segments.models.Segment.Kind",
        "InsightJobKindEnum": "insights.models.InsightJob.Kind",
        "PredictiveModelKindEnum": "insights.models.PredictiveModel.Kind",
        "BasisEnum": "reporting.models.ConversionBasis",
        "AudienceStatusEnum": "audiences.models.Audience.Status",
        "AudienceRunStatusEnum": "audiences.models.AudienceRun.Status",
        "JobStatusEnum": "segments.models.JobStatus",
        "ExportFormatEnum": "audiences.models.AudienceExport.Format",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "CampaignChannelEnum": "campaigns.models.CampaignChannel",
        "ConsentPurposeEnum": "privacy.models.ConsentPurpose",
        "AuditActionEnum": "privacy.models.AuditEntry.Action",
        "RuleActionEnum": "optimisation.models.Rule.Action",
        "ManualMemberActionEnum": "segments.models.ManualMember.Action",
        "PrivacyRequestKindEnum": "privacy.models.DataSubjectRequest.Kind",
        "PrivacyRequestStatusEnum": "privacy.models.DataSubjectRequest.Status",
        "SuppressionKindEnum": "privacy.models.Suppression.Kind",
        "RemovalNoticeStatusEnum": "privacy.models.RemovalNotice.Status",
    },
}

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
# Embedded mode: no broker, tasks run in-process (and exceptions surface).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# A task is acknowledged once it has finished, and given back to the queue if
# its worker dies, so a killed worker never loses a task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Default limits; long tasks declare their own, never above TASK_MAX_SECONDS.
CELERY_TASK_SOFT_TIME_LIMIT = 5 * 60
CELERY_TASK_TIME_LIMIT = 6 * 60
TASK_MAX_SECONDS = 60 * 60
# Redis re-delivers an unacknowledged task after the visibility timeout: it must
# exceed the longest task (TASK_MAX_SECONDS) and any countdown or ETA we use.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * TASK_MAX_SECONDS}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Queues (config/queues.py): `cible` for short work, `cible-long` for long jobs, `cible-ticks` for beat's ticks.
CELERY_TASK_DEFAULT_QUEUE = env("CIBLE_QUEUE", default="cible")
CELERY_TASK_ROUTES = task_routes(CELERY_TASK_DEFAULT_QUEUE)
# /health/ fails when a queue's oldest message has waited longer than this (core.workers).
CIBLE_QUEUE_MAX_WAIT_SECONDS = env.int("CIBLE_QUEUE_MAX_WAIT_SECONDS", default=15 * 60)
# Declared, so that a worker started without -Q consumes all three (config.queues).
CELERY_TASK_QUEUES = task_queues(CELERY_TASK_DEFAULT_QUEUE)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Observability: structured logs, error reporting -------------------------
# structlog renders every line, the standard library's included:
# JSON lines in production mode (for a log pipeline), readable lines on the embedded default. Each
# carries request_id and workspace in a request, task_id and task_name in a Celery task.
from config.logging import logging_settings  # noqa: E402

LOG_JSON = env.bool("CIBLE_LOG_JSON", default=bool(DATABASE_URL))
LOGGING = logging_settings(json_lines=LOG_JSON, level=env("DJANGO_LOG_LEVEL", default="INFO"))

# Probes call /health/ over plain HTTP from inside the network: they get its answer, not a redirect.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^health/live/$"]

# Errors go to Sentry only when SENTRY_DSN is set, without personal data (no user, IP, cookies or body).
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        environment=env("SENTRY_ENVIRONMENT", default=None),
    )
