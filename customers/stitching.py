"""Identity resolution at ingestion: which profile each item is about, and which profiles it
shows to be one person.

An item (a profile, an event, an order) names its person by an external id, by identifiers
(e-mail, phone, loyalty card, CRM id, hashed e-mail, device, cookie), or both. The batch's
items and the identifiers Cible already knows form a graph; the workspace's match rules
(customers.match_rules) say which edges count:

- a deterministic identifier joins whatever it touches;
- a weak one (cookie, device) joins an anonymous profile to another, never two known people;
- an ignored one is recorded on the item's profile and joins nothing;
- an identifier that would join more profiles than its type's cap is marked shared and stops
  joining (a family tablet, a shop's loyalty card).

Each connected group is one person: the profiles in it are merged into the one that ranks first
(known before anonymous, then the highest-priority identifier it holds, then the oldest), in one
set of statements (customers.merging). An item about nobody Cible knows lands on a new profile:
its external id's, or an anonymous one keyed by its best identifier.

Batches share the workspace's stitching lock; a batch that must merge takes it alone and
resolves again (NeedsExclusive), so two batches stitching the same people at once end with one
profile and every row kept.
"""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from accounts.models import Workspace
from core.sql import insert_ignore_returning
from customers.match_rules import Rule, match_rules
from customers.merging import MergePlan, column_update, profiles_merge
from customers.models import Identity, MatchStrength, Profile, ProfileMerge

ANONYMOUS_PREFIX = "anon-"
# An identifier's last sighting is written at most this often (a cookie is seen on every event).
LAST_SEEN_EVERY = timedelta(hours=1)


class NeedsExclusive(Exception):
    """The batch must merge (or the identifiers changed under it): run it again holding the
    workspace's stitching lock alone."""


def anonymous_external_id(kind: str, value: str) -> str:
    """An anonymous profile's external id: a digest of the identifier it was first seen with, so
    that concurrent batches seeing the same cookie create the same profile."""
    return ANONYMOUS_PREFIX + hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:40]


@dataclass
class Claim:
    """What an item says about its person."""

    key: str  # the item's idempotency digest
    external_id: str  # "" when the item has none
    identifiers: Sequence[tuple[str, str]]


@dataclass
class Resolution:
    profiles: dict[str, int] = field(default_factory=dict)  # claim key -> profile id
    created: set[int] = field(default_factory=set)  # profiles this batch created (and kept)
    merged: int = 0  # profiles merged away
    unknown: set[str] = field(default_factory=set)  # claims about nobody known (when not creating)


class _Groups:
    """Union-find over nodes: ("p", id) existing profiles, ("x", external id) new ones, ("i", type,
    value) identifiers, ("c", key) items; each root knows whether its group holds a known person
    and whether it holds a person at all."""

    def __init__(self) -> None:
        self.parent: dict[tuple, tuple] = {}
        self.known: dict[tuple, bool] = {}
        self.person: dict[tuple, bool] = {}

    def add(self, node: tuple, *, known: bool = False, person: bool = False) -> tuple:
        if node not in self.parent:
            self.parent[node] = node
            self.known[node] = known
            self.person[node] = person
        return node

    def find(self, node: tuple) -> tuple:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: tuple, b: tuple) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.known[ra] = self.known[ra] or self.known[rb]
            self.person[ra] = self.person[ra] or self.person[rb]


def resolve_aliases(workspace: Workspace, external_ids: set[str]) -> dict[str, str]:
    """external id of a merged profile -> its survivor's external id."""
    if not external_ids:
        return {}
    return dict(
        ProfileMerge.objects.filter(
            workspace=workspace, merged_external_id__any=external_ids, unmerged_at__isnull=True
        ).values_list("merged_external_id", "survivor__external_id")
    )


@dataclass
class _Owned:
    identity_id: int
    profile_id: int
    anonymous: bool
    shared: bool
    joined: int


def resolve(
    *, workspace: Workspace, claims: Sequence[Claim], source: str, exclusive: bool, create: bool = True
) -> Resolution:
    """The profile of each claim, after stitching by the workspace's rules. Merges only when
    `exclusive` (the caller holds the stitching lock alone); otherwise raises NeedsExclusive."""
    rules = match_rules(workspace_id=workspace.pk)
    result = Resolution()
    now = timezone.now()

    # People known by external id (aliases of merged profiles lead to their survivor).
    aliases = resolve_aliases(workspace, {c.external_id for c in claims if c.external_id})
    external = {c.key: aliases.get(c.external_id, c.external_id) for c in claims if c.external_id}
    people = {
        external_id: (pk, anonymous)
        for external_id, pk, anonymous in Profile.objects.filter(
            workspace=workspace, external_id__any=set(external.values())
        ).values_list("external_id", "id", "anonymous")
    }
    # Identifiers Cible already holds.
    pairs = {pair for c in claims for pair in c.identifiers}
    owners: dict[tuple[str, str], _Owned] = {}
    if pairs:
        for kind, value, pk, profile_id, anonymous, shared, count in Identity.objects.filter(
            workspace=workspace, value__any={value for _, value in pairs}
        ).values_list("type", "value", "id", "profile_id", "profile__anonymous", "shared", "profiles_joined"):
            if (kind, value) in pairs:
                owners[(kind, value)] = _Owned(pk, profile_id, anonymous, shared, count)

    g = _Groups()
    for (kind, value), holder in owners.items():
        g.add(("p", holder.profile_id), known=not holder.anonymous, person=True)
        g.add(("i", kind, value), known=rules[kind].deterministic)
        g.union(("p", holder.profile_id), ("i", kind, value))
    claims_of: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in claims:
        node = g.add(("c", c.key))
        if c.key in external:
            external_id = external[c.key]
            if external_id in people:
                pk, anonymous = people[external_id]
                g.union(g.add(("p", pk), known=not anonymous, person=True), node)
            else:
                g.union(g.add(("x", external_id), known=True, person=True), node)
        for pair in dict.fromkeys(c.identifiers):
            claims_of[pair].append(c.key)

    accepted: set[tuple[str, tuple[str, str]]] = set()
    joined: dict[tuple[str, str], int] = {}
    capped: set[tuple[str, str]] = set()
    for strength in (MatchStrength.DETERMINISTIC, MatchStrength.WEAK):
        for pair, keys in sorted(claims_of.items()):
            rule = rules[pair[0]]
            owned: _Owned | None = owners.get(pair)
            if rule.strength != strength or (owned and owned.shared):
                continue
            inode = g.add(("i", *pair), known=rule.deterministic)
            groups = {g.find(("c", key)) for key in keys} | {g.find(inode)}
            persons = sum(1 for root in groups if g.person[root])
            if (owned.joined - 1 if owned else 0) + persons > rule.max_profiles:
                capped.add(pair)
                continue
            unions = 0
            for key in keys:
                a, b = g.find(("c", key)), g.find(inode)
                if a != b:
                    if strength == MatchStrength.WEAK and g.known[a] and g.known[b]:
                        continue  # a cookie never fuses two known people
                    unions += g.person[a] and g.person[b]
                    g.union(a, b)
                accepted.add((key, pair))
            if unions:
                joined[pair] = (owned.joined if owned else 1) + unions

    # Each group: its existing profiles, its new external ids, its identifiers.
    members: dict[tuple, dict[str, set]] = defaultdict(lambda: {"p": set(), "x": set(), "i": set()})
    for node in g.parent:
        if node[0] in ("p", "x", "i"):
            members[g.find(node)][node[0]].add(node[1] if node[0] != "i" else node[1:])
    target_root: dict[str, tuple] = {}
    anonymous_ids: dict[tuple, str] = {}
    for c in claims:
        root = g.find(("c", c.key))
        if not g.person[root]:
            # No person in its group: the owner of its best identifier that joined nothing (shared,
            # refused or ignored), or else a new anonymous person.
            mine = [pair for pair in dict.fromkeys(c.identifiers) if pair in owners]
            if mine:
                best = max(mine, key=lambda pair: (rules[pair[0]].priority, pair))
                root = g.find(("p", owners[best].profile_id))
            elif root not in anonymous_ids:
                candidates = members[root]["i"] | set(c.identifiers)
                best = max(candidates, key=lambda pair: (rules[pair[0]].priority, pair))
                anonymous_ids[root] = anonymous_external_id(*best)
        target_root[c.key] = root

    if not create:
        result.unknown = {key for key, root in target_root.items() if not members[root]["p"]}
        target_root = {key: root for key, root in target_root.items() if key not in result.unknown}
    roots = set(target_root.values())
    if any(len(members[r]["p"]) + len(members[r]["x"]) > 1 for r in roots) and not exclusive:
        raise NeedsExclusive

    # New people: the external ids first seen here, and the anonymous ones.
    new_ids: dict[str, bool] = {}  # external id -> anonymous
    for root in roots:
        for external_id in members[root]["x"]:
            new_ids[external_id] = False
        if root in anonymous_ids and not members[root]["p"]:
            new_ids[anonymous_ids[root]] = True
    ids: dict[str, int] = {}
    if new_ids:
        columns = [f for f in Profile._meta.concrete_fields if not f.primary_key]
        # One bare profile's values (defaults, and the same creation time for the whole batch), then
        # each new person's external id and kind: no model instance per row.
        template = [f.pre_save(Profile(workspace=workspace), True) for f in columns]
        at = {f.name: i for i, f in enumerate(columns)}
        rows = []
        for external_id in sorted(new_ids):  # sorted: concurrent batches lock in one order
            row = list(template)
            row[at["external_id"]], row[at["anonymous"]] = external_id, new_ids[external_id]
            rows.append(row)
        result.created = set(insert_ignore_returning(Profile, [f.name for f in columns], rows, returning="id"))
        ids = dict(
            Profile.objects.filter(workspace=workspace, external_id__any=new_ids.keys()).values_list(
                "external_id", "id"
            )
        )

    # Groups of more than one profile are one person: merged into the one that ranks first.
    profile_of_root: dict[tuple, int] = {}
    plans: list[MergePlan] = []
    merging: dict[tuple, set[int]] = {}
    for root in roots:
        profiles = set(members[root]["p"]) | {ids[x] for x in members[root]["x"]}
        if not profiles and root in anonymous_ids:
            profiles = {ids[anonymous_ids[root]]}
        if len(profiles) > 1:
            merging[root] = profiles
        elif profiles:
            profile_of_root[root] = next(iter(profiles))
    if merging:
        plans = _merge_plans(workspace, merging, claims, external, people, ids, owners, accepted, rules, source)
        for root, profiles in merging.items():
            survivor = {plan.survivor_id for plan in plans if plan.merged_id in profiles} or profiles
            profile_of_root[root] = next(iter(survivor))
        profiles_merge(workspace_id=workspace.pk, plans=plans, reason=ProfileMerge.Reason.RULE)
        result.merged = len(plans)
        result.created -= {plan.merged_id for plan in plans}
    result.profiles = {key: profile_of_root[root] for key, root in target_root.items()}

    _identities_write(workspace, claims, result, owners, accepted, joined, capped, rules, source, exclusive, now)
    return result


def _merge_plans(
    workspace: Workspace,
    merging: dict[tuple, set[int]],
    claims: Sequence[Claim],
    external: dict[str, str],
    people: dict[str, tuple[int, bool]],
    ids: dict[str, int],
    owners: dict[tuple[str, str], _Owned],
    accepted: set[tuple[str, tuple[str, str]]],
    rules: dict[str, Rule],
    source: str,
) -> list[MergePlan]:
    """Who survives in each group (known first, then the best identifier held, then the oldest),
    and for each profile merged into it, the rule and the item that joined it."""
    involved = set().union(*merging.values())
    anonymous = dict(Profile.objects.filter(pk__any=involved).values_list("id", "anonymous"))
    best: dict[int, int] = defaultdict(int)
    for profile_id, kind in Identity.objects.filter(profile__id__any=list(involved)).values_list("profile_id", "type"):
        best[profile_id] = max(best[profile_id], rules[kind].priority)
    # Which item joined each profile, and by which identifier type.
    cause: dict[int, tuple[str, str]] = {}
    for c in claims:
        used = [pair for pair in dict.fromkeys(c.identifiers) if (c.key, pair) in accepted]
        if not used:
            continue
        kind = max(used, key=lambda pair: rules[pair[0]].priority)[0]
        touched = [owners[pair].profile_id for pair in used if pair in owners]
        if c.key in external:
            external_id = external[c.key]
            touched.append(people[external_id][0] if external_id in people else ids[external_id])
        for profile_id in touched:
            cause.setdefault(profile_id, (kind, c.key))
    plans = []
    for profiles in merging.values():
        ranked = sorted(profiles, key=lambda pk: (anonymous.get(pk, False), -best[pk], pk))
        survivor = ranked[0]
        for merged in ranked[1:]:
            kind, key = cause.get(merged, ("", ""))
            plans.append(MergePlan(survivor, merged, rule_type=kind, source=source, item_key=key))
    return plans


def _identities_write(
    workspace: Workspace,
    claims: Sequence[Claim],
    result: Resolution,
    owners: dict[tuple[str, str], _Owned],
    accepted: set[tuple[str, tuple[str, str]]],
    joined: dict[tuple[str, str], int],
    capped: set[tuple[str, str]],
    rules: dict[str, Rule],
    source: str,
    exclusive: bool,
    now,
) -> None:
    """New identifiers join their item's profile; known ones are marked seen, their joins counted."""
    new: dict[tuple[str, str], int] = {}
    for c in claims:
        profile_id = result.profiles.get(c.key)
        if profile_id is None:
            continue
        for pair in c.identifiers:
            if pair in owners or pair in new:
                continue
            if (c.key, pair) in accepted or rules[pair[0]].strength == MatchStrength.IGNORED or pair in capped:
                new[pair] = profile_id
    if new:
        rows = [
            (
                workspace.pk,
                profile_id,
                kind,
                value,
                source,
                now,
                now,
                joined.get((kind, value), 1),
                (kind, value) in capped,
            )
            for (kind, value), profile_id in sorted(new.items())  # sorted: concurrent batches lock in one order
        ]
        inserted = insert_ignore_returning(
            Identity,
            [
                "workspace",
                "profile",
                "type",
                "value",
                "source",
                "created_at",
                "last_seen_at",
                "profiles_joined",
                "shared",
            ],
            rows,
            returning="id",
        )
        if len(inserted) < len(rows) and not exclusive:
            # A concurrent batch gave some of these identifiers to someone: stitch again, alone.
            held = Identity.objects.filter(workspace=workspace, value__any={value for _, value in new}).values_list(
                "type", "value", "profile_id"
            )
            if any(new.get((kind, value), profile_id) != profile_id for kind, value, profile_id in held):
                raise NeedsExclusive
        known = [pk for (kind, _), pk in new.items() if rules[kind].deterministic]
        if known:
            Profile.objects.filter(pk__any=set(known), anonymous=True).update(anonymous=False)
    if owners:
        seen = [owned.identity_id for owned in owners.values()]
        Identity.objects.filter(pk__any=seen, last_seen_at__lt=now - LAST_SEEN_EVERY).update(last_seen_at=now)
        Identity.objects.filter(pk__any=seen, last_seen_at__isnull=True).update(last_seen_at=now)
        column_update(
            model=Identity,
            field="profiles_joined",
            values=[(owned.identity_id, joined[pair]) for pair, owned in owners.items() if pair in joined],
        )
        now_shared = [owned.identity_id for pair, owned in owners.items() if pair in capped and not owned.shared]
        if now_shared:
            Identity.objects.filter(pk__any=now_shared).update(shared=True)
