"""Identifier normalisation and hashing, shared by ingestion, identities, exports, deliveries and the
suppression list: one normal form, so that one person always gives the same hash."""

import hashlib
import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext

from core.errors import CommonErrorCode
from customers.errors import CustomerErrorCode

_SHA256 = re.compile(r"[0-9a-f]{64}")


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    try:
        if len(email) > 254:  # RFC 5321 path limit; Django's validator allows 320
            raise ValidationError(gettext("too long"))
        validate_email(email)
    except ValidationError:
        raise ValidationError(gettext("Enter a valid e-mail address."), code=CustomerErrorCode.INVALID_EMAIL) from None
    return email


def normalise_phone(value: str, *, default_region: str = "FR") -> str:
    """E.164 (+33612345678); numbers without a country code are read in the workspace's home market."""
    try:
        number = phonenumbers.parse(value.strip(), default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ValidationError(gettext("Enter a valid phone number."), code=CustomerErrorCode.INVALID_PHONE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_identity(type_: str, value: str, *, default_region: str = "FR") -> str:
    if type_ == "email":
        return normalise_email(value)
    if type_ == "phone":
        return normalise_phone(value, default_region=default_region)
    cleaned = value.strip()
    if not cleaned:
        raise ValidationError(gettext("This field may not be blank."), code=CommonErrorCode.BLANK)
    if type_ == "email_sha256":
        cleaned = cleaned.lower()
        if not _SHA256.fullmatch(cleaned):
            raise ValidationError(
                gettext("Expected the SHA-256 of a normalised e-mail: 64 hexadecimal characters."),
                code=CommonErrorCode.INVALID,
            )
    return cleaned


def sha256_identifier(value: str) -> str:
    """SHA-256 of a normalised identifier, hex: what ad platforms and the suppression list compare."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalised_identifiers(email: str, phone: str, *, default_region: str) -> tuple[str, str]:
    """E-mail trimmed and lower-cased, phone in E.164; an identifier that does not parse is left out."""
    try:
        email = normalise_email(email) if email else ""
    except ValidationError:
        email = ""
    try:
        phone = normalise_phone(phone, default_region=default_region) if phone else ""
    except ValidationError:
        phone = ""
    return email, phone
