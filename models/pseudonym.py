"""Per-tenant keyed pseudonyms (HMAC-SHA256) for resident and patient identifiers."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

DEFAULT_SECRET = "kyodo-development-secret-change-me"


def tenant_key(tenant_code: str, secret: str | None = None) -> bytes:
    """Derive the tenant's own HMAC key, so one tenant's pseudonyms never match another's."""
    master = (secret or os.environ.get("KYODO_PSEUDONYM_SECRET") or DEFAULT_SECRET).encode()
    return hmac.new(master, tenant_code.encode(), hashlib.sha256).digest()


def pseudonymise(tenant_code: str, raw_id: str, secret: str | None = None) -> str:
    """Stable 20-hex-character pseudonym of `raw_id` within `tenant_code`."""
    return pseudonymise_many(tenant_code, [raw_id], secret)[0]


def pseudonymise_many(tenant_code: str, raw_ids: Iterable[str], secret: str | None = None,
                      ) -> list[str]:
    """`pseudonymise` of each id, deriving the tenant's key once (300,000 ids: ~0.5 s)."""
    key = tenant_key(tenant_code, secret)
    return [hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()[:20] for raw in raw_ids]
