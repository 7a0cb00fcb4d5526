"""A workspace's match rules: per identifier type, its strength, survivor priority and cap."""

from dataclasses import dataclass, field

from customers.models import MATCH_DEFAULTS, IdentityType, MatchRule, MatchStrength


@dataclass(frozen=True)
class Rule:
    type: str
    strength: str
    priority: int
    max_profiles: int
    deterministic: bool = field(init=False)  # read for every identifier of a batch: a plain attribute
    weak: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "deterministic", str(self.strength) == MatchStrength.DETERMINISTIC.value)
        object.__setattr__(self, "weak", str(self.strength) == MatchStrength.WEAK.value)


def match_rules(*, workspace_id: int) -> dict[str, Rule]:
    """Every identifier type's rule: the workspace's own where it set one, the default otherwise."""
    rules = {kind: Rule(kind, strength, priority, cap) for kind, (strength, priority, cap) in MATCH_DEFAULTS.items()}
    for kind, strength, priority, cap in MatchRule.objects.filter(workspace_id=workspace_id).values_list(
        "type", "strength", "priority", "max_profiles"
    ):
        rules[kind] = Rule(kind, strength, priority, cap)
    return rules


def known_types(workspace_id: int) -> list[str]:
    """Identifier types that make a person known (deterministic ones): a profile holding one is
    never anonymous."""
    rules = match_rules(workspace_id=workspace_id)
    return [kind for kind in IdentityType.values if rules[kind].deterministic]
