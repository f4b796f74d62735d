"""``make bench``: sso-proxy against baselines on loopback, in one run (see bench/README.md)."""
