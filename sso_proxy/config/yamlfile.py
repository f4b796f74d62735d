"""Reading a config file's YAML: duplicate keys refused, syntax errors named at the line to fix.

PyYAML reports where its parser gave up (``problem_mark``), which for the commonest mistakes is
not where the mistake is: a key missing its ':' before a blank line is reported two lines on, an
unclosed quote at the end of the file. ``yaml_problem`` names the line where the broken part
began, and where it was noticed when that differs.
"""

from __future__ import annotations

from typing import Any

import yaml

from sso_proxy.errors import ConfigError


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML would silently keep the last one, and
    ``organization: {hcode: "10999", hcode: "10998"}`` must never quietly become 10998."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be plain text, not {_kind(key)}", key_node.start_mark
            )
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (each key may appear once)", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """The YAML tree of ``text``; a syntax error raises ConfigError naming the line of the mistake."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([yaml_problem(text, exc)]) from exc
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError([f"(file): not valid YAML (line {line}): {exc.reason}: #x{code:04x}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"(file): not valid YAML: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError([NESTED_TOO_DEEP]) from exc


# A recursive alias (``a: &a [*a]``) or thousands of nested brackets: never a config.
NESTED_TOO_DEEP = "(file): nested too deeply (or a recursive alias such as &a [*a]): not a config"


# Errors whose context mark is where the broken token or bracket began (a key missing its ':',
# an unclosed quote or bracket). Their problem mark is only where the parser gave up, which can
# be lines later: past blank lines and comments, or at the end of the file.
_STARTED_AT_CONTEXT = ("while scanning", "while parsing a flow")
# A key missing its ':' reads as plain text. Before the next key it either runs on into it
# (YAML then finds a ':' where it allows none) or, ended by a comment, leaves the next key
# opening a mapping where YAML expected the end of one.
_RUN_ON = "mapping values are not allowed here"
_NEXT_KEY = "expected <block end>, but found '<block mapping start>'"


def yaml_problem(text: str, exc: yaml.MarkedYAMLError) -> str:
    """``(file): not valid YAML (line L, column C): ...``, L being the line to fix (1-based)."""
    noticed = exc.problem_mark
    mark, problem = noticed, str(exc.problem or exc)
    if exc.context_mark is not None and (exc.context or "").startswith(_STARTED_AT_CONTEXT):
        mark, problem = exc.context_mark, f"{exc.context}: {problem}"
    elif noticed is not None and exc.problem in (_RUN_ON, _NEXT_KEY):
        mark = _keyless_text_start(text, noticed, same_column=exc.problem == _NEXT_KEY) or noticed
    if mark is None:
        return f"(file): not valid YAML: {problem}"
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    if noticed is not None and noticed.line != mark.line:
        problem += f" (noticed at line {noticed.line + 1}, column {noticed.column + 1})"
    return f"(file): not valid YAML ({where}): {problem}"


def _keyless_text_start(text: str, noticed: yaml.Mark, *, same_column: bool) -> yaml.Mark | None:
    """Start of the plain text before ``noticed`` that began on an earlier line, if any.

    With ``same_column``, only text that opens its line at the column of the key YAML stumbled
    on: ``client_id x  # comment`` then ``client_secret: y`` below it. (Text further right is
    a value, and the mistake is then the indentation of the line noticed.)"""
    tokens = _tokens_until_error(text)
    scalars = [t for t in tokens if isinstance(t, yaml.ScalarToken) and t.end_mark.index <= noticed.index]
    if not scalars or not scalars[-1].plain or scalars[-1].start_mark.line >= noticed.line:
        return None
    start: yaml.Mark = scalars[-1].start_mark
    if same_column:
        line_head = text[start.index - start.column : start.index]
        if start.column != noticed.column or line_head.strip(" "):
            return None
    return start


def _tokens_until_error(text: str) -> list[yaml.Token]:
    loader = StrictLoader(text)
    tokens: list[yaml.Token] = []
    try:
        while loader.check_token():
            tokens.append(loader.get_token())  # type: ignore[no-untyped-call]
    except yaml.YAMLError:
        tokens.extend(loader.tokens)
    finally:
        loader.dispose()
    return tokens
