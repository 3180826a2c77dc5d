"""The Grafana dashboard's queries and the metric names they read.

Shared by the unit check (every name is one the proxy's registry can export) and the
integration check (every name is really in `/metrics` of a proxy a consumer group went through),
so that a renamed metric breaks a test, not a dashboard nobody looks at in CI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "kafka-chaos-proxy.json"
# A PromQL metric name of ours; label names, functions and `le` never start with kcp_.
_METRIC = re.compile(r"\bkcp_[A-Za-z0-9_]+\b")


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def expressions() -> list[str]:
    return [str(target["expr"]) for panel in dashboard()["panels"]
            for target in panel.get("targets", [])]


def queried_metrics() -> set[str]:
    return {name for expr in expressions() for name in _METRIC.findall(expr)}


def exposed_samples(exposition: str) -> set[str]:
    """Sample names of a Prometheus text exposition (`kcp_x_total`, `kcp_y_bucket`...)."""
    return {sample.name for family in text_string_to_metric_families(exposition)
            for sample in family.samples}
