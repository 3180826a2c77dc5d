"""The client x coordination-fault matrix: run scenarios against real client libraries through
the proxy, classify each run from its evidence, and publish the table (docs/matrix.md/json).

Modules, one job each: `clients` (which harness to launch for a client), `classify` (name an
outcome from evidence, pure), `observations` (named numbers of a run from its evidence, pure),
`verdict` (judge a run against its scenario's expectations, pure), `control` (the fault-free
control for a client that failed without its fault), `driver` (apply a scenario's steps to a
running proxy), `cell` (one run of one client x scenario), `members` (harness processes and
their control), `produce` (records, at once or at a rate), `topology` (coordinator moves,
broker stops and restarts, and the brokers' own word on the coordinator), `runner` (the whole
matrix and its clusters, bounded), `report` (the table). `builds` (Go/Java harness builds) is
maintained with those harnesses.

May import `lab.scenario`, `lab.paths`, `proxy`, `faults` and `codec`, never `lab.cli` (the
commands sit on top of the matrix, not the other way round). Client libraries (the `[lab]`
extra) are imported only by `produce` (and so by `cell` and `runner`); the `scenario` commands
and the pure modules load on a plain install.
"""
