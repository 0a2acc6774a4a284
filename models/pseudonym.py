"""Per-tenant keyed pseudonyms (HMAC-SHA256) for resident and patient identifiers."""

from __future__ import annotations

import hashlib
import hmac
import os

DEFAULT_SECRET = "kyodo-development-secret-change-me"


def tenant_key(tenant_code: str, secret: str | None = None) -> bytes:
    """Derive the tenant's own HMAC key, so one tenant's pseudonyms never match another's."""
    master = (secret or os.environ.get("KYODO_PSEUDONYM_SECRET") or DEFAULT_SECRET).encode()
    return hmac.new(master, tenant_code.encode(), hashlib.sha256).digest()


def pseudonymise(tenant_code: str, raw_id: str, secret: str | None = None) -> str:
    """Stable 20-hex-character pseudonym of `raw_id` within `tenant_code`."""
    digest = hmac.new(tenant_key(tenant_code, secret), raw_id.encode(), hashlib.sha256)
    return digest.hexdigest()[:20]
