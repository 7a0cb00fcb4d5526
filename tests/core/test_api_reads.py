"""The shortcuts of the read path: a first page that holds every row is counted from its rows, a
list asked for no filter skips the FilterSet, and a detail read ignores the list's filters. None
of them changes an answer."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Profile
from tests.factories import make_profile

URL = "/api/workspaces/maison/profiles/"


def _counts(queries) -> int:
    return sum("COUNT(" in q["sql"].upper() for q in queries)


def test_a_short_list_is_counted_from_its_rows(workspace, marketer):
    for n in range(3):
        make_profile(workspace=workspace, city="Lyon" if n else "Paris")
    with CaptureQueriesContext(connection) as queries:
        answer = marketer.get(URL).json()
    assert answer["count"] == 3 and len(answer["results"]) == 3 and answer["next"] is None
    assert _counts(queries.captured_queries) == 0


def test_a_list_longer_than_its_first_page_is_counted_and_paged(workspace, marketer):
    made = [make_profile(workspace=workspace).pk for _ in range(7)]
    first = marketer.get(URL, {"page_size": 3}).json()
    assert first["count"] == 7 and [p["id"] for p in first["results"]] == made[:3] and first["next"]
    last = marketer.get(URL, {"page_size": 3, "page": 3}).json()
    assert last["count"] == 7 and [p["id"] for p in last["results"]] == made[6:] and last["next"] is None
    exact = marketer.get(URL, {"page_size": 7}).json()  # exactly one full page: nothing follows
    assert exact["count"] == 7 and len(exact["results"]) == 7 and exact["next"] is None
    assert marketer.get(URL, {"page_size": 3, "page": 4}).status_code == 404


def test_an_empty_list_is_an_empty_first_page(workspace, marketer):
    assert marketer.get(URL).json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_filters_still_filter_and_range_parameters_count_as_theirs(workspace, marketer):
    make_profile(workspace=workspace, city="Lyon")
    paris = make_profile(workspace=workspace, city="Paris")
    assert [p["id"] for p in marketer.get(URL, {"city": "paris"}).json()["results"]] == [paris.pk]
    Profile.objects.filter(pk=paris.pk).update(birth_date="1990-01-01")
    assert marketer.get(URL, {"age_min": 200}).status_code == 400  # validated, not skipped
    # A parameter that is no filter's is ignored, as before.
    assert marketer.get(URL, {"colour": "blue"}).json()["count"] == 2


def test_a_detail_read_ignores_the_lists_filters(workspace, marketer):
    lyon = make_profile(workspace=workspace, city="Lyon")
    answer = marketer.get(f"{URL}{lyon.pk}/", {"city": "Paris"})
    assert answer.status_code == 200 and answer.json()["id"] == lyon.pk
