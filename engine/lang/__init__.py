"""The rule expression language: grammar, syntax tree, parser and unparser, functions, aggregates and hints."""
