"""Helpers shared by several test modules (no tests in here): ``from support.<name> import ...``.

deploy: the deployment files and the proxy started as the container starts it; identity: what
an upstream app receives (headers, assertions, the Node verifier); replicas: two ``sso-proxy
serve`` processes on one Redis; sessions: invented staff, times and store configs.
"""
