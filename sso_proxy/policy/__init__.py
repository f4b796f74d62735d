"""The access rules: compile, evaluate, lint, explain."""
