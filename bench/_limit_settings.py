"""Cible's production settings, with one more URL for bench/api.py: the limit it compares reads with."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench._limit_urls"
