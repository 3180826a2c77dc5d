"""Fault rules: the model, how a rule matches a request, dosage, and the engine that turns the
active rules into one `Decision` per request; scenarios (timed or event-triggered rule scripts).

May import `codec` and nothing else of ours. The data plane (`proxy`) executes decisions; this
package never touches a socket.
"""
