"""An OpenAPI 3.0 document from the same descriptors the routes come from.

Two schemas per message: `<Name>` describes what the gateway writes (every field, no
rules: responses print every field, enums by name, 64-bit integers as strings) and
`<Name>Input` what it reads, with the message's buf.validate rules as JSON Schema keywords
so that a client, or a fuzzer, knows what the service will accept. Internal-only fields
appear in neither, and objects are closed (additionalProperties: false), so a field that
leaked into a response would be a schema violation.
"""

from __future__ import annotations

from typing import Any, Iterable

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from buf.validate import validate_pb2
from gateway.transcoding.routes import Route, field_path
from gateway.transcoding.transcode import is_internal

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ERROR_STATUSES = {"400": "The request breaks a rule of the contract (details: google.rpc.BadRequest).",
                  "401": "No API key, or one that is unknown, revoked or expired.",
                  "403": "The API key is not bound to this store.",
                  "404": "No such resource in this store.",
                  "409": "The Idempotency-Key (request_id) was used for a different request.",
                  "429": "Rate limit of this API key reached; retry after Retry-After seconds.",
                  "500": "Unexpected failure; nothing about it is disclosed.",
                  "503": "A service behind the gateway is unavailable; retry with backoff.",
                  "504": "A service behind the gateway did not answer in time."}
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
_UINT32 = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
_UINT64 = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_NUMBER_RULES = {FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_SINT32: "sint32",
                 FieldDescriptor.TYPE_SFIXED32: "sfixed32", FieldDescriptor.TYPE_UINT32: "uint32",
                 FieldDescriptor.TYPE_FIXED32: "fixed32"}
_WELL_KNOWN = {"google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
               "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"}}


def _rules(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    if options.HasExtension(validate_pb2.field):
        return options.Extensions[validate_pb2.field]
    return None


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, message: Descriptor, strict: bool, exclude: frozenset[str] = frozenset(),
            optional: frozenset[str] = frozenset()) -> dict[str, Any]:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        name = message.name.removesuffix("Request") + "Body" if exclude else message.name + ("Input" if strict else "")
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursion ends here
            self.components[name] = self._object(message, strict, exclude, optional)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(self, message: Descriptor, strict: bool, exclude: frozenset[str],
                optional: frozenset[str]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in message.fields:
            if is_internal(field) or field.name in exclude:
                continue
            rules = _rules(field) if strict else None
            properties[field.json_name] = self.field(field, strict, rules)
            if strict and rules is not None and _is_required(field, rules) and field.name not in optional:
                required.append(field.json_name)
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        return schema

    def field(self, field: FieldDescriptor, strict: bool, rules: validate_pb2.FieldRules | None) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value, strict, None)}
        if field.is_repeated:
            schema: dict[str, Any] = {"type": "array"}
            item_rules = None
            if rules is not None and rules.HasField("repeated"):
                repeated = rules.repeated
                if repeated.HasField("min_items"):
                    schema["minItems"] = repeated.min_items
                if repeated.HasField("max_items"):
                    schema["maxItems"] = repeated.max_items
                if repeated.unique:
                    schema["uniqueItems"] = True
                item_rules = repeated.items if repeated.HasField("items") else None
            schema["items"] = self.single(field, strict, item_rules)
            return schema
        return self.single(field, strict, rules)

    def single(self, field: FieldDescriptor, strict: bool, rules: validate_pb2.FieldRules | None) -> dict[str, Any]:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            return self.ref(field.message_type, strict)
        if kind == FieldDescriptor.TYPE_ENUM:
            return _enum(field.enum_type, rules if strict else None)
        if kind == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if kind == FieldDescriptor.TYPE_STRING:
            return _string(rules)
        if kind == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "format": "byte"}
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return {"type": "number"}
        if kind in _INT64:
            return {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,18}$"}
        if kind in _UINT64:
            return {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,19}$"}
        low, high = (0, 2**32 - 1) if kind in _UINT32 else (-(2**31), 2**31 - 1)
        schema = {"type": "integer", "format": "int64" if kind in _UINT32 else "int32", "minimum": low,
                  "maximum": high}
        if rules is not None and kind in _NUMBER_RULES and rules.HasField(_NUMBER_RULES[kind]):
            number = getattr(rules, _NUMBER_RULES[kind])
            if number.HasField("lte"):
                schema["maximum"] = min(high, number.lte)
            if number.HasField("lt"):
                schema["maximum"] = min(high, number.lt - 1)
            if number.HasField("gte"):
                schema["minimum"] = max(low, number.gte)
            if number.HasField("gt"):
                schema["minimum"] = max(low, number.gt + 1)
            if getattr(number, "in"):
                schema["enum"] = list(getattr(number, "in"))
        return schema


def _string(rules: validate_pb2.FieldRules | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if rules is None or not rules.HasField("string"):
        return schema
    string = rules.string
    if string.HasField("min_len"):
        schema["minLength"] = string.min_len
    if string.HasField("max_len"):
        schema["maxLength"] = string.max_len
    if string.HasField("pattern"):
        schema["pattern"] = string.pattern
    if string.uuid:
        schema["format"] = "uuid"
        schema["pattern"] = UUID_PATTERN
    allowed = list(getattr(string, "in"))
    if allowed:
        schema["enum"] = allowed
    return schema


def _enum(enum: EnumDescriptor, rules: validate_pb2.FieldRules | None) -> dict[str, Any]:
    numbers = [value.number for value in enum.values]
    if rules is not None and rules.HasField("enum"):
        excluded = set(rules.enum.not_in)
        numbers = [n for n in numbers if n not in excluded]
    return {"type": "string", "enum": [enum.values_by_number[n].name for n in numbers]}


def _is_required(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> bool:
    """Whether leaving the field out is certain to be refused by the service's rules."""
    if rules.required:
        return True
    if field.is_repeated:
        return rules.HasField("repeated") and rules.repeated.min_items > 0
    if rules.HasField("string"):
        s = rules.string
        return s.min_len > 0 or s.uuid or (bool(list(getattr(s, "in"))) and "" not in getattr(s, "in"))
    if rules.HasField("enum"):
        return 0 in rules.enum.not_in
    return False


def _parameter(route: Route, name: str, location: str, schemas: _Schemas) -> dict[str, Any]:
    fields = field_path(route.method.input_type, name)
    assert fields is not None  # routes_of checked every path variable
    field = fields[-1]
    schema = schemas.field(field, True, _rules(field))
    return {"name": name if location == "path" else field.json_name, "in": location,
            "required": location == "path" or (_rules(field) is not None and _is_required(field, _rules(field))),
            "schema": schema}


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    request = route.method.input_type
    parameters = [_parameter(route, v, "path", schemas) for v in route.template.variables]
    bound = {v.split(".")[0] for v in route.template.variables}
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.method.name,
        "tags": [route.method.containing_service.name],
    }
    if not route.body:
        for field in request.fields:
            if field.name in bound or is_internal(field) or field.type == FieldDescriptor.TYPE_MESSAGE:
                continue
            parameters.append(_parameter(route, field.name, "query", schemas))
    elif route.body == "*":
        # requestId may come from the Idempotency-Key header instead.
        body = schemas.ref(request, True, exclude=frozenset(bound), optional=frozenset({"request_id"}))
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    else:
        field = request.fields_by_name[route.body]
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schemas.field(field, True, _rules(field))}}}
    if "request_id" in request.fields_by_name and "request_id" not in bound:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "description": "Used as requestId when the body has none (one of the two is "
                                          "required): the same key with the same request replays the first "
                                          "answer; with another request it is refused (409).",
                           "schema": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}})
    operation["parameters"] = parameters
    response = schemas.ref(route.method.output_type, False)
    if route.response_body:
        response = schemas.field(route.method.output_type.fields_by_name[route.response_body], False, None)
    operation["responses"] = {"200": {"description": "OK", "content": {"application/json": {"schema": response}}},
                              **{code: {"$ref": f"#/components/responses/E{code}"} for code in ERROR_STATUSES},
                              "default": {"$ref": "#/components/responses/E500"}}
    return operation


def document(routes: Iterable[Route], *, title: str, version: str, description: str = "") -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template.openapi_path, {})[route.http_method.lower()] = _operation(route, schemas)
    status_schema = {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "integer", "description": "gRPC status code number"},
                       "message": {"type": "string"},
                       "details": {"type": "array", "items": {
                           "type": "object", "required": ["@type"],
                           "properties": {"@type": {"type": "string"}}, "additionalProperties": True}}},
    }
    responses: dict[str, Any] = {}
    for code, text in ERROR_STATUSES.items():
        responses[f"E{code}"] = {"description": text,
                                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}
    responses["E429"]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1},
                                                    "description": "Seconds until a request will be admitted."}}
    responses["E401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": {**schemas.components, "Status": status_schema},
            "responses": responses,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "gpk_<key id>_<secret>"}},
        },
        "security": [{"apiKey": []}],
    }


def scoped_to_stores(doc: dict[str, Any], variable: str, values: list[str]) -> dict[str, Any]:
    """A copy of the document whose path parameter `variable` may only take `values` (a
    partner's own document names its stores)."""
    import copy

    scoped = copy.deepcopy(doc)
    for operations in scoped["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == variable:
                    parameter["schema"] = {"type": "string", "enum": list(values)}
    return scoped
