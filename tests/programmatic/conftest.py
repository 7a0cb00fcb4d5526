from tests.bidder.conftest import bidder_url, store  # noqa: F401  (the real bidder process and its Redis)
