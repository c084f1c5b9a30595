"""The Spark executor's pieces that need no Spark: routing records by rule key, and one key group's evaluation."""

from .partition import evaluate_group, group_output_schema, record_schema
from .routing import Family, Routing, plan_routing

__all__ = ["Family", "Routing", "evaluate_group", "group_output_schema", "plan_routing", "record_schema"]
