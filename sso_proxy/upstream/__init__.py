"""Forwarding to the upstream apps: pools, the HTTP/1 client, the relay, WebSockets."""
