"""Routes from the google.api.http annotations of gRPC methods.

A path template such as /v1/stores/{store_id}/sessions/{session_id} becomes a regular
expression whose named groups are request fields. Supported: literal segments, {field},
{field=*}, {field=**} and {field=literal/*} forms, nested field paths (a.b) and a trailing
:verb. Every method with an annotation gets a route per binding (additional_bindings too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=([^}]*))?\}")
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


class RouteError(ValueError):
    """An annotation the gateway cannot serve (it refuses to start rather than guess)."""


@dataclass(frozen=True)
class PathTemplate:
    text: str
    regex: re.Pattern[str]
    # Field paths bound by the path, in order ("store_id", "session_id").
    variables: tuple[str, ...]

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        return {name: found.group(f"v{i}") for i, name in enumerate(self.variables)}

    @property
    def openapi_path(self) -> str:
        """The template as OpenAPI writes it: /v1/stores/{store_id}."""
        return _VARIABLE.sub(lambda m: "{" + m.group(1) + "}", self.text)


def _segment_regex(pattern: str) -> str:
    parts = []
    for piece in pattern.split("/"):
        if piece == "*":
            parts.append("[^/]+")
        elif piece == "**":
            parts.append(".+")
        elif "*" in piece or "{" in piece:
            raise RouteError(f"unsupported path segment {piece!r}")
        else:
            parts.append(re.escape(piece))
    return "/".join(parts)


def parse_template(text: str) -> PathTemplate:
    if not text.startswith("/"):
        raise RouteError(f"path template {text!r} must start with /")
    regex, variables, last = [], [], 0
    for i, found in enumerate(_VARIABLE.finditer(text)):
        literal = text[last:found.start()]
        if "{" in literal or "}" in literal or "*" in literal:
            raise RouteError(f"unsupported path template {text!r}")
        regex.append(re.escape(literal))
        regex.append(f"(?P<v{i}>{_segment_regex(found.group(2) or '*')})")
        variables.append(found.group(1))
        last = found.end()
    tail = text[last:]
    if "{" in tail or "}" in tail or "*" in tail:
        raise RouteError(f"unsupported path template {text!r}")
    regex.append(re.escape(tail))
    return PathTemplate(text, re.compile("".join(regex)), tuple(variables))


@dataclass(frozen=True)
class Route:
    http_method: str  # upper case
    template: PathTemplate
    # "" (no body: fields come from the path and the query), "*" (the whole request) or a field.
    body: str
    response_body: str
    method: MethodDescriptor

    @property
    def full_method(self) -> str:
        """The gRPC method path: /package.Service/Method."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.output_type)

    @property
    def operation_id(self) -> str:
        return self.method.name

    def match(self, path: str) -> dict[str, str] | None:
        return self.template.match(path)


def field_path(message: Descriptor, path: str) -> list[FieldDescriptor] | None:
    """The fields a dotted path (proto names) goes through, or None where it leads nowhere."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for name in path.split("."):
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            return None
        fields.append(field)
        current = field.message_type
    return fields


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind in _HTTP_METHODS:
        verb, text = kind.upper(), getattr(rule, kind)
    elif kind == "custom":
        verb, text = rule.custom.kind.upper(), rule.custom.path
    else:
        raise RouteError(f"{method.full_name}: http rule without a pattern")
    template = parse_template(text)
    request = method.input_type
    for variable in template.variables:
        if field_path(request, variable) is None:
            raise RouteError(f"{method.full_name}: path variable {variable!r} is not a field of {request.full_name}")
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise RouteError(f"{method.full_name}: body {rule.body!r} is not a field of {request.full_name}")
    if verb == "GET" and rule.body:
        raise RouteError(f"{method.full_name}: a GET has no body")
    if method.client_streaming or method.server_streaming:
        raise RouteError(f"{method.full_name}: streaming methods are not served over REST")
    return Route(verb, template, rule.body, rule.response_body, method)


def routes_of(services: Iterable[ServiceDescriptor]) -> list[Route]:
    """Every annotated method of the services, as routes (unannotated methods stay gRPC-only)."""
    routes: list[Route] = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule = options.Extensions[annotations_pb2.http]
            for binding in [rule, *rule.additional_bindings]:
                routes.append(_route(method, binding))
    seen: dict[tuple[str, str], str] = {}
    for route in routes:
        key = (route.http_method, route.template.regex.pattern)
        if key in seen:
            raise RouteError(f"{route.method.full_name} and {seen[key]} bind the same {key[0]} {route.template.text}")
        seen[key] = route.method.full_name
    return routes
