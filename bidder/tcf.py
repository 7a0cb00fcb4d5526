"""The IAB's TCF v2 consent string (the `user.consent` of a bid request), decoded as far as a
bidder needs: the purposes the person consented to and the vendors they consented to.

The core segment's layout (TCF v2.2, "Consent string and vendor list formats v2"): base64url
without padding, fields big-endian bit by bit:

    Version 6, Created 36, LastUpdated 36, CmpId 12, CmpVersion 12, ConsentScreen 6,
    ConsentLanguage 12, VendorListVersion 12, TcfPolicyVersion 6, IsServiceSpecific 1,
    UseNonStandardTexts 1, SpecialFeatureOptIns 12, PurposesConsent 24,
    PurposesLITransparency 24, PurposeOneTreatment 1, PublisherCC 12,
    then the vendor consents: MaxVendorId 16, IsRangeEncoding 1, and either a bit field of
    MaxVendorId bits or NumEntries 12 of (IsARange 1, StartOrOnlyVendorId 16, [EndVendorId 16]).

The other segments (disclosed vendors, publisher restrictions, legitimate interests) do not
grant consent and are not read. A string that is not a well-formed version 2 core segment is
refused (`TcfError`): the bidder then treats the person as not having consented. The tests
compare it with an independent decoder on strings the IAB's own library is tested with.
"""

import base64
from dataclasses import dataclass

# The purposes a bid on a known person needs (TCF v2.2 purpose ids): 1 store and/or access
# information on a device, 3 create profiles for personalised advertising, 4 use profiles to
# select personalised advertising.
PERSONALISED_ADS = (1, 3, 4)
MAX_LENGTH = 8192  # characters; a real string is a few hundred
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class TcfError(ValueError):
    pass


@dataclass(frozen=True)
class Consent:
    version: int
    cmp_id: int
    vendor_list_version: int
    policy_version: int
    purposes: frozenset[int]
    vendors: frozenset[int]  # from a bit field
    vendor_ranges: tuple[tuple[int, int], ...]  # from a range encoding

    def allows(self, *, purposes: tuple[int, ...], vendor: int | None) -> bool:
        """The person consented to every purpose and, when Cible has a vendor id, to Cible."""
        if not set(purposes) <= self.purposes:
            return False
        return vendor is None or self.has_vendor(vendor)

    def has_vendor(self, vendor: int) -> bool:
        return vendor in self.vendors or any(start <= vendor <= end for start, end in self.vendor_ranges)


class _Bits:
    def __init__(self, data: bytes):
        self.value = int.from_bytes(data, "big")
        self.size = len(data) * 8
        self.at = 0

    def read(self, n: int) -> int:
        if self.at + n > self.size:
            raise TcfError("the string ends early")
        shift = self.size - self.at - n
        self.at += n
        return (self.value >> shift) & ((1 << n) - 1)


def decode(text: object) -> Consent:
    """The core segment of a TCF v2 string."""
    if not isinstance(text, str) or not text or len(text) > MAX_LENGTH:
        raise TcfError("not a consent string")
    core = text.split(".", 1)[0]
    if not core or any(c not in _ALPHABET for c in core):
        raise TcfError("not base64url")
    try:
        data = base64.urlsafe_b64decode(core + "=" * (-len(core) % 4))
    except ValueError as error:  # binascii.Error: a length no base64 has
        raise TcfError("not base64url") from error
    bits = _Bits(data)
    version = bits.read(6)
    if version != 2:
        raise TcfError(f"version {version}, not 2")
    bits.read(36 + 36)  # created, last updated
    cmp_id = bits.read(12)
    bits.read(12 + 6 + 12)  # cmp version, consent screen, consent language
    vendor_list_version = bits.read(12)
    policy_version = bits.read(6)
    bits.read(1 + 1 + 12)  # service specific, non-standard texts, special feature opt-ins
    purposes_field = bits.read(24)
    purposes = frozenset(i + 1 for i in range(24) if purposes_field >> (23 - i) & 1)
    bits.read(24 + 1 + 12)  # legitimate interests, purpose one treatment, publisher country
    max_vendor = bits.read(16)
    ranges: list[tuple[int, int]] = []
    vendors: frozenset[int] = frozenset()
    if bits.read(1):  # range encoding
        for _ in range(bits.read(12)):
            if bits.read(1):
                start, end = bits.read(16), bits.read(16)
            else:
                start = end = bits.read(16)
            if not 1 <= start <= end <= max_vendor:
                raise TcfError("a vendor range out of bounds")
            ranges.append((start, end))
    else:
        field = bits.read(max_vendor)
        vendors = frozenset(i + 1 for i in range(max_vendor) if field >> (max_vendor - 1 - i) & 1)
    return Consent(
        version=version,
        cmp_id=cmp_id,
        vendor_list_version=vendor_list_version,
        policy_version=policy_version,
        purposes=purposes,
        vendors=vendors,
        vendor_ranges=tuple(ranges),
    )
