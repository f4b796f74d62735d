"""``sso-proxy doctor``: the pre-flight an operator runs before go-live and after every change.

Each check is a small function returning a ``Check`` (PASS / WARN / FAIL, English and Thai text);
``runner`` runs them and prints one line each. Only failures make the exit status 1.
"""

from sso_proxy.doctor.runner import doctor_main

__all__ = ["doctor_main"]
