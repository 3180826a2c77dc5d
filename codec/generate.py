"""Generate ``codec/schema.py`` from Apache Kafka's JSON message specs.

Usage::

    python -m kafka_chaos_proxy.codec.generate                  # writes codec/schema.py
    python -m kafka_chaos_proxy.codec.generate --specs-dir DIR  # or KCP_SPECS_DIR=DIR
    python -m kafka_chaos_proxy.codec.generate --output /tmp/s.py
                                                   # write elsewhere (the freshness test does)
    python -m kafka_chaos_proxy.codec.generate --check          # exit 1 if codec/schema.py is stale
    python -m kafka_chaos_proxy.codec.generate --specs-dir kafka-clients-X.jar \
                                               --output /tmp/schema.py
                                                   # specs of a newer Kafka, from its jar

The specs default to ``../shared/kafka-message-specs`` relative to the repository root.

Why a generated module instead of reading JSON at runtime: the proxy must not depend on a
directory that only exists in development, and a committed file makes protocol changes
reviewable as a diff. The output holds facts only (names, types, version ranges, tags,
defaults, common structs, error codes) so the engine in ``codec.messages`` owns all wire
behaviour. Output is deterministic: same specs in, same bytes out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPECS_DIR = REPO_ROOT.parent / "shared" / "kafka-message-specs"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "schema.py"
MAX_VERSION = 0x7FFF
NONE_RANGE = (0, -1)

_SNAKE_1 = re.compile(r"(.)([A-Z][a-z]+)")
_SNAKE_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """Spec field name to the dict key used by the codec (GroupId -> group_id)."""
    return _SNAKE_2.sub(r"\1_\2", _SNAKE_1.sub(r"\1_\2", name)).lower()


def strip_comments(text: str) -> str:
    """Drop ``//`` comments outside string literals; the specs are JSON plus comments."""
    out: list[str] = []
    for line in text.splitlines():
        in_str = False
        escaped = False
        cut = len(line)
        for i, ch in enumerate(line):
            if in_str:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "/" and line.startswith("//", i):
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def parse_range(spec: str | None) -> tuple[int, int]:
    """Kafka version range text ("3+", "0-2", "5", "none") to an inclusive (lo, hi) pair."""
    if spec is None or spec == "none" or spec == "":
        return NONE_RANGE
    spec = spec.strip()
    if spec.endswith("+"):
        return (int(spec[:-1]), MAX_VERSION)
    if "-" in spec:
        lo, hi = spec.split("-", 1)
        return (int(lo), int(hi))
    v = int(spec)
    return (v, v)


def _field(raw: dict[str, Any]) -> str:
    """Render one field as a ``F(...)`` constructor call for the generated module."""
    tag = raw.get("tag")
    default = raw.get("default")
    if default is not None and not isinstance(default, str):
        default = json.dumps(default)
    flex = raw.get("flexibleVersions")
    args = [
        repr(raw["name"]),
        repr(snake_case(raw["name"])),
        repr(raw["type"]),
        repr(parse_range(raw.get("versions"))),
        repr(parse_range(raw.get("nullableVersions"))),
        repr(parse_range(raw.get("taggedVersions"))),
        repr(None if tag is None else int(tag)),
        repr(default),
        repr(None if flex is None else parse_range(flex)),
    ]
    sub = raw.get("fields")
    if sub is not None:
        args.append("(" + "".join(_field(f) + ", " for f in sub) + ")")
    else:
        args.append("None")
    return "F(" + ", ".join(args) + ")"


def _fields(raw: list[dict[str, Any]], indent: str) -> str:
    if not raw:
        return "()"
    inner = "".join(f"{indent}    {_field(f)},\n" for f in raw)
    return "(\n" + inner + indent + ")"


def load_spec(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(strip_comments(text))
    return data


def read_sources(source: Path, errors_tsv: Path | None = None) -> tuple[list[str], str | None]:
    """Spec texts and errors.tsv text from a specs directory or a kafka-clients jar.

    A jar carries the specs as ``common/message/*.json`` resources but not the error table,
    which then comes from ``errors_tsv`` or, failing that, the default specs directory.
    """
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as jar:
            names = sorted(n for n in jar.namelist()
                           if n.startswith("common/message/") and n.endswith(".json"))
            texts = [jar.read(n).decode("utf-8") for n in names]
        fallback = DEFAULT_SPECS_DIR / "errors.tsv"
    else:
        texts = [p.read_text(encoding="utf-8") for p in sorted(source.glob("*.json"))]
        fallback = source / "errors.tsv"
    tsv = errors_tsv or fallback
    return texts, tsv.read_text(encoding="utf-8") if tsv.exists() else None


def render(source: Path, errors_tsv: Path | None = None) -> str:
    """Build the full text of the schema module from a specs directory (or jar)."""
    texts, errors_text = read_sources(source, errors_tsv)
    specs = [load_spec(t) for t in texts]
    if not specs:
        raise SystemExit(f"no *.json specs found in {source}")
    specs.sort(key=lambda s: s["name"])
    out: list[str] = [HEADER]
    out.append("MESSAGES: dict[str, Message] = {\n")
    for s in specs:
        common = s.get("commonStructs", [])
        structs = "".join(
            f"            {c['name']!r}: Struct({parse_range(c.get('versions'))!r}, "
            f"{_fields(c['fields'], '            ')}),\n"
            for c in sorted(common, key=lambda c: c["name"])
        )
        out.append(
            f"    {s['name']!r}: Message(\n"
            f"        name={s['name']!r},\n"
            f"        kind={s['type']!r},\n"
            f"        api_key={s.get('apiKey')!r},\n"
            f"        valid={parse_range(s['validVersions'])!r},\n"
            f"        flexible={parse_range(s.get('flexibleVersions'))!r},\n"
            f"        latest_unstable={bool(s.get('latestVersionUnstable', False))!r},\n"
            f"        fields={_fields(s.get('fields', []), '        ')},\n"
            f"        structs={{\n{structs}        }},\n"
            f"    ),\n"
        )
    out.append("}\n\n")
    rows = _error_rows(errors_text)
    out.append("ERROR_CODES: dict[str, int] = {\n")
    for code_num, name in rows:
        out.append(f"    {name!r}: {code_num},\n")
    out.append("}\n")
    out.append(_api_key_enum(specs))
    out.append(_error_code_enum(rows))
    return "".join(out)


def _error_rows(errors_text: str | None) -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = []
    if errors_text is not None:
        for line in errors_text.splitlines()[1:]:
            if line.strip():
                code_text, name = line.split("\t")[:2]
                rows.append((int(code_text), name.strip()))
    return sorted(rows)


def constant_name(message_name: str) -> str:
    """JoinGroup -> JOIN_GROUP: the enum member for an API, as Kafka's ApiKeys names it."""
    return snake_case(message_name).upper()


def _api_key_enum(specs: list[dict[str, Any]]) -> str:
    """`ApiKey`, the API keys as an enum (Kafka's generator emits ApiMessageType the same way),
    so that no module of ours writes an API key number by hand."""
    keys = sorted(
        (int(s["apiKey"]), constant_name(s["name"].removesuffix("Request")))
        for s in specs
        if s.get("type") == "request" and s.get("apiKey") is not None
    )
    body = "".join(f"    {name} = {key}\n" for key, name in keys)
    return (
        "\n\nclass ApiKey(IntEnum):\n"
        '    """Every API key of the specs, named as Kafka\'s ApiKeys enum names them."""\n\n'
        + body
    )


def _error_code_enum(rows: list[tuple[int, str]]) -> str:
    body = "".join(f"    {name} = {code}\n" for code, name in rows)
    return (
        "\n\nclass ErrorCode(IntEnum):\n"
        '    """Every protocol error code of errors.tsv, by its Kafka name."""\n\n'
        + (body or "    pass\n")
    )


HEADER = '''\
"""Kafka message schema: facts extracted from Apache Kafka's JSON message specs.

GENERATED by `python -m kafka_chaos_proxy.codec.generate`; do not edit by hand, regenerate instead.
Version ranges are inclusive (lo, hi) pairs; (0, -1) means "no versions".
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class F(NamedTuple):
    """One field of a message or struct, as the spec declares it."""

    spec_name: str
    name: str
    type: str
    versions: tuple[int, int]
    nullable: tuple[int, int]
    tagged: tuple[int, int]
    tag: int | None
    default: str | None
    flexible: tuple[int, int] | None
    fields: tuple[F, ...] | None


class Struct(NamedTuple):
    """A common struct shared by several fields of one spec."""

    versions: tuple[int, int]
    fields: tuple[F, ...]


class Message(NamedTuple):
    """One spec file: a request, response, header or data (standalone) message."""

    name: str
    kind: str
    api_key: int | None
    valid: tuple[int, int]
    flexible: tuple[int, int]
    latest_unstable: bool
    fields: tuple[F, ...]
    structs: dict[str, Struct]


'''


def specs_dir_from(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("KCP_SPECS_DIR")
    if env:
        return Path(env)
    return DEFAULT_SPECS_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kafka_chaos_proxy.codec.generate",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs-dir", help="specs directory (default: $KCP_SPECS_DIR or "
                        f"{DEFAULT_SPECS_DIR})")
    parser.add_argument("--errors-tsv", type=Path, default=None,
                        help="error table (default: errors.tsv beside the specs)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output file differs")
    args = parser.parse_args(argv)
    source = specs_dir_from(args.specs_dir)
    if not source.exists():
        # A fresh clone has no shared/ beside it: say where we looked and how to point
        # elsewhere, instead of rendering an empty schema or a traceback.
        print(f"codec.generate: no Kafka message specs at {source}: pass --specs-dir DIR "
              "(a specs directory or a kafka-clients jar) or set KCP_SPECS_DIR",
              file=sys.stderr)
        return 2
    text = render(source, args.errors_tsv)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; run python -m kafka_chaos_proxy.codec.generate",
                  file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
