"""OpenRTB 2.6 bid requests: the checks a request must pass to be bid on, and the parts read.

A request that is not an object with an `id` and at least one impression, or whose fields have
the wrong types or impossible values, is malformed: the bidder answers 400 with an empty body
(OpenRTB leaves the error body to the bidder; an exchange logs the status). Unknown fields and
extensions are ignored, as the specification asks. Bounds keep a hostile request cheap: at most
MAX_IMPS impressions, MAX_LIST items in a list, MAX_TEXT characters in a text.
"""

import math
from dataclasses import dataclass
from typing import Any

MAX_BODY = 256 * 1024
MAX_IMPS = 20
MAX_LIST = 500
MAX_TEXT = 4096


class Malformed(ValueError):
    pass


@dataclass
class Imp:
    id: str
    sizes: list[tuple[int, int]]  # banner w x h and its formats
    floor: float  # in floor_currency
    floor_currency: str
    video: bool
    private: bool  # pmp.private_auction = 1: only the deals named may bid


@dataclass
class Request:
    id: str
    imps: list[Imp]
    tmax: int | None
    auction: int  # 1 first price, 2 second price
    currencies: list[str]
    bcat: set[str]
    badv: set[str]
    inventory: str  # "site" or "app"
    categories: set[str]
    country: str  # alpha-3, upper case; "" when absent
    region: str
    city: str
    lat: float | None
    lon: float | None
    buyeruid: str
    user_id: str
    hashed_emails: list[str]
    ifa: str
    gdpr: bool
    consent: str
    test: bool


def _obj(value: Any, name: str, required: bool = False) -> dict:
    if value is None:
        if required:
            raise Malformed(f"{name}: required")
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{name}: not an object")
    return value


def _text(value: Any, name: str, required: bool = False) -> str:
    if value is None:
        if required:
            raise Malformed(f"{name}: required")
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
        raise Malformed(f"{name}: not a text")
    if required and not value.strip():
        raise Malformed(f"{name}: empty")
    return value


def _int(value: Any, name: str, low: int, high: int, default: int | None = None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Malformed(f"{name}: not an integer from {low} to {high}")
    return value


def _number(value: Any, name: str, low: float, high: float, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Malformed(f"{name}: not a number")
    if not low <= value <= high:
        raise Malformed(f"{name}: out of range")
    return float(value)


def _texts(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise Malformed(f"{name}: not a list")
    return [_text(v, f"{name}[]", required=True) for v in value]


def _currency(value: Any, name: str) -> str:
    text = _text(value, name)
    if text and (len(text) != 3 or not text.isascii() or not text.isalpha()):
        raise Malformed(f"{name}: not an ISO 4217 code")
    return text.upper()


def _sizes(banner: dict, name: str) -> list[tuple[int, int]]:
    sizes = []
    w, h = _int(banner.get("w"), f"{name}.w", 0, 100_000), _int(banner.get("h"), f"{name}.h", 0, 100_000)
    if w and h:
        sizes.append((w, h))
    formats = banner.get("format")
    if formats is not None:
        if not isinstance(formats, list) or len(formats) > MAX_LIST:
            raise Malformed(f"{name}.format: not a list")
        for i, fmt in enumerate(formats):
            fmt = _obj(fmt, f"{name}.format[{i}]")
            fw = _int(fmt.get("w"), f"{name}.format[{i}].w", 0, 100_000)
            fh = _int(fmt.get("h"), f"{name}.format[{i}].h", 0, 100_000)
            if fw and fh:
                sizes.append((fw, fh))
    return sizes


def parse(body: Any) -> Request:
    """The parts of a decoded request the bidder reads, or Malformed."""
    root = _obj(body, "request", required=True)
    request_id = _text(root.get("id"), "id", required=True)
    imps_raw = root.get("imp")
    if not isinstance(imps_raw, list) or not imps_raw or len(imps_raw) > MAX_IMPS:
        raise Malformed("imp: expected 1 to 20 impressions")
    imps = []
    seen_ids = set()
    for i, raw in enumerate(imps_raw):
        imp = _obj(raw, f"imp[{i}]", required=True)
        imp_id = _text(imp.get("id"), f"imp[{i}].id", required=True)
        if imp_id in seen_ids:
            raise Malformed(f"imp[{i}].id: repeated")
        seen_ids.add(imp_id)
        banner = _obj(imp.get("banner"), f"imp[{i}].banner")
        video = _obj(imp.get("video"), f"imp[{i}].video")
        pmp = _obj(imp.get("pmp"), f"imp[{i}].pmp")
        imps.append(
            Imp(
                id=imp_id,
                sizes=_sizes(banner, f"imp[{i}].banner") if banner else [],
                floor=_number(imp.get("bidfloor"), f"imp[{i}].bidfloor", 0, 1e6, 0.0) or 0.0,
                floor_currency=_currency(imp.get("bidfloorcur"), f"imp[{i}].bidfloorcur") or "USD",
                video=bool(video),
                private=_int(pmp.get("private_auction"), f"imp[{i}].pmp.private_auction", 0, 1, 0) == 1,
            )
        )
    site, app = _obj(root.get("site"), "site"), _obj(root.get("app"), "app")
    if root.get("site") is not None and root.get("app") is not None:
        raise Malformed("site and app: one or the other")
    where = site or app
    categories = set(_texts(where.get("cat"), "cat")) | set(_texts(where.get("sectioncat"), "sectioncat"))
    device = _obj(root.get("device"), "device")
    geo = _obj(device.get("geo"), "device.geo")
    lat = _number(geo.get("lat"), "device.geo.lat", -90, 90)
    lon = _number(geo.get("lon"), "device.geo.lon", -180, 180)
    user = _obj(root.get("user"), "user")
    user_ext = _obj(user.get("ext"), "user.ext")
    hashed = []
    eids = user.get("eids", user_ext.get("eids"))
    if eids is not None:
        if not isinstance(eids, list) or len(eids) > MAX_LIST:
            raise Malformed("user.eids: not a list")
        for i, eid in enumerate(eids):
            eid = _obj(eid, f"user.eids[{i}]")
            uids = eid.get("uids", [])
            if not isinstance(uids, list) or len(uids) > MAX_LIST:
                raise Malformed(f"user.eids[{i}].uids: not a list")
            for j, uid in enumerate(uids):
                value = _text(_obj(uid, f"user.eids[{i}].uids[{j}]").get("id"), f"user.eids[{i}].uids[{j}].id")
                if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
                    hashed.append(value.lower())
    regs = _obj(root.get("regs"), "regs")
    regs_ext = _obj(regs.get("ext"), "regs.ext")
    gdpr = regs.get("gdpr", regs_ext.get("gdpr"))
    _int(gdpr, "regs.gdpr", 0, 1)
    consent = user.get("consent", user_ext.get("consent"))
    auction = _int(root.get("at"), "at", 1, 500, 2)
    return Request(
        id=request_id,
        imps=imps,
        tmax=_int(root.get("tmax"), "tmax", 1, 1_000_000),
        auction=1 if auction == 1 else 2,
        currencies=[_currency(c, "cur[]") for c in _texts(root.get("cur"), "cur")] or ["USD"],
        bcat=set(_texts(root.get("bcat"), "bcat")),
        badv={d.lower() for d in _texts(root.get("badv"), "badv")},
        inventory="app" if root.get("app") is not None else "site",
        categories=categories,
        country=_text(geo.get("country"), "device.geo.country").upper(),
        region=_text(geo.get("region"), "device.geo.region"),
        city=_text(geo.get("city"), "device.geo.city"),
        lat=lat,
        lon=lon,
        buyeruid=_text(user.get("buyeruid"), "user.buyeruid"),
        user_id=_text(user.get("id"), "user.id"),
        hashed_emails=hashed[:10],
        ifa=_text(device.get("ifa"), "device.ifa").lower(),
        gdpr=gdpr == 1,
        consent=_text(consent, "user.consent"),
        test=_int(root.get("test"), "test", 0, 1, 0) == 1,
    )
