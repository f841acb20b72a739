"""A safe YAML loader for scenarios and value profiles, with limits checked while composing.

Only plain YAML data is read: the loader derives from :class:`yaml.SafeLoader`, so no tag
constructs a Python object (``!!python/object`` and friends are refused), and on top of it:

- the file's size is checked before a byte is parsed;
- nesting deeper than :data:`MAX_NESTING_DEPTH` is refused while the node graph is composed,
  before recursion could run out of stack;
- at most :data:`MAX_ALIASES` aliases, and a document that aliases would expand to more than
  :data:`MAX_EXPANDED_NODES` nodes (an "alias bomb", billion laughs) is refused before any
  Python object is built from it;
- a key repeated in one mapping is an error, not a silent overwrite.

Every failure is a :class:`YamlLoadError` (a ``ValueError``) naming the file, line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "MAX_ALIASES",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "MAX_NESTING_DEPTH",
    "YamlLoadError",
    "load_yaml_file",
    "load_yaml_text",
]

#: Largest scenario or profile file read, in bytes (scenarios are a few kilobytes).
MAX_FILE_BYTES: Final = 1_000_000
#: Deepest nesting of mappings and sequences (a scenario needs about 6).
MAX_NESTING_DEPTH: Final = 32
#: Most aliases (``*name``) in one document.
MAX_ALIASES: Final = 100
#: Most nodes the document may hold with every alias expanded.
MAX_EXPANDED_NODES: Final = 100_000


class YamlLoadError(ValueError):
    """A YAML file that is unreadable, malformed, unsafe or over a limit."""


def _where(node_or_mark: Node | yaml.Mark | None) -> str:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    if mark is None:
        return ""
    return f"line {mark.line + 1}, column {mark.column + 1}: "


class _LimitedSafeLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` that enforces the limits above and rejects duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        # Expanded size per composed node, memoised by id so shared (aliased) nodes are
        # counted as often as they would be copied, without walking them again.
        self._expanded_sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self.peek_event()
                raise YamlLoadError(
                    f"{_where(event.start_mark)}more than {MAX_ALIASES} aliases; refusing a "
                    "document that could expand without bound (alias bomb)"
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_NESTING_DEPTH:
            event = self.peek_event()
            raise YamlLoadError(
                f"{_where(event.start_mark)}nesting deeper than {MAX_NESTING_DEPTH} levels"
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._count_expanded(node)
        return node

    def _count_expanded(self, node: Node) -> None:
        if isinstance(node, ScalarNode):
            size = 1
        elif isinstance(node, SequenceNode):
            size = 1 + sum(self._expanded_sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, MappingNode):
            size = 1 + sum(
                self._expanded_sizes.get(id(key), 1) + self._expanded_sizes.get(id(value), 1)
                for key, value in node.value
            )
        else:
            size = 1
        if size > MAX_EXPANDED_NODES:
            raise YamlLoadError(
                f"{_where(node)}the document expands to more than {MAX_EXPANDED_NODES} nodes "
                "through its aliases (alias bomb)"
            )
        self._expanded_sizes[id(node)] = size

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise YamlLoadError(
                    f"{_where(key_node)}duplicate key {key!r} (first given on line "
                    f"{seen[key].line + 1})"
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_undefined(self, node: Node) -> Any:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise YamlLoadError(
            f"{_where(node)}tag {tag} is not allowed: scenarios hold plain data "
            "(mappings, lists, strings, numbers, booleans), never code or objects"
        )


_LimitedSafeLoader.add_constructor(None, _LimitedSafeLoader.construct_undefined)


def load_yaml_text(text: str, *, source: str = "<string>") -> Any:
    """Parse one YAML document safely, with the module's limits.

    Args:
        text: The YAML text.
        source: The name used in error messages (usually the file path).

    Returns:
        The document as plain data (dicts, lists, strings, numbers, booleans, ``None``).

    Raises:
        YamlLoadError: Malformed YAML, a disallowed tag, duplicate keys, more than one
            document, or a limit exceeded; the message names ``source``, line and column.
    """
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_FILE_BYTES:
        raise YamlLoadError(f"{source}: larger than {MAX_FILE_BYTES} bytes")
    loader = _LimitedSafeLoader(text)
    try:
        document = loader.get_single_data()
    except YamlLoadError as error:
        raise YamlLoadError(f"{source}: {error}") from None
    except yaml.MarkedYAMLError as error:
        problem = error.problem or "malformed YAML"
        if error.context:
            problem = f"{problem} ({error.context})"
        raise YamlLoadError(f"{source}: {_where(error.problem_mark)}{problem}") from None
    except yaml.YAMLError as error:
        raise YamlLoadError(f"{source}: malformed YAML ({error})") from None
    except RecursionError:
        # Flow collections nest in the parser's own stack before compose_node runs.
        raise YamlLoadError(f"{source}: nesting too deep") from None
    finally:
        loader.dispose()
    return document


def load_yaml_file(path: str | Path) -> Any:
    """Read and parse a YAML file safely; the size limit is checked before reading it.

    Args:
        path: The file to read.

    Returns:
        The document as plain data.

    Raises:
        YamlLoadError: The file is missing, unreadable, not UTF-8, too large, or its YAML
            is refused by :func:`load_yaml_text`.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise YamlLoadError(f"{path}: cannot read ({error.strerror or error})") from None
    if not path.is_file():
        raise YamlLoadError(f"{path}: not a file")
    if size > MAX_FILE_BYTES:
        raise YamlLoadError(f"{path}: {size} bytes, larger than the limit of {MAX_FILE_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        reason = f"{error.reason} at byte {error.start}"
        raise YamlLoadError(f"{path}: not UTF-8 text ({reason})") from None
    except OSError as error:
        raise YamlLoadError(f"{path}: cannot read ({error.strerror or error})") from None
    return load_yaml_text(text, source=str(path))
