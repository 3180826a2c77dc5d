"""The admin HTTP API: faults, groups, events, connections, brokers, metrics, health.

It runs inside the proxy's own event loop (uvicorn serving on sockets we bind), so it reads the
fault engine, the event log and the group model directly, without locks or copies, and a slow
HTTP client can never stall the data plane for longer than one of its own callbacks.
"""

from kafka_chaos_proxy.proxy.admin.app import create_app
from kafka_chaos_proxy.proxy.admin.context import AdminContext
from kafka_chaos_proxy.proxy.admin.server import AdminServer

__all__ = ["AdminContext", "AdminServer", "create_app"]
