"""The proxy's own pages and browser flows: login, hand-off, sign-out, redirects, cookies."""
