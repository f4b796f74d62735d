"""The config file: schema (one source of truth per key), reading YAML and the environment, validation."""
