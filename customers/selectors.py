import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from customers.models import (
    AttributeDefinition,
    Event,
    Identity,
    Order,
    Profile,
    ProfileMerge,
    SurveyQuestion,
    SurveyResponse,
)

SUMMARY_FIELDS = ("orders_count", "orders_total", "last_order_at", "events_count", "last_event_at")


def profile_summary_columns() -> dict[str, Any]:
    """The transactional and behavioural figures of a person, as columns of a profile query
    (`summary_<figure>`, SUMMARY_FIELDS): read with the profile in one statement."""
    orders = Order.objects.filter(profile_id=OuterRef("pk"), status="completed").order_by().values("profile_id")
    events = Event.objects.filter(profile_id=OuterRef("pk")).order_by().values("profile_id")
    return {
        "summary_orders_count": Coalesce(Subquery(orders.annotate(n=Count("id")).values("n")), 0),
        "summary_orders_total": Subquery(orders.annotate(total=Sum("amount")).values("total")),
        "summary_last_order_at": Subquery(orders.annotate(last=Max("ordered_at")).values("last")),
        "summary_events_count": Coalesce(Subquery(events.annotate(n=Count("id")).values("n")), 0),
        "summary_last_event_at": Subquery(events.annotate(last=Max("occurred_at")).values("last")),
    }


def summary_of(*, row: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of a row read with profile_summary_columns, by their names."""
    return {name: row[f"summary_{name}"] for name in SUMMARY_FIELDS}


def profile_summary(*, profile_id: int) -> dict:
    """Transactional and behavioural figures of one person, for the 360 view."""
    return summary_of(row=Profile.objects.filter(pk=profile_id).values(**profile_summary_columns()).get())


@dataclass(frozen=True)
class ValueLabels:
    """What the team declared: survey questions' wording and closed answers, attributes' options."""

    questions: dict[tuple[str, str], str]  # (survey, question) -> the question's label
    answers: dict[tuple[str, str], dict[str, str]]  # (survey, question) -> {answer_key(value): label}
    attribute_options: dict[str, dict[str, str]]  # attribute key -> {value: label}

    def question(self, survey: str, question: str) -> str:
        return self.questions.get((survey, question), f"{survey}.{question}")

    def answer(self, survey: str, question: str, value: Any) -> str | None:
        """The declared answer's label, None when the answer is not a declared one."""
        return self.answers.get((survey, question), {}).get(self.answer_key(value))

    def option(self, key: str, value: str) -> str | None:
        return self.attribute_options.get(key, {}).get(value)

    @staticmethod
    def answer_key(value: Any) -> str:
        """An answer as JSON, so that 1, 1.0, true and "1" stay apart as they are stored."""
        return json.dumps(value, ensure_ascii=False)


def value_labels(*, workspace_id: int) -> ValueLabels:
    questions: dict[tuple[str, str], str] = {}
    answers: dict[tuple[str, str], dict[str, str]] = {}
    for survey, question, label, options in SurveyQuestion.objects.filter(workspace_id=workspace_id).values_list(
        "survey", "question", "label", "options"
    ):
        questions[(survey, question)] = label
        answers[(survey, question)] = {ValueLabels.answer_key(o["value"]): o["label"] for o in options}
    attributes = {
        key: {o["value"]: o["label"] for o in options}
        for key, options in AttributeDefinition.objects.filter(workspace_id=workspace_id).values_list("key", "options")
        if options
    }
    return ValueLabels(questions, answers, attributes)


@dataclass(frozen=True)
class TypedValues:
    """What people typed or were given as text, as aggregates may have copied it (for erasure)."""

    regions: set[str]
    attributes: dict[str, list[Any]]  # attribute key -> its values (a list attribute's items)
    answers: list[tuple[str, str, Any]]  # (survey, question, answer)


def typed_values(*, profile_ids: list[int]) -> TypedValues:
    regions: set[str] = set()
    attributes: dict[str, list[Any]] = {}
    for region, values in Profile.objects.filter(pk__in=profile_ids).values_list("region", "attributes"):
        regions.add(region)
        for key, value in (values or {}).items():
            attributes.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    answers = list(
        SurveyResponse.objects.filter(profile_id__in=profile_ids).values_list("survey", "question", "answer")
    )
    return TypedValues(regions, attributes, answers)


def identity_graph(*, profile: Profile) -> dict[str, Any]:
    """A profile's identifiers and the merges that formed it (newest first)."""
    return {
        "profile": profile.pk,
        "external_id": profile.external_id,
        "anonymous": profile.anonymous,
        "identities": list(Identity.objects.filter(profile=profile).order_by("created_at", "pk")),
        "merges": list(ProfileMerge.objects.filter(survivor=profile).order_by("-merged_at", "-pk")),
    }
