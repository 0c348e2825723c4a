"""Entries as YAML text, written back in the layout their file had.

Why a layout: the shipped YAML is the exchange format an MRC reviews by pull request. An export
that re-wrapped, re-quoted or re-ordered every file would bury the one changed answer in a diff of
fifty files. So each entry keeps the text it was imported from as its *layout*; an export writes
the live data with that file's key order, quoting, block scalars and blank lines, and only what
changed differs. An unchanged entry comes back byte for byte; a new entry gets the house style
(double quotes, ``|`` blocks for multi-line text, countries as ``[RU, KZ]``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

__all__ = ["dump_entry", "parse_entry_text"]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
#: lists written inline, as in the shipped files
_FLOW_LISTS = frozenset({"origin", "destination"})

Path_ = tuple[str | int, ...]


class _Dumper(yaml.SafeDumper):
    """Block sequences indented under their key (``  - title: ...``), as the shipped files are."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def parse_entry_text(text: str) -> Any:
    """The YAML document as data (what the validator checks)."""
    return yaml.safe_load(text)


def _scalar(value: Any, template: yaml.Node | None) -> yaml.ScalarNode:
    style = template.style if isinstance(template, yaml.ScalarNode) else None
    if isinstance(value, bool):
        return yaml.ScalarNode("tag:yaml.org,2002:bool", "true" if value else "false")
    if isinstance(value, int):
        return yaml.ScalarNode("tag:yaml.org,2002:int", str(value))
    if isinstance(value, dt.date):
        return yaml.ScalarNode("tag:yaml.org,2002:timestamp", value.isoformat())
    text = "" if value is None else str(value)
    multiline = "\n" in text
    if template is None or not isinstance(template, yaml.ScalarNode) or template.tag != _STR:
        style = "|" if multiline else '"'
    elif multiline and style != "|":
        style = "|"
    elif not multiline and style in ("|", ">"):
        style = '"'
    if style == "|" and (text != text.rstrip("\n") + "\n" or " \n" in text or text.startswith(" ")):
        style = '"'  # a literal block cannot carry trailing spaces or extra final newlines faithfully
    return yaml.ScalarNode(_STR, text, style=style)


def _node(value: Any, template: yaml.Node | None, key: str | None,
          shared: dict[int, tuple[Any, yaml.Node]]) -> yaml.Node:
    """Build the node for ``value``; a template node met twice (an ``&anchor``/``*alias`` pair)
    yields the same node again while the value is still equal, so the alias survives."""
    if template is not None and id(template) in shared and shared[id(template)][0] == value:
        return shared[id(template)][1]
    node = _build(value, template, key, shared)
    if template is not None:
        shared[id(template)] = (value, node)
    return node


def _build(value: Any, template: yaml.Node | None, key: str | None,
           shared: dict[int, tuple[Any, yaml.Node]]) -> yaml.Node:
    if isinstance(value, Mapping):
        known: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        order: list[str] = []
        if isinstance(template, yaml.MappingNode):
            for k, v in template.value:
                known[str(k.value)] = (k, v)
                order.append(str(k.value))
        keys = [k for k in order if k in value] + [k for k in value if k not in known]
        pairs = []
        for k in keys:
            tk, tv = known.get(k, (None, None))
            key_node = yaml.ScalarNode(_STR, k, style=tk.style if isinstance(tk, yaml.ScalarNode) else None)
            pairs.append((key_node, _node(value[k], tv, k, shared)))
        flow = template.flow_style if isinstance(template, yaml.MappingNode) else False
        return yaml.MappingNode(_MAP, pairs, flow_style=flow)
    if isinstance(value, list | tuple):
        items = template.value if isinstance(template, yaml.SequenceNode) else []
        nodes = [_node(v, items[i] if i < len(items) else None, None, shared) for i, v in enumerate(value)]
        flow = template.flow_style if isinstance(template, yaml.SequenceNode) else key in _FLOW_LISTS or not value
        return yaml.SequenceNode(_SEQ, nodes, flow_style=flow)
    return _scalar(value, template)


def _starts(node: yaml.Node, path: Path_ = ()) -> Iterator[tuple[Path_, int]]:
    """(path, first line) of every mapping key and block sequence item, in document order."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            here = (*path, str(k.value))
            yield here, k.start_mark.line
            yield from _starts(v, here)
    elif isinstance(node, yaml.SequenceNode) and not node.flow_style:
        for i, item in enumerate(node.value):
            here = (*path, i)
            yield here, item.start_mark.line
            yield from _starts(item, here)


def _blank_lines_before(text: str, root: yaml.Node) -> dict[Path_, int]:
    lines = text.split("\n")
    out: dict[Path_, int] = {}
    for path, line in _starts(root):
        n = 0
        while line - n - 1 >= 0 and lines[line - n - 1].strip() == "":
            n += 1
        if n:
            out[path] = n
    return out


def dump_entry(data: Mapping[str, Any], layout: str | None = None) -> str:
    """``data`` as a YAML document in ``layout``'s style (the entry's last imported or exported text)."""
    template = yaml.compose(layout) if layout else None
    root = _node(data, template, None, {})
    text: str = yaml.serialize(root, Dumper=_Dumper, allow_unicode=True, width=10**9, indent=2)
    if template is None:
        return text
    blanks = _blank_lines_before(layout or "", template)
    if not blanks:
        return text
    lines = text.split("\n")
    written = yaml.compose(text)
    assert written is not None  # a mapping was just serialised
    inserts = sorted(((line, blanks[path]) for path, line in _starts(written) if path in blanks),
                     reverse=True)
    for line, n in inserts:
        lines[line:line] = [""] * n
    return "\n".join(lines)
