"""The data plane: one client connection and its upstream connection, frame by frame.

Modules, bottom up (each imports only those above it in this list):

- `framing`: frame boundaries (`FrameReader`), Produce acks read undecoded, `with_size`.
- `slots`: the ordered response slots (invariant 2).
- `counters`: per-frame metric updates with the label children cached.
- `limits`: the process-wide buffer budget, connection admission, timeout reasons and the
  sweep interval (invariant 5; the sweep itself is `core.ConnectionCore.sweep`).
- `splice`: zero-copy streaming of the rest of a cut-through request or response
  (splice(2), socket -> pipe -> socket, one `Splicer` either way); never on TLS.
- `sasl`: the principal a client's SASL exchange names, read in passing.
- `tls_accept`: the server-side TLS handshake of a client connection.
- `request_context`: one request as the pipeline tracks it and the fault engine sees it
  (and `PassThrough`, a request forwarded without a context).
- `passing`: which requests are forwarded without a context (no rule can match, nothing
  looks at them): the table of (key, version) the chunk scan reads at fixed offsets.
- `host`: `ProxyHost`, what a connection needs of the server.
- `executors/`: one executor per fault action kind, and their registry.
- `exchanges`: exchanges for observers, synthesized error responses.
- `core`: the connection's state, client reading control, `close`.
- `writer`: ordered, batched writes to the client; throttling.
- `request_path`: client frames to decisions, slots and upstream writes.
- `cut_through`: streaming large requests and responses, splice glue.
- `response_path`: broker frames matched, rewritten and filled into slots.
- `connection`: `Connection` assembled from the parts above, the transport protocols.

Outside the package, modules here import only `codec`, `faults.decision`, `proxy.metrics`
(and `proxy.frame_counts`, the per-frame counters it exports), `proxy.exchange`,
`proxy.config`, `proxy.roles`, `proxy.versions`, `proxy.side_channel` and
`proxy.fetch_sessions` (pure: the Fetch sample tracker) and `proxy.tls.errors` (a TLS failure's
reason and its count), checked by tests/unit/architecture (an action's plan type is imported
for type checking only); never `proxy.server` (the server imports the pipeline and satisfies
`host.ProxyHost`), never `proxy.admin`.

To add a fault action: an action's executor is one module in executors/ (see
executors/__init__.py).
"""
