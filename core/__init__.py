"""Building blocks every Cible app uses, and that import no Cible app.

The apps are layers (see README, Architecture): core, accounts, customers, privacy,
segments, audiences, campaigns, reporting, optimisation, then the demo data and the
project configuration. A lower layer never imports a higher one; where it must let a
higher one react, it sends a signal (a merge, an erasure) or keeps a registry, and the
higher app connects its handler in its AppConfig.ready.
"""

# The layer order, lowest first; import-linter checks the same order (pyproject.toml).
LAYERS = (
    "core",
    "accounts",
    "customers",
    "privacy",
    "segments",
    "audiences",
    "insights",
    "campaigns",
    "programmatic",
    "reporting",
    "optimisation",
    "demo",
)
