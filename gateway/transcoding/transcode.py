"""Requests from HTTP parts, JSON from responses: the protobuf JSON mapping (json_format),
with path variables bound from the path (a body that names a path field differently is
refused), query parameters for what a body-less route leaves, and the fields marked
(gaitpay.common.v1.internal_only) never read from a request nor written to a response."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gaitpay.common.v1 import visibility_pb2
from gateway.transcoding.routes import Route


class BadRequest(ValueError):
    """The HTTP request does not map onto the RPC's request; `field` names the culprit."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def is_internal(field: FieldDescriptor) -> bool:
    options = field.GetOptions()
    return options.HasExtension(visibility_pb2.internal_only) and options.Extensions[visibility_pb2.internal_only]


def _field_by_json_or_proto_name(message: Descriptor, name: str) -> FieldDescriptor | None:
    field = message.fields_by_name.get(name)
    if field is not None:
        return field
    for candidate in message.fields:
        if candidate.json_name == name:
            return candidate
    return None


def _refuse_internal(data: Any, message: Descriptor, where: str) -> None:
    """A JSON object may not name an internal field, at any depth (it would be unknown to a
    partner's schema; accepting it silently would let a partner write mesh-only state)."""
    if not isinstance(data, dict) or message.full_name.startswith("google.protobuf."):
        return
    for key, value in data.items():
        field = _field_by_json_or_proto_name(message, key)
        if field is None:
            continue  # json_format reports unknown fields itself
        if is_internal(field):
            raise BadRequest(f"unknown field {where}{key}", field=f"{where}{key}")
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                continue
            items = value if field.is_repeated and isinstance(value, list) else [value]
            for item in items:
                _refuse_internal(item, field.message_type, f"{where}{key}.")


def _resolve(message: Descriptor, path: str) -> list[FieldDescriptor]:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for name in path.split("."):
        field = _field_by_json_or_proto_name(current, name) if current is not None else None
        if field is None or is_internal(field):
            raise BadRequest(f"unknown field {path}", field=path)
        fields.append(field)
        current = field.message_type
    return fields


def _as_json_value(field: FieldDescriptor, text: str, where: str) -> Any:
    """A path or query string as the JSON value json_format expects for the field."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text.lower() not in ("true", "false"):
            raise BadRequest(f"{where}: expected true or false, got {text!r}", field=where)
        return text.lower() == "true"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name.startswith("google.protobuf."):
            return text  # Timestamp, Duration, wrappers take their JSON string form
        raise BadRequest(f"{where}: a message cannot be given as a parameter", field=where)
    return text  # numbers, enums, bytes: json_format accepts the string forms


def _set_path(data: dict[str, Any], fields: list[FieldDescriptor], value: Any, repeated_ok: bool) -> None:
    node = data
    for field in fields[:-1]:
        node = node.setdefault(field.name, {})
        if not isinstance(node, dict):
            raise BadRequest(f"{field.name} is not an object", field=field.name)
    last = fields[-1]
    if last.is_repeated:
        if not repeated_ok:
            raise BadRequest(f"{last.name} is repeated and cannot be bound by the path", field=last.name)
        node.setdefault(last.name, []).append(value)
    else:
        node[last.name] = value


def _get_path(data: Mapping[str, Any], fields: list[FieldDescriptor]) -> Any:
    node: Any = data
    for field in fields:
        if not isinstance(node, Mapping):
            return None
        node = node.get(field.name, node.get(field.json_name))
    return node


def build_request(route: Route, path_values: Mapping[str, str], query: Iterable[tuple[str, str]],
                  body: bytes, *, idempotency_key: str = "") -> Message:
    """The RPC's request message from the HTTP request's parts (BadRequest when they don't fit)."""
    request_type = route.method.input_type
    data: dict[str, Any] = {}
    if route.body:
        if not body.strip():
            raise BadRequest("a JSON body is required")
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        if route.body == "*":
            if not isinstance(parsed, dict):
                raise BadRequest("the body must be a JSON object")
            _refuse_internal(parsed, request_type, "")
            data = parsed
        else:
            field = request_type.fields_by_name[route.body]
            if field.message_type is not None:
                _refuse_internal(parsed, field.message_type, f"{route.body}.")
            data = {field.name: parsed}
    elif body.strip():
        raise BadRequest(f"{route.http_method} {route.template.text} takes no body")
    bound = set()
    for variable, text in path_values.items():
        fields = _resolve(request_type, variable)
        value = _as_json_value(fields[-1], text, variable)
        given = _get_path(data, fields)
        if given is not None and given != value:
            raise BadRequest(f"{variable} in the body ({given!r}) differs from the path ({text!r})", field=variable)
        if given is not None:  # the same value under the JSON name: drop it, the path sets it
            _drop(data, fields)
        _set_path(data, fields, value, repeated_ok=False)
        bound.add(fields[0].name)
    if route.body == "*" and any(True for _ in query):
        raise BadRequest("this route takes its fields from the body, not from query parameters")
    for name, text in query:
        fields = _resolve(request_type, name)
        if fields[0].name in bound:
            raise BadRequest(f"{name} is bound by the path", field=name)
        if route.body and fields[0].name == route.body:
            raise BadRequest(f"{name} is bound by the body", field=name)
        _set_path(data, fields, _as_json_value(fields[-1], text, name), repeated_ok=True)
    request = route.request_class()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise BadRequest(str(exc)) from None
    if idempotency_key and "request_id" in request_type.fields_by_name and not getattr(request, "request_id"):
        setattr(request, "request_id", idempotency_key)
    return request


def _drop(data: dict[str, Any], fields: list[FieldDescriptor]) -> None:
    node: Any = data
    for field in fields[:-1]:
        node = node.get(field.name, node.get(field.json_name, {}))
    for key in (fields[-1].name, fields[-1].json_name):
        node.pop(key, None)


def _drop_internal_keys(data: Any, message: Descriptor) -> None:
    """Remove the keys of internal-only fields from printed JSON, at any depth."""
    if not isinstance(data, dict) or message.full_name.startswith("google."):
        return
    for field in message.fields:
        if is_internal(field):
            data.pop(field.json_name, None)
        elif field.message_type is not None and field.json_name in data:
            if field.message_type.GetOptions().map_entry:
                value_type = field.message_type.fields_by_name["value"].message_type
                if value_type is not None:
                    for item in data[field.json_name].values():
                        _drop_internal_keys(item, value_type)
            elif field.is_repeated:
                for item in data[field.json_name]:
                    _drop_internal_keys(item, field.message_type)
            else:
                _drop_internal_keys(data[field.json_name], field.message_type)


def partner_json(message: Message) -> dict[str, Any]:
    """A message as partners see it (in responses and in webhooks): lowerCamelCase names,
    every field shown (stable shapes), enums by name, internal fields gone."""
    data = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    _drop_internal_keys(data, message.DESCRIPTOR)
    return data


def render_response(route: Route, response: Message) -> Any:
    data = partner_json(response)
    if route.response_body:
        return data[response.DESCRIPTOR.fields_by_name[route.response_body].json_name]
    return data
