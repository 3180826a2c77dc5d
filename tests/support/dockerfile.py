"""The Dockerfile and .dockerignore as data, for the tests that check the image without a Docker
engine (tests/unit/test_compose.py, tests/integration/container/test_image.py).

Why a parser of our own: no engine runs here or in CI, so nothing else would notice an ENV key
the CLI does not read, a HEALTHCHECK on the wrong port or a .dockerignore that leaves a package
out of the build context. It reads what our Dockerfile uses: stages (`FROM ... AS name`),
continuation lines, comments, JSON (exec) form, `ENV K=V ...` with `$VAR`/`${VAR}` expanded the
way Docker expands them, and HEALTHCHECK options. The .dockerignore matcher follows Docker's
rules (moby/patternmatcher): `*` and `?` stay within one path segment, `**` spans any number,
a pattern that matches a parent folder matches everything under it, `!` re-includes, and the
last pattern that matches decides.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the instruction, continuation lines joined
    line: int  # where it starts in the file


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.base}"
        return found[-1]

    def env(self, base_env: dict[str, str] | None = None) -> dict[str, str]:
        """The stage's ENV, in order, each value expanded against what came before (the base
        image's variables given as `base_env`, e.g. its PATH)."""
        env = dict(base_env or {})
        out: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for key, value in env_pairs(instruction.args, env).items():
                env[key] = out[key] = value
        return out

    def exposed(self) -> set[int]:
        ports: set[int] = set()
        for instruction in self.all("EXPOSE"):
            for item in instruction.args.split():
                number = item.split("/")[0]
                low, _, high = number.partition("-")
                ports.update(range(int(low), int(high or low) + 1))
        return ports


def instructions(text: str) -> list[Instruction]:
    """Every instruction of a Dockerfile: comments dropped, continuation lines joined."""
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue  # Docker drops comment lines even inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.strip().partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, f"the instruction at line {start} never ends"
    return out


def stages(text: str) -> list[Stage]:
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name))
            continue
        assert found, f"line {instruction.line}: {instruction.keyword} before FROM"
        found[-1].instructions.append(instruction)
    return found


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT/CMD/HEALTHCHECK CMD."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return list(value)


def expand(value: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


def env_pairs(args: str, env: dict[str, str]) -> dict[str, str]:
    """`K=V K2="v 2"` (or the legacy `K V`) with variables expanded against `env`."""
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: expand(" ".join(tokens[1:]), env)}
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        assert sep, f"ENV item without '=': {token!r}"
        out[key] = expand(value, {**env, **out})
    return out


def healthcheck(args: str) -> tuple[dict[str, str], list[str]]:
    """(options such as {"interval": "5s"}, the command's argv) of a HEALTHCHECK."""
    options: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        rest = rest.lstrip()
    word, _, command = rest.partition(" ")
    assert word.upper() == "CMD", f"HEALTHCHECK without CMD: {args!r}"
    command = command.strip()
    argv = exec_form(command) if command.startswith("[") else ["/bin/sh", "-c", command]
    return options, argv


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of the stage's COPY instructions from the build context."""
    out: list[tuple[list[str], str]] = []
    for instruction in stage.all("COPY"):
        words = shlex.split(instruction.args)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        out.append((words[:-1], words[-1]))
    return out


# ----------------------------------------------------------------------- .dockerignore


@dataclass(frozen=True)
class IgnorePattern:
    text: str
    exclusion: bool  # a `!pattern`: re-include what matches
    regex: re.Pattern[str]


def _to_regex(pattern: str) -> re.Pattern[str]:
    out, i = ["^"], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def ignore_patterns(text: str) -> list[IgnorePattern]:
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        body = line[1:].strip() if exclusion else line
        body = os.path.normpath(body).lstrip("/")
        patterns.append(IgnorePattern(line, exclusion, _to_regex(body)))
    return patterns


def ignored(path: str, patterns: list[IgnorePattern]) -> bool:
    """Whether the context path (relative, with /) is left out of the build context."""
    parts = path.split("/")
    parents = ["/".join(parts[:n]) for n in range(1, len(parts))]
    result = False
    for pattern in patterns:
        if pattern.regex.match(path) or any(pattern.regex.match(p) for p in parents):
            result = not pattern.exclusion
    return result


def stage_context(root: Path, dest: Path) -> list[str]:
    """Copy the build context of `root` (what its .dockerignore lets through) to `dest`, with
    links kept as links, as `docker build` sends it; return the paths copied."""
    ignore_file = root / ".dockerignore"
    patterns = ignore_patterns(ignore_file.read_text()) if ignore_file.exists() else []
    copied: list[str] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for name in sorted(dirs + files):
            source = here / name
            rel = source.relative_to(root).as_posix()
            if ignored(rel, patterns):
                if name in dirs:
                    dirs.remove(name)
                continue
            target = dest / rel
            if source.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(os.readlink(source))
                copied.append(rel)
                if name in dirs:
                    dirs.remove(name)  # its files come through the folder it points at
            elif source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                copied.append(rel)
    return copied


def apply_copies(context: Path, workdir: Path, stage: Stage) -> None:
    """Do the stage's COPY instructions from `context` into `workdir` (its WORKDIR), as
    Docker does: a folder's contents go into the destination folder; links stay links."""
    for sources, destination in copies(stage):
        for source in sources:
            src = context / source
            assert src.exists() or src.is_symlink(), (
                f"COPY {source}: not in the build context (.dockerignore?)")
            target = workdir / destination
            if src.is_dir() and not src.is_symlink():
                shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
            else:
                if destination.endswith("/"):
                    target = target / src.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target, follow_symlinks=False)
