"""The response transforms of one proxy: address rewriters bound to its router, plus the
ApiVersions clamp, keyed by API key.

A module of its own because it is where the two pure tables (`proxy.rewrite`, `proxy.versions`)
meet the server's router; keeping it out of both keeps their imports one-way.
"""

from __future__ import annotations

from kafka_chaos_proxy.codec import ApiKey
from kafka_chaos_proxy.proxy.rewrite import ADDRESS_REWRITERS, Rewriter, Router, Transform
from kafka_chaos_proxy.proxy.versions import clamp_api_versions_response

__all__ = ["Transform", "build_transforms"]


def _bind(rewriter: Rewriter, route: Router) -> Transform:
    return lambda version, frame: rewriter(version, frame, route)


def build_transforms(route: Router) -> dict[int, Transform]:
    """Response transforms by api key, bound to one router (the server's)."""
    transforms = {key: _bind(rewriter, route) for key, rewriter in ADDRESS_REWRITERS.items()}
    transforms[ApiKey.API_VERSIONS] = clamp_api_versions_response
    return transforms
