"""Fault rules: the model, how a rule matches a request, dosage, the actions, and the engine
that turns the active rules into one `Decision` per request.

May import `codec` and nothing else of ours. The data plane (`proxy`) executes decisions; this
package never touches a socket, a clock it was not handed, or a random generator it was not
seeded with, so every decision can be replayed in a unit test.

Modules, one job each:
* ``decision``       the contract with the data plane: `Decision`, `RequestView`, `FaultDecider`
* ``model``          the rule as users write it (pydantic): validation messages are the UI
* ``actions``        one module per action (its model and its Decision), and their registry
* ``model_base``     the strict base model and message helpers the rule and actions share
* ``names``          Kafka API and error names as users write them -> canonical names
* ``body_fields``    where each matchable body field lives in each API's request
* ``match``          does a request match? header facts first, the decoded body only if needed
* ``dosage``         skip / cap / probability / time window for one rule
* ``distributions``  delay jitter shapes, drawn from the engine's seeded RNG
* ``engine``         `FaultEngine`: ordered rules, CRUD for the admin API, `on_request`
* ``loader``         YAML/JSON rule files in and out
* ``patterns``       client-id globs and regexes on RE2: linear time, bounded, compiled once
"""
