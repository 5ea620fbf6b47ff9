"""The JSON-RPC API described once: every method is declared with its parameters and result
as JSON Schema, its summary and the errors it may answer. From that one declaration the
registry validates every call's parameters (``jsonschema``, Draft 2020-12) before the handler
runs, ``rpc.discover`` answers an OpenRPC 1.x document (every event type included, under
``x-events``), and ``torv rpc --help METHOD`` prints a method's parameters.

A handler gets its parameters validated, defaults filled in; what a schema cannot say (an
address of this node's network, a listing that exists) the service checks and refuses with a
``LocalProtocolError`` naming the field. A duplicate method name is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from protocol.errors import LocalProtocolError, TorvError
from protocol.identity import is_peer_id

Schema = dict[str, Any]


class Args(dict[str, Any]):
    """A call's parameters, validated, defaults filled in; ``given`` names those the caller
    gave (an update changes only those)."""

    given: frozenset[str] = frozenset()

    def changes(self, *leave: str) -> dict[str, Any]:
        return {k: self[k] for k in self.given if k not in leave}


Handler = Callable[[Args], Awaitable[Any]]
OPENRPC_VERSION = "1.2.6"
MESSAGE = "x-message"  # a schema's own words for a value it refuses

# JSON-RPC error codes (listed in docs/api.md and in every OpenRPC document)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = 1000
NETWORK_ERROR = 1001
PEER_ERROR = 1002
WALLET_LOCKED = 1003
WALLET_ERROR = 1004
NO_CHAIN = 1005
CHAIN_ERROR = 1006
REFUSED = 1007
NOT_ALLOWED = 1008
LIMIT = 1009
ERROR_MESSAGES = {
    PARSE_ERROR: "the body is not JSON",
    INVALID_REQUEST: "not a JSON-RPC 2.0 request",
    METHOD_NOT_FOUND: "no such method",
    INVALID_PARAMS: "a parameter is missing, unknown or wrong (data.field names it)",
    INTERNAL_ERROR: "the node failed (see its log)",
    NOT_FOUND: "the thing asked for does not exist here or on the network",
    NETWORK_ERROR: "a peer could not be reached",
    PEER_ERROR: "a peer answered something invalid",
    WALLET_LOCKED: "the wallet is locked",
    WALLET_ERROR: "the wallet cannot do it (no wallet, funds, passphrase)",
    NO_CHAIN: "the node runs without a chain backend",
    CHAIN_ERROR: "the chain backend failed or refused",
    REFUSED: "the wallet refused to sign",
    NOT_ALLOWED: "the order does not allow that now",
    LIMIT: "too many requests of this kind now",
}


class RpcError(TorvError):
    """An answer of the API's own: a code of ``ERROR_MESSAGES`` and its words."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class ErrorCodes:
    """Which code answers which error: each service names the error classes it raises
    (``Service.rpc_errors``); the most specific class an error is an instance of wins, and an
    error nobody named is an internal error, told in its own words (never a traceback)."""

    def __init__(self, table: Mapping[type[BaseException], int] | None = None) -> None:
        self._table: dict[type[BaseException], int] = dict(table or {})

    def add(self, table: Mapping[type[BaseException], int]) -> None:
        for kind, code in table.items():
            if self._table.get(kind, code) != code:
                raise LocalProtocolError(f"{kind.__name__} already answers with code "
                                         f"{self._table[kind]}")
            self._table[kind] = code

    def error(self, exc: TorvError) -> RpcError:
        if isinstance(exc, RpcError):
            return exc
        code = next((self._table[k] for k in type(exc).__mro__ if k in self._table),
                    INTERNAL_ERROR)
        data = None
        if isinstance(exc, LocalProtocolError) and exc.field:
            data = {"field": exc.field}
        return RpcError(code, str(exc), data)


# ---------------------------------------------------------------------- schema helpers
def string(max_len: int = 100_000, min_len: int = 0, pattern: str | None = None,
           message: str | None = None, description: str = "") -> Schema:
    s: Schema = {"type": "string", "maxLength": max_len}
    if min_len:
        s["minLength"] = min_len
    if pattern is not None:
        s["pattern"] = f"^(?:{pattern})$"
    if message:
        s[MESSAGE] = message
    if description:
        s["description"] = description
    return s


def integer(minimum: int = 0, maximum: int = 2**63 - 1, description: str = "") -> Schema:
    s: Schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if description:
        s["description"] = description
    return s


def boolean(description: str = "") -> Schema:
    return {"type": "boolean", **({"description": description} if description else {})}


def enum(values: list[str] | tuple[str, ...], description: str = "") -> Schema:
    s: Schema = {"type": "string", "enum": list(values)}
    if description:
        s["description"] = description
    return s


def array(items: Schema, max_items: int, min_items: int = 0, unique: bool = False,
          description: str = "") -> Schema:
    s: Schema = {"type": "array", "items": items, "maxItems": max_items}
    if min_items:
        s["minItems"] = min_items
    if unique:
        s["uniqueItems"] = True
    if description:
        s["description"] = description
    return s


def obj(properties: Mapping[str, Schema], required: tuple[str, ...] = (),
        additional: bool = False, description: str = "") -> Schema:
    s: Schema = {"type": "object", "properties": dict(properties),
                 "additionalProperties": additional}
    if required:
        s["required"] = list(required)
    if description:
        s["description"] = description
    return s


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


ANY: Schema = {}
OBJECT: Schema = {"type": "object"}
FORMATS = FormatChecker(())
FORMATS.checks("peer-id")(is_peer_id)  # an Ed25519 peer id whose key decodes
PEER_ID = {**string(52, 52, r"12D3KooW[1-9A-HJ-NP-Za-km-z]{44}", "must be a peer id (12D3KooW...)",
                    "an Ed25519 peer id"), "format": "peer-id"}
LISTING_ID = string(32, 32, "[0-9a-f]{32}", "must be a listing id (32 hex characters)")
ORDER_ID = string(64, 64, "[0-9a-f]{64}", "must be an order id (64 hex characters)")
TXID = string(64, 64, "[0-9a-f]{64}", "must be 64 lower-case hex characters", "a txid")
AMOUNT = integer(0, description="base units (satoshis, litoshis)")
MONEY = obj({"amount": AMOUNT, "currency": string(10, 3)}, ("amount", "currency"))


# ---------------------------------------------------------------------- methods
@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    required: bool = False
    default: Any = None
    description: str = ""


@dataclass
class Method:
    name: str
    summary: str
    params: tuple[Param, ...]
    result: Schema
    handler: Handler
    errors: tuple[int, ...] = ()
    min_given: int = 0  # at least this many parameters (an update must change something)
    owner: str = "the core"  # the service that registered it
    _validator: Draft202012Validator = field(init=False, repr=False)
    _result_validator: Draft202012Validator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._validator = Draft202012Validator(self.params_schema, format_checker=FORMATS)
        self._result_validator = Draft202012Validator(self.result, format_checker=FORMATS)

    @property
    def params_schema(self) -> Schema:
        s = obj({p.name: p.schema for p in self.params},
                tuple(p.name for p in self.params if p.required))
        if self.min_given:
            s["minProperties"] = self.min_given
        return s

    def validate(self, params: dict[str, Any]) -> Args:
        """The call's parameters checked against the schema, defaults filled in; a
        LocalProtocolError naming the first field that fails."""
        error = next(iter(sorted(self._validator.iter_errors(params),
                                 key=lambda e: list(e.absolute_path))), None)
        if error is not None:
            raise _refusal(error, self)
        out = Args({p.name: p.default for p in self.params if not p.required})
        out.update(params)
        out.given = frozenset(params)
        return out

    def result_errors(self, result: Any) -> list[str]:
        """Where ``result`` departs from the declared result schema (the tests run every node
        with this check on, so the declarations cannot drift from the answers)."""
        return [f"{'.'.join(str(x) for x in e.absolute_path) or 'result'}: {e.message[:200]}"
                for e in self._result_validator.iter_errors(result)]


_TYPE_WORDS = {"integer": "an integer", "string": "a string", "boolean": "true or false",
               "object": "an object", "array": "a list", "number": "a number", "null": "null"}


def _refusal(error: ValidationError, method: Method) -> LocalProtocolError:
    if error.validator in ("anyOf", "oneOf") and error.context:  # e.g. nullable: say why the
        inner = best_match(e for e in error.context if e.validator != "type"   # value failed
                           or e.validator_value != "null")
        if inner is not None:
            return _refusal(inner, method)
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and not path:
        allowed = sorted(p.name for p in method.params)
        unknown = sorted(set(error.instance) - set(allowed))
        name = unknown[0] if unknown else "params"
        return LocalProtocolError(f"{name}: unknown parameter (allowed: {allowed})", field=name)
    if error.validator == "minProperties" and not path:
        return LocalProtocolError("params: nothing to change (give at least one of "
                                  f"{[p.name for p in method.params if not p.required]})",
                                  field="params")
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "params"
        return LocalProtocolError(f"{'.'.join([*path, missing])}: is required",
                                  field=path[0] if path else missing)
    name = ".".join(path) or "params"
    own = error.schema.get(MESSAGE) if isinstance(error.schema, dict) else None
    kind = _TYPE_WORDS.get(str(error.validator_value), "of another type")
    words = own or {"type": f"must be {kind}",
        "maxLength": f"must be at most {error.validator_value} characters",
        "minLength": f"must be at least {error.validator_value} characters",
        "minimum": f"must be at least {error.validator_value}",
        "maximum": f"must be at most {error.validator_value}",
        "maxItems": f"must hold at most {error.validator_value} items",
        "minItems": f"must hold at least {error.validator_value} items",
        "uniqueItems": "names an item twice",
        "enum": f"must be one of {error.validator_value}",
    }.get(str(error.validator), str(error.message)[:200])
    return LocalProtocolError(f"{name}: {words}", field=path[0] if path else None)


class ApiRegistry:
    """The methods of the API, by name; a duplicate is refused."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def register(self, m: Method, owner: str = "the core") -> None:
        if m.name in self._methods:
            raise LocalProtocolError(f"RPC method {m.name} is already registered by "
                                     f"{self._methods[m.name].owner}")
        m.owner = owner
        self._methods[m.name] = m

    def get(self, name: str) -> Method | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)

    def methods(self) -> list[Method]:
        return [self._methods[n] for n in self.names()]


# ---------------------------------------------------------------------- OpenRPC
def _public(schema: Schema) -> Schema:
    """A schema as published: our own annotations left out."""
    if isinstance(schema, dict):
        return {k: _public(v) for k, v in schema.items() if k != MESSAGE}
    if isinstance(schema, list):
        return [_public(v) for v in schema]  # type: ignore[return-value]
    return schema


def openrpc(registry: ApiRegistry, version: str, events: list[tuple[str, str, Schema]],
            errors: Mapping[int, str] = ERROR_MESSAGES) -> dict[str, Any]:
    """The OpenRPC document of every registered method, and the event types of ``/ws``."""
    out = []
    for m in registry.methods():
        out.append({
            "name": m.name,
            "summary": m.summary,
            "paramStructure": "by-name",
            "params": [{"name": p.name, "required": p.required,
                        "schema": _public(p.schema),
                        **({"description": p.description} if p.description else {})}
                       for p in m.params],
            "result": {"name": "result", "schema": _public(m.result)},
            "errors": [{"code": c, "message": errors[c]}
                       for c in (INVALID_PARAMS, *m.errors) if c in errors],
        })
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "Torv node JSON-RPC API", "version": version},
        "methods": out,
        "components": {"errors": {str(c): {"code": c, "message": msg}
                                  for c, msg in sorted(errors.items())}},
        "x-events": [{"type": t, "summary": s, "schema": _public(schema)}
                     for t, s, schema in events],
    }
