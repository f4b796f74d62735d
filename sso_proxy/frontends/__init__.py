"""The two front ends: thin adapters that parse bytes, call the core and render its verdict."""
