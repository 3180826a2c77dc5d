"""The per-frame counters the pipeline bumps: `proxy.frame_counts`, one per process.

They are plain integers (exported when `/metrics` is scraped) because a prometheus-client
child takes a lock per bump, and these are bumped for every request, response and chunk of
bytes. Bounded by construction: only the codec's API keys have entries; an unknown key is
counted under `unknown` without one, so no sequence of junk keys grows anything.
"""

from __future__ import annotations

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.frame_counts import FrameCounts


def counters() -> FrameCounts:
    return metrics.frame_counts
