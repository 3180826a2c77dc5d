"""Which real broker stands behind which proxy listener, without I/O.

The proxy learns brokers from responses (Metadata, FindCoordinator, DescribeCluster, ...).
Each node id gets one stable route: its real address (to connect upstream) and, once bound, the
port of its own listener (to advertise to clients). Keeping this table pure lets the rewriting
code be tested without sockets, and lets the admin API list brokers from one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NodeRoute:
    node_id: int
    real_host: str
    real_port: int
    rack: str | None
    discovery_index: int
    listen_port: int | None = None  # set once the node listener is bound

    def to_dict(self, advertised_host: str) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "broker_host": self.real_host,
            "broker_port": self.real_port,
            "rack": self.rack,
            "proxy_host": advertised_host,
            "proxy_port": self.listen_port,
        }


class AddressMap:
    def __init__(self) -> None:
        self._nodes: dict[int, NodeRoute] = {}

    def __contains__(self, node_id: int) -> bool:
        return node_id in self._nodes

    def get(self, node_id: int) -> NodeRoute | None:
        return self._nodes.get(node_id)

    def routes(self) -> list[NodeRoute]:
        return sorted(self._nodes.values(), key=lambda r: r.node_id)

    def learn(self, node_id: int, host: str, port: int, rack: str | None = None
              ) -> tuple[NodeRoute, bool]:
        """Record a broker address seen in a response; True when the node id is new.

        A known node whose address changed (broker moved) is updated in place: its listener
        stays, new upstream connections go to the new address.
        """
        route = self._nodes.get(node_id)
        if route is None:
            route = NodeRoute(node_id, host, port, rack, len(self._nodes))
            self._nodes[node_id] = route
            return route, True
        if (route.real_host, route.real_port) != (host, port):
            route.real_host, route.real_port = host, port
        if rack is not None:
            route.rack = rack
        return route, False
