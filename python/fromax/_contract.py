"""The functors' operand contract, read from ``functors.h`` (next to this file), the table the C++
functors are compiled from: each functor's input streams, its sums or results, and its coefficient
columns, by name and in order. :mod:`fromax._functors` gives each entry its JAX math;
:func:`check_compiled` compares the table with the one a kernel library was built from."""

from __future__ import annotations

import dataclasses
import pathlib
import re

PATH = pathlib.Path(__file__).with_name("functors.h")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One functor of the table. ``kind``: "reduce", "update" or "fused". ``outputs``: a reduce's
    sums, an update's results (each named after the input stream it replaces). A fused entry has
    no streams of its own: ``parts`` names its reduce and update entries. A prologue twin
    (``<base>_pre``) is its base's entry with the prologue's columns appended."""

    kind: str
    name: str
    cpp_type: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    parts: tuple[str, str] | None = None
    base: str | None = dataclasses.field(default=None, compare=False)  # a prologue twin's base


def is_norm(sum_name: str) -> bool:
    """A reduce's output named ``*_norm`` is a 2-norm (its term: the element's value), not a sum."""
    return sum_name.endswith("_norm")


def _macro_body(text: str, macro: str) -> str:
    match = re.search(rf"#define {macro}\b(\([^)]*\))?([^\n]*)", text)
    if match is None:
        raise RuntimeError(f"fromax: {PATH.name} has no #define {macro}")
    return match.group(2)


def _arguments(call: str) -> list[str]:
    """The top-level, comma-separated arguments of ``(a, (b, c), d)``."""
    args, depth, current = [], 0, ""
    for ch in call[1:-1]:
        if ch == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        depth += (ch == "(") - (ch == ")")
        current += ch
    args.append(current.strip())
    return args


def _entries(body: str) -> list[tuple[str, list[str]]]:
    """``KIND(args...)`` calls of a table macro's body, in order."""
    out = []
    for match in re.finditer(r"\b(REDUCE|UPDATE|FUSED)\s*\(", body):
        start, depth = match.end() - 1, 0
        for end in range(start, len(body)):
            depth += (body[end] == "(") - (body[end] == ")")
            if depth == 0:
                break
        out.append((match.group(1).lower(), _arguments(body[start : end + 1])))
    return out


def names(group: str) -> tuple[str, ...]:
    """``"(a, b)"`` -> ``("a", "b")``; ``"()"`` -> ``()``."""
    inner = group.strip()
    if not (inner.startswith("(") and inner.endswith(")")):
        raise RuntimeError(f"fromax: {PATH.name}: {group!r} is not a parenthesised list of names")
    found = tuple(n.strip() for n in inner[1:-1].split(",") if n.strip())
    for n in found:
        if not n.isidentifier():
            raise RuntimeError(f"fromax: {PATH.name}: {n!r} is not a name")
    return found


def parse(text: str) -> tuple[dict[str, Entry], tuple[str, ...]]:
    """The table's entries by name (prologue twins included) and the prologue's columns."""
    text = re.sub(r"//[^\n]*", "", text).replace("\\\n", " ")
    prologue = names(_macro_body(text, "FROMAX_PROLOGUE_COLUMNS"))
    table: dict[str, Entry] = {}
    for kind, args in _entries(_macro_body(text, "FROMAX_CONTRACT")):
        name, cpp_type, *rest = args
        if kind == "fused":
            table[name] = Entry(kind, name, cpp_type, columns=names(rest[2]), parts=(rest[0], rest[1]))
        else:
            table[name] = Entry(kind, name, cpp_type, names(rest[0]), names(rest[1]), names(rest[2]))
    for kind, (name, cpp_type, base) in _entries(_macro_body(text, "FROMAX_PROLOGUE_TWINS")):
        entry = table[base]
        if entry.kind != kind or set(entry.columns) & set(prologue):
            raise RuntimeError(f"fromax: {PATH.name}: twin {name} of {base} ({entry.kind}) is declared as a {kind}, or shares a column name with the prologue")
        table[name] = dataclasses.replace(entry, name=name, cpp_type=cpp_type, columns=entry.columns + prologue, base=base)
    for entry in table.values():
        if entry.kind == "update" and not (entry.outputs and set(entry.outputs) <= set(entry.inputs)):
            raise RuntimeError(f"fromax: {PATH.name}: each result of {entry.name} must name the input stream it replaces")
        if entry.kind == "fused":
            r, u = (table[part] for part in entry.parts)
            if (r.kind, u.kind) != ("reduce", "update"):
                raise RuntimeError(f"fromax: {PATH.name}: fused {entry.name} must name a reduce and an update")
            # One call hands the reduce the update's first streams and the fused row's first columns.
            if len(r.inputs) > len(u.inputs) or entry.columns[: len(r.columns)] != r.columns:
                raise RuntimeError(f"fromax: {PATH.name}: fused {entry.name}'s columns must start with {r.name}'s, "
                                   f"and {r.name} may read no more streams than {u.name}")
    return table, prologue


TABLE, PROLOGUE_COLUMNS = parse(PATH.read_text())


def compiled_table(module) -> dict[str, Entry]:
    """The table a kernel library was compiled from (its ``functors()``)."""
    out = {}
    for target, (kind, cpp_type, inputs, outputs, columns, parts, layout) in module.functors().items():
        name = target.removeprefix("fromax_")
        entry = Entry(kind, name, cpp_type, names(inputs), names(outputs), names(columns), tuple(parts) if parts else None)
        # The counts the functor type declares must be those of its lists (a fused type: columns).
        lists = (len(entry.columns),) if parts else (len(entry.inputs), len(entry.outputs), len(entry.columns))
        if tuple(layout[: len(lists)]) != lists:
            raise RuntimeError(f"fromax: {cpp_type} declares {layout} for the lists {entry}")
        out[name] = entry
    return out


def check_compiled(module, library: str) -> None:
    """Raise if kernel library ``module`` was built from a different table than this package's
    ``functors.h``: its kernels would read other columns than the rows Python builds."""
    compiled = compiled_table(module)
    if compiled == TABLE:
        return
    differ = sorted(set(compiled) ^ set(TABLE)) + sorted(k for k in set(compiled) & set(TABLE) if compiled[k] != TABLE[k])
    raise RuntimeError(
        f"fromax: the {library} kernel library was built from another {PATH.name} than this package's "
        f"({PATH}); they differ in {', '.join(differ)}. Rebuild fromax (pip install .)."
    )
