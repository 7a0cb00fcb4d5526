"""Identifier normalisation, shared by ingestion, identities and (later) exports."""

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from customers.errors import CustomerErrorCode


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    try:
        if len(email) > 254:  # RFC 5321 path limit; Django's validator allows 320
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise ValidationError("Enter a valid e-mail address.", code=CustomerErrorCode.INVALID_EMAIL) from None
    return email


def normalise_phone(value: str, *, default_region: str = "FR") -> str:
    """E.164 (+33612345678); numbers without a country code are read in the workspace's home market."""
    try:
        number = phonenumbers.parse(value.strip(), default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ValidationError("Enter a valid phone number.", code=CustomerErrorCode.INVALID_PHONE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_identity(type_: str, value: str, *, default_region: str = "FR") -> str:
    if type_ == "email":
        return normalise_email(value)
    if type_ == "phone":
        return normalise_phone(value, default_region=default_region)
    cleaned = value.strip()
    if not cleaned:
        raise ValidationError("This field may not be blank.", code="blank")
    return cleaned
