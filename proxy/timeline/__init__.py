"""A consumer group's rebalance timeline: one lane per member (a row per connection under
it), each coordination exchange a span coloured by its outcome, generation bands, assignment
changes, the fault rule that fired, and the records each member delivered.

`build_timeline` makes the model (`model`), `render_svg` the picture (`svg`), `sources` reads
event logs and harness lines from files. One renderer serves the CLI (`timeline`), the matrix
evidence and the admin API's live `/ui` page, which fetches the same SVG.
"""

from kafka_chaos_proxy.proxy.timeline.model import (
    DEFAULT_MAX_EVENTS,
    Timeline,
    build_timeline,
)
from kafka_chaos_proxy.proxy.timeline.sources import (
    busiest_group,
    read_harness,
    read_json_lines,
)
from kafka_chaos_proxy.proxy.timeline.svg import render_svg

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "Timeline",
    "build_timeline",
    "busiest_group",
    "read_harness",
    "read_json_lines",
    "render_svg",
]
