"""Password guessing on the token endpoint is throttled by username and by address, whether or
not the request carries a valid token."""

import uuid

from django.core.cache import cache
from django.urls import reverse

from accounts.api.throttles import LoginAddressThrottle
from accounts.models import Role
from tests.factories import make_user, token_for


def test_attempts_at_one_username_are_throttled_even_with_a_valid_token_in_the_header(workspace, client):
    cache.delete(LoginAddressThrottle.cache_format % {"scope": "login", "ident": "127.0.0.1"})
    intruder = make_user(workspace=workspace, role=Role.VIEWER)
    victim = make_user(workspace=workspace, role=Role.ADMIN, username=f"victim-{uuid.uuid4().hex[:8]}")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_for(intruder)}"}
    answers = [
        client.post(reverse("api-token"), {"username": victim.username, "password": f"guess-{n}"}, **headers)
        for n in range(6)
    ]
    assert [r.status_code for r in answers] == [400] * 5 + [429]
    assert answers[-1].json()["code"] == "throttled"
    # The same address may still log in as someone else, with the right password.
    intruder.set_password("secret-pass-123")
    intruder.save()
    ok = client.post(reverse("api-token"), {"username": intruder.username, "password": "secret-pass-123"})
    assert ok.status_code == 200 and ok.json()["token"] == token_for(intruder)


def test_attempts_from_one_address_are_throttled_across_usernames(workspace, client):
    cache.delete(LoginAddressThrottle.cache_format % {"scope": "login", "ident": "10.9.8.7"})
    codes = [
        client.post(
            reverse("api-token"),
            {"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "x"},
            REMOTE_ADDR="10.9.8.7",
        ).status_code
        for _ in range(21)
    ]
    assert codes[:20] == [400] * 20 and codes[20] == 429


def test_the_admin_login_is_locked_after_repeated_failures_for_that_username_and_address(workspace, client):
    admin_user = make_user(workspace=workspace, role=Role.ADMIN)
    admin_user.is_staff = True
    admin_user.set_password("right-password-1")
    admin_user.save()
    login = reverse("admin:login")
    codes = [
        client.post(login, {"username": admin_user.username, "password": f"wrong-{n}"}).status_code for n in range(5)
    ]
    assert codes == [200, 200, 200, 200, 429]  # the form again with its error, then locked at the fifth
    locked = client.post(login, {"username": admin_user.username, "password": "right-password-1"})
    assert locked.status_code == 429  # locked out, even with the right password
    assert "_auth_user_id" not in client.session
    # The same person from another address is not locked out by an attacker's guesses.
    elsewhere = client.post(
        login, {"username": admin_user.username, "password": "right-password-1"}, REMOTE_ADDR="10.1.2.3"
    )
    assert elsewhere.status_code == 302


def test_a_body_that_is_not_an_object_is_a_400_not_a_server_error(client):
    r = client.post(reverse("api-token"), "[null, null]", content_type="application/json")
    assert r.status_code == 400


def test_a_rotated_forwarded_header_does_not_give_a_new_address(workspace, client):
    cache.delete(LoginAddressThrottle.cache_format % {"scope": "login", "ident": "10.9.8.6"})
    codes = [
        client.post(
            reverse("api-token"),
            {"username": f"nobody-{n}", "password": "x"},
            REMOTE_ADDR="10.9.8.6",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(25)
    ]
    assert codes[:20] == [400] * 20 and set(codes[20:]) == {429}


def test_with_one_trusted_proxy_the_address_it_saw_is_used(workspace, client, settings):
    from core.addresses import client_address

    settings.CIBLE_TRUSTED_PROXIES = 1

    class Request:
        META = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"}

    assert client_address(Request) == "203.0.113.7"  # the client may write 6.6.6.6, the proxy wrote the rest
    settings.CIBLE_TRUSTED_PROXIES = 0
    assert client_address(Request) == "10.0.0.1"


def _staff(workspace, username: str):
    user = make_user(workspace=workspace, role=Role.ADMIN, username=username)
    user.is_staff = True
    user.set_password("right-password-1")
    user.save()
    return user


def test_password_spraying_from_one_address_is_locked_across_usernames(workspace, client, settings):
    settings.CIBLE_LOGIN_ADDRESS_FAILURE_LIMIT = 20
    address = f"10.77.{uuid.uuid4().int % 250}.9"
    users = [_staff(workspace, f"spray-{n}-{uuid.uuid4().hex[:6]}") for n in range(6)]
    login = reverse("admin:login")
    codes = [
        client.post(login, {"username": user.username, "password": f"guess-{n}"}, REMOTE_ADDR=address).status_code
        for user in users
        for n in range(4)
    ]
    assert codes[:20] == [200] * 20  # four guesses at each account: under the pair limit of five
    assert set(codes[20:]) == {429}
    locked = client.post(login, {"username": users[0].username, "password": "right-password-1"}, REMOTE_ADDR=address)
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.content.decode()
    assert int(locked["Retry-After"]) > 800
    assert "_auth_user_id" not in client.session
    # another address is not locked
    ok = client.post(login, {"username": users[0].username, "password": "right-password-1"}, REMOTE_ADDR="10.1.1.1")
    assert ok.status_code == 302


def test_a_locked_pair_says_when_to_try_again_and_attempts_do_not_extend_the_lock(workspace, client):
    from axes.models import AccessAttempt

    user = _staff(workspace, f"locked-{uuid.uuid4().hex[:8]}")
    login = reverse("admin:login")
    address = "10.66.0.1"
    for n in range(5):
        client.post(login, {"username": user.username, "password": f"wrong-{n}"}, REMOTE_ADDR=address)
    attempt = AccessAttempt.objects.get(username=user.username)
    first_lock = attempt.attempt_time
    for n in range(5):
        r = client.post(login, {"username": user.username, "password": f"again-{n}"}, REMOTE_ADDR=address)
        assert r.status_code == 429
        assert "Sign-in is locked after too many failed attempts: try again in" in r.content.decode()
        assert "Please enter the correct username" not in r.content.decode()
    attempt.refresh_from_db()
    assert attempt.attempt_time == first_lock and attempt.failures_since_start == 5
