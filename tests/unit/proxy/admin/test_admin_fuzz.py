"""Fuzz the admin API from its own OpenAPI document: no input may cause a 5xx, and every
response must match what the document promises.

The live event stream is left out: it is endless by design (and has its own tests). Example
counts are bounded so the run stays short.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.proxy.admin import AdminContext, create_app
from kafka_chaos_proxy.proxy.admin.guard import LOCAL_HOSTS
from kafka_chaos_proxy.proxy.events import EventLog
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.groups import GroupStateModel

MAX_EXAMPLES = 50


def _app() -> object:
    events, groups = EventLog(capacity=50), GroupStateModel()
    for member in ("m-1", "m-2"):
        exchange = Exchange(
            connection_id=1,
            client_host="127.0.0.1",
            broker_node=1,
            client_id="app",
            api_key=12,
            api_version=4,
            correlation_id=1,
            request_body={"group_id": "g1", "generation_id": 1, "member_id": member},
            response_body={"error_code": 0},
            started_at=1_700_000_000.0,
            latency_s=0.001,
            upstream_latency_s=0.001,
        )
        events.observe(exchange)
        groups.observe(exchange)
    # schemathesis' ASGI client calls itself "testserver".
    return create_app(AdminContext(engine=FaultEngine(seed=7), events=events, groups=groups,
                                   allowed_hosts=LOCAL_HOSTS | {"testserver"}))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app()).exclude(path="/events/stream")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_admin_api_conforms(case: schemathesis.Case) -> None:
    # A rule's validators know more than its JSON schema can say (API and error names, ranges
    # that depend on the action type), so a schema-valid rule may rightly get a 422.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
