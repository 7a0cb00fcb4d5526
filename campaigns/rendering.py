"""Personalisation tokens in a target's subject and body: {{first_name}}, {{event.product}}, ...

Rendering is plain substitution (no template language, so a marketer's text can never run
code); a missing value renders empty.
"""

import re
from collections.abc import Mapping
from typing import Any

TOKEN = re.compile(r"\{\{\s*([a-z_]+(?:\.[A-Za-z0-9_\-]+)?)\s*\}\}")
PROFILE_TOKENS = {"first_name", "last_name", "city", "last_product_viewed", "discount_code", "discount_percent"}


def unknown_tokens(template: str) -> set[str]:
    return {
        name for name in TOKEN.findall(template or "") if name not in PROFILE_TOKENS and not name.startswith("event.")
    }


def render(template: str, values: Mapping[str, Any], event_properties: Mapping[str, Any] | None = None) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("event."):
            found = (event_properties or {}).get(name[len("event.") :])
        else:
            found = values.get(name)
        return "" if found is None else str(found)

    return TOKEN.sub(value, template or "")
