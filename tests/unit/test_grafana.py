"""Grafana in docker-compose.yml: provisioned from files in the repository, on loopback, its
datasource the compose Prometheus, and its dashboard reading only metrics the proxy exports.

Why: no Docker engine runs in CI, so a dashboard query naming a metric that was renamed, or
a provisioning path that moved, would go unnoticed until someone opened Grafana.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from kafka_chaos_proxy.proxy import metrics
from tests.support.dashboard import ROOT, dashboard, expressions, queried_metrics

_SUFFIXES = {"counter": ("_total",), "gauge": ("",),
             "histogram": ("_bucket", "_sum", "_count")}


def _registry_samples() -> set[str]:
    names = set()
    for family in metrics.REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def test_grafana_service_is_provisioned_from_the_repository() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert all(str(p).startswith("127.0.0.1:") for p in grafana["ports"])
    mounts = {str(v).split(":")[1]: ROOT / str(v).split(":")[0] for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"].is_dir()
    dashboards_dir = mounts["/var/lib/grafana/dashboards"]
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (dashboards_dir / home.name).is_file()
    providers = yaml.safe_load((mounts["/etc/grafana/provisioning"] / "dashboards"
                                / "kafka-chaos-proxy.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
    (source,) = yaml.safe_load((mounts["/etc/grafana/provisioning"] / "datasources"
                                / "prometheus.yml").read_text())["datasources"]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].split(":")[-1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    uids = {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}


def test_dashboard_covers_what_the_issue_asks_and_names_real_metrics() -> None:
    queried = queried_metrics()
    assert {"kcp_requests_total", "kcp_coordination_latency_seconds_bucket",
            "kcp_faults_injected_total", "kcp_group_rebalances_total",
            "kcp_group_rebalance_seconds_bucket", "kcp_group_members",
            "kcp_connections_active"} <= queried
    assert queried - _registry_samples() == set()
    assert all(expr.count("(") == expr.count(")") for expr in expressions())
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
