"""The network side: listeners, the per-connection pipeline, the broker address map, the
group-coordination event log and group state, the admin HTTP API, metrics, the CLI, and the
provider of a real local Apache Kafka (`proxy.real_kafka`).

May import `faults` and `codec`. Nothing in `codec` or `faults` imports from here.
"""
