"""One router per resource of the admin API (faults, groups, events, system).

Routes are thin: they call the engine, the event log and the group model through
`proxy.admin.context` and import nothing of the data plane.
"""
