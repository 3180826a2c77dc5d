"""The lab: what reproduces client races at scale, beside the product.

Here: the scenario model and loader (`scenario`), where the catalog and the harness sources
are found (`paths`), the client matrix (`matrix/`: harness builds, the runner, cells, the
classifier and the report) and their CLI commands (`cli`, registered through the
`kafka_chaos_proxy.cli` entry-point group). `catalog/` is the scenario catalog as package data.

May import `proxy`, `faults` and `codec`. Nothing in `proxy`, `faults` or `codec` may import
`lab` (a unit test walks their imports): the proxy runs, and installs, without it.
"""
