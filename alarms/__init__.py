"""Pure CloudWatch alarm logic: the alarm model, metric-alarm evaluation and composite rules.

Nothing in this package reads a clock, a store or the network: callers pass ``now`` and the
datapoints (``alarms.evaluate``) or the child states (``alarms.rule``) and get back an
``Evaluation``.  The scheduler and the server decide when to call and what to persist.
"""
