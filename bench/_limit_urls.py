"""Cible's URLs and `/bench/limit/`: a bare Django request (the same middleware as the API's) that
reads the database once and Redis once and answers a small JSON object. No API request can cost
less while doing its job; bench/api.py compares every read with it."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as cible


def limit(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    cache.get("bench:limit")
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/limit/", limit), *cible]
