from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.access_cache import token_user


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`, the header every HTTP client knows. The token and its user
    come from the access cache (accounts.access_cache), revoked at once when either changes."""

    keyword = "Bearer"

    def authenticate_credentials(self, key):
        found = token_user(key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token
