from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and workspaces"

    def ready(self) -> None:
        from accounts import access_cache, lockout  # noqa: F401  # lockout counts failed sign-ins (a receiver)

        access_cache.connect()  # a change to a user, token, membership or workspace revokes what is cached
