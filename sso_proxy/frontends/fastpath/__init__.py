"""The httptools fast path for the common authenticated GET (and the /oauth2/auth 202)."""
