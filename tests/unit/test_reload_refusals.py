"""A SIGHUP reload that fails in an unexpected way (not a ConfigError: a bug, a library's own
error) is refused like a broken file: the old config keeps serving, ``config_reload_refused`` is
logged and the failed reload is noted for the admin console (review finding 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from sso_proxy.observability import reloads
from sso_proxy.server import serve


class FakeRuntime:
    """What ``reload_config`` uses of a Runtime: its config, and ``apply``."""

    def __init__(self, fail_apply: BaseException | None = None) -> None:
        self.config: Any = object()
        self.fail_apply = fail_apply
        self.applied: list[Any] = []

    def apply(self, config: Any) -> None:
        if self.fail_apply is not None:
            raise self.fail_apply
        self.applied.append(config)


def secret_error() -> ValueError:
    return ValueError("redis://:hunter2-secret@host: bad port")  # a message quoting a secret


@pytest.mark.parametrize("where", ["load", "apply"])
async def test_an_unexpected_error_refuses_the_reload_and_keeps_the_old_config(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("listen: x\n", encoding="utf-8")
    runtime = FakeRuntime(fail_apply=secret_error() if where == "apply" else None)
    serving = runtime.config

    def check(config_path: str) -> object:
        if where == "load":
            raise secret_error()
        return object()

    monkeypatch.setattr(serve, "check_before_serving", check)
    # The fake configs are no dataclasses: nothing restart-only to compare or keep.
    monkeypatch.setattr(serve, "restart_only_changes", lambda old, new: [])
    monkeypatch.setattr(serve, "keep_restart_only", lambda old, new: new)
    with capture_logs() as logs:
        assert await serve.reload_config(runtime, str(path)) is False  # type: ignore[arg-type]
    assert runtime.config is serving and not runtime.applied
    (refused,) = [event for event in logs if event["event"] == "config_reload_refused"]
    assert refused["log_level"] == "error" and refused["path"] == str(path)
    assert refused["problems"] == [
        "(reload): unexpected ValueError while loading; the old config keeps serving"
    ]
    assert "hunter2" not in repr(logs)  # SECURITY: the message may quote the file's secrets
    last = reloads.HISTORY.last_reload
    assert last is not None and last.ok is False and last.path == str(path)
    assert last.problems == tuple(refused["problems"])
