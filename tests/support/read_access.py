"""The read credential tests present to the scorer's and alerter's read APIs.

Every sandbox's services take it as ``CHURNWATCH_SERVICE_TOKEN`` (tests/integration/conftest.py), the credential
the console reads with (shared/key_auth.py), so reads in tests go through the same check as in production.
"""

from __future__ import annotations

SERVICE_TOKEN = "sandbox-service-token-0123456789abcdef0123"
READER = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
