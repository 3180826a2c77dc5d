"""The one exception family the codec raises.

The proxy closes a connection on a CodecError and logs it, so the message must say exactly
where the bytes went wrong (api, version, direction, field path, byte offset) without the
reader having to attach a debugger. Nothing else (IndexError, struct.error, construct's
errors, UnicodeDecodeError, MemoryError) may escape a decode of untrusted bytes.
"""

from __future__ import annotations


class CodecError(Exception):
    """Bytes (or a value) that do not fit the Kafka schema."""

    def __init__(
        self,
        reason: str,
        *,
        api_key: int | None = None,
        api_version: int | None = None,
        direction: str | None = None,
        field_path: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.api_key = api_key
        self.api_version = api_version
        self.direction = direction
        self.field_path = field_path
        self.offset = offset
        super().__init__(self._render())

    def _render(self) -> str:
        where: list[str] = []
        if self.api_key is not None:
            where.append(f"api_key={self.api_key}")
        if self.api_version is not None:
            where.append(f"api_version={self.api_version}")
        if self.direction is not None:
            where.append(f"direction={self.direction}")
        if self.field_path is not None:
            where.append(f"field={self.field_path or '<top>'}")
        if self.offset is not None:
            where.append(f"offset={self.offset}")
        return f"{self.reason} ({', '.join(where)})" if where else self.reason

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructor: pickling (e.g. across processes in tests) needs help.
        return (_rebuild, (type(self), self.reason, self.__dict__.copy()))


def _rebuild(cls: type[CodecError], reason: str, state: dict[str, object]) -> CodecError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._render())
    return err


class UnknownApiError(CodecError, ValueError):
    """An api key, name or version the schema does not know.

    Also a ValueError so that callers validating user input (CLI, admin API) can catch the
    usual exception type.
    """


class UnknownErrorCodeError(CodecError, ValueError):
    """A Kafka error name or code not in errors.tsv."""
