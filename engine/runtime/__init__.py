"""What both executors share: the Plan compiler, the evaluator, window aggregates, bindings, alerts and scores."""
