"""The network side: listeners, the per-connection pipeline (`proxy.pipeline`), the broker
address map and the rewriters, what each API's role is (`proxy.roles`), the group-coordination
event log and group state, the admin HTTP API (`proxy.admin`) and its client (`proxy.client`),
metrics, the CLI (`proxy.cli`), and the provider of a real local Apache Kafka
(`proxy.real_kafka`), the embedded default broker.

May import `faults` and `codec`. Nothing in `codec` or `faults` imports from here, and nothing
here imports `lab` (tests/unit/architecture checks both).
"""
