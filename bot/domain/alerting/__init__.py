"""Alerting: rules, the pending → firing → resolved state machine, grouping and silences.

Semantics follow Prometheus and Alertmanager, which our users know: a rule with `for: D` is
pending until its condition has held for D, then firing; notifications are grouped per model
and environment (group_wait, group_interval, repeat_interval); silences mute notifications
but not evaluation; a firing critical rule inhibits warnings on the same model and environment.
"""
