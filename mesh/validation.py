"""Request validation from the protovalidate rules declared in the protos."""

from __future__ import annotations

import protovalidate
from google.protobuf.message import Message

from mesh.errors import InvalidArgument

_validator = protovalidate.Validator()


def _field_path(violation: protovalidate.Violation) -> str:
    parts = []
    for element in violation.proto.field.elements:
        name = element.field_name
        subscript = element.subscript  # a Oneof(field=..., value=...) or None
        if subscript is not None:
            value = subscript.value
            name += f"[{value!r}]" if isinstance(value, str) else f"[{value}]"
        parts.append(name)
    return ".".join(parts) or "(message)"


def violations(message: Message) -> list[tuple[str, str]]:
    """(field path, what is wrong) for each broken rule; empty when the message is valid."""
    found = _validator.collect_violations(message)
    return [(_field_path(v), v.proto.message or v.proto.rule_id) for v in found]


def check(message: Message) -> None:
    """Raise InvalidArgument (VALIDATION_FAILED, with a BadRequest) if any rule is broken."""
    broken = violations(message)
    if broken:
        summary = "; ".join(f"{path}: {what}" for path, what in broken[:5])
        raise InvalidArgument(
            f"invalid {message.DESCRIPTOR.name}: {summary}",
            field_violations=broken,
            metadata={"message": message.DESCRIPTOR.full_name},
        )
