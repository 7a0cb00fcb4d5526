import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.factories import make_user

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct-horse-battery-staple"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def member(workspace, role: str):
    user = make_user(workspace=workspace, role=role)
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def log_in(page: Page, user) -> None:
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator("#user-tools")).to_contain_text(user.username.upper(), ignore_case=True)
