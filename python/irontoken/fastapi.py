"""FastAPI dependencies (extra ``irontoken[fastapi]``): API keys and Bearer
JWTs checked by irontoken, with the status codes and headers clients expect.

    from fastapi import Depends, FastAPI
    from irontoken.aio import AsyncTokenManager
    from irontoken.fastapi import require_api_key, require_jwt

    tm = AsyncTokenManager("keys.db")
    app = FastAPI()

    @app.get("/items")
    async def items(key=Depends(require_api_key(tm, scopes=["read"], quota={"requests": 1}))):
        return {"owner": key.owner}

Answers, never a 500 for a bad credential and never the credential in a
body, a header or a log line:

- ``401`` missing, malformed, unknown, expired, disabled or revoked
  (``WWW-Authenticate: ApiKey header="X-API-Key"`` / ``Bearer ...``);
- ``403`` a required scope is missing, or the key may not call the model
  the request names (``MODEL_NOT_ALLOWED``, with ``model=``);
- ``413`` the request declares more tokens than the key allows at once
  (``REQUEST_TOO_LARGE``, with ``tokens=``);
- ``429`` rate limit or quota, with ``Retry-After`` and the IETF
  ``RateLimit-Policy`` / ``RateLimit`` headers (on successful answers too);
- ``503`` with ``Retry-After`` when the store cannot answer (``STORAGE``,
  ``BUSY``): the key was not judged.

The body is ``{"detail": {"code": ..., "message": ...}}`` with the reason
code (``NOT_FOUND``, ``REVOKED``, ``RATE_LIMITED``, ``JWT_EXPIRED``...). The
verified record (or JWT claims) is the dependency's value and also
``request.state.irontoken``.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Literal, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from fastapi import HTTPException, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ._native import (
    Authorization,
    KeyRecord,
    TokenManager,
    VerifyResult,
    http_api_key_answer,
    http_bearer_answer,
    http_capability_answer,
    http_dpop_answer,
    http_llm_body_fields,
    http_llm_request,
    http_status_of,
    is_credential_param,
    token_binding,
    request_id_from_header,
)
from .aio import AsyncTokenManager
from .errors import (
    BusyError,
    DPoPBindingError,
    InvalidArgumentError,
    InvalidTokenError,
    IronTokenError,
    StorageError,
)
from .jwt import JwtVerifier, PyJWKClient
from .migrate import AsyncLegacyCheck, upgradable, verify_or_upgrade_async
from .types import Amounts

__all__ = [
    "require_api_key",
    "require_jwt",
    "require_capability",
    "record_llm_usage",
    "rate_limit_headers",
    "credential_in_query",
    "install_error_handlers",
    "document_openapi",
    "guard_responses",
]

Manager = Union[TokenManager, AsyncTokenManager]
#: Where a dependency finds its manager: the manager itself, a function
#: returning it (called per request: for a manager made in the lifespan), or
#: None for ``request.app.state.irontoken``.
ManagerSource = Union[Manager, Callable[[], Manager], None]
#: Where a guard reads the model a request calls: ``"body"`` (the JSON
#: body's ``"model"``, as OpenAI- and Anthropic-shaped requests carry it) or a
#: function of the request (sync or async) returning the name.
ModelSource = Union[Literal["body"], Callable[[Request], Any]]
#: Where a guard reads the tokens a request declares: ``"body"`` (the JSON
#: body's ``max_tokens``, ``max_completion_tokens`` or ``max_output_tokens``)
#: or a function of the request (sync or async) returning the count.
TokensSource = Union[Literal["body"], Callable[[Request], Any]]

#: The body fields an LLM guard reads (core's list): only these go to core.
_LLM_FIELDS = tuple(http_llm_body_fields())


def _manager(source: ManagerSource, request: Request) -> Manager:
    if isinstance(source, (TokenManager, AsyncTokenManager)):
        return source
    if source is None:
        found = getattr(request.app.state, "irontoken", None)
        if not isinstance(found, (TokenManager, AsyncTokenManager)):
            raise RuntimeError(
                "no irontoken manager: set app.state.irontoken (in the lifespan, say) or pass one to the dependency"
            )
        return found
    made = source()
    if not isinstance(made, (TokenManager, AsyncTokenManager)):
        raise RuntimeError("the manager callable returned something else than a TokenManager or AsyncTokenManager")
    return made

def _error(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> HTTPException:
    return HTTPException(status_code=status, detail={"code": code, "message": message}, headers=headers)


def _refusal(answer: Tuple[int, Optional[str], Optional[str], Dict[str, str]]) -> HTTPException:
    """The HTTPException of a refusal core worded (status, code, message, headers)."""
    status, code, message, headers = answer
    return _error(status, code or "", message or "", headers or None)


def _unavailable(e: IronTokenError) -> HTTPException:
    # The store did not answer: the credential was not judged. No message
    # details (they describe the server, not the request).
    # Core answers 503 with Retry-After for any code that is not a refusal.
    return _refusal(http_bearer_answer(e.code, []))


def credential_in_query(request: Request, header: str = "X-API-Key") -> bool:
    """Whether the request's query string holds a credential-looking
    parameter: its name (``api_key``, ``token``, the header's name...) or a
    value shaped like an irontoken key or a JWT."""
    # A credential in a URL lands in access logs, proxies and browser
    # history; the rule (names and shapes) is core's, as in the Node adapters.
    return any(is_credential_param(name, value, header) for name, value in request.query_params.multi_items())


def _query_refusal() -> HTTPException:
    return _refusal(http_bearer_answer("CREDENTIAL_IN_QUERY", []))


def rate_limit_headers(limits: Sequence[Mapping[str, Any]], state: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """The IETF ``RateLimit-Policy`` and ``RateLimit`` headers of a key's
    limits (``record.rate_limits``) and a check's answer (``result.rate_limit``);
    none for a degraded (fail-open) answer. Worded by core (``irontoken::http``)."""
    if not limits or not state:
        return {}
    return dict(http_api_key_answer("", [], {"reason": "VALID", "limits": list(limits), "rate_limit": dict(state)})[3])


class _Llm(NamedTuple):
    """What an LLM request declares: the model it calls, its tokens."""

    model: Optional[str] = None
    tokens: Optional[int] = None


async def _llm_body(request: Request) -> Optional[Dict[str, Any]]:
    """The LLM fields of the request's JSON body; None when it is not a JSON object."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return {f: body[f] for f in _LLM_FIELDS if f in body} if isinstance(body, dict) else None


async def _call(source: Callable[[Request], Any], request: Request) -> Any:
    value = source(request)
    return await value if inspect.isawaitable(value) else value


async def _llm_of(request: Request, model: Optional[ModelSource], tokens: Optional[TokensSource]) -> _Llm:
    """The model and tokens a request declares, read where the guard was told;
    the rule (which fields, what is valid, the 400 that fails closed) is core's."""
    body = await _llm_body(request) if "body" in (model, tokens) else None

    async def read(source: Optional[Union[str, Callable[[Request], Any]]]) -> Tuple[str, Any]:
        if source is None:
            return "", None
        if source == "body":
            return "body", None
        return "value", await _call(source, request)  # type: ignore[arg-type]

    (model_from, model_value), (tokens_from, tokens_value) = await read(model), await read(tokens)
    answer, name, count = http_llm_request(body, model_from, model_value, tokens_from, tokens_value)
    if answer is not None:
        raise _refusal(answer)
    return _Llm(name, count)


async def _verify(
    manager: Manager, key: str, scopes: List[str], rate_limit: bool, quota: Optional[Amounts], llm: _Llm = _Llm()
) -> VerifyResult:
    checks: Dict[str, Any] = dict(required_scopes=scopes, rate_limit=rate_limit, quota=quota)
    if llm.model is not None:
        checks["model"] = llm.model
    if llm.tokens is not None:
        checks["tokens"] = llm.tokens
    with_checks = rate_limit or quota or llm != _Llm()
    if isinstance(manager, AsyncTokenManager):
        if with_checks:
            return await manager.verify_key_with(key, **checks)
        return await manager.verify_key(key, scopes)
    # On the event loop when no write or round trip is needed (SQLite, the
    # PostgreSQL caches; no quota or shared rate limit to apply), else off it.
    if with_checks:
        now = manager.try_verify_key_with(key, **checks)
        if now is not None:
            return now
        return await run_in_threadpool(lambda: manager.verify_key_with(key, **checks))
    answer = manager.try_verify_key(key, scopes)
    if answer is not None:
        return answer
    return await run_in_threadpool(manager.verify_key, key, scopes)


def require_api_key(
    manager: ManagerSource = None,
    *,
    scopes: Sequence[str] = (),
    header: str = "X-API-Key",
    rate_limit: bool = True,
    quota: Optional[Amounts] = None,
    refuse_query_credentials: bool = True,
    legacy_check: Optional[AsyncLegacyCheck] = None,
    model: Optional[ModelSource] = None,
    tokens: Optional[TokensSource] = None,
) -> Callable[..., Awaitable[KeyRecord]]:
    """A dependency that verifies the key in ``header`` — with its scopes,
    its own rate limits (``rate_limit``) and, when given, consumes ``quota``
    amounts (e.g. ``{"requests": 1}``) — and returns the key's record.

    For LLM routes, ``model`` and ``tokens`` say where the request names its
    model and declares its tokens (``"body"``: an OpenAI-shaped JSON body, or
    a function of the request): the key's model allow-list and
    ``max_tokens_per_request`` apply (403 ``MODEL_NOT_ALLOWED``, 413
    ``REQUEST_TOO_LARGE``) and its limits in tokens count them.
    :func:`record_llm_usage` settles the declared count against the actual
    one after the call.

    ``manager`` is a manager, a function returning one (called per request),
    or None for ``request.app.state.irontoken`` (a manager made in the
    lifespan). With ``legacy_check`` (the old system's check, as for
    :func:`irontoken.migrate.verify_or_upgrade_async`), a key irontoken does
    not know is checked by the old system and imported on its first use. A
    request with a credential in its query string is answered 400
    ``CREDENTIAL_IN_QUERY`` unless ``refuse_query_credentials=False``."""
    wanted = [str(s) for s in scopes]
    challenge = f'ApiKey header="{header}"'
    scheme = APIKeyHeader(name=header, auto_error=False, description="An irontoken API key", scheme_name="irontokenApiKey")

    async def dependency(
        request: Request, response: Response, key: Optional[str] = Security(scheme, scopes=wanted)
    ) -> KeyRecord:
        if refuse_query_credentials and credential_in_query(request, header):
            raise _query_refusal()
        if not key:
            raise _refusal(http_api_key_answer(header, wanted, {"reason": "MISSING"}))
        tm = _manager(manager, request)
        llm = await _llm_of(request, model, tokens) if (model or tokens) else _Llm()
        try:
            result = await _verify(tm, key, wanted, rate_limit, quota, llm)
            if legacy_check is not None and not result.valid and upgradable(key, result.reason):
                upgraded = await verify_or_upgrade_async(tm, key, legacy_check, wanted)
                if upgraded.valid and (rate_limit or quota or llm != _Llm()):
                    result = await _verify(tm, key, wanted, rate_limit, quota, llm)  # its limits and quota too
                else:
                    result = upgraded
        except (StorageError, BusyError) as e:
            raise _unavailable(e) from None
        except InvalidArgumentError as e:
            raise _error(400, "INVALID_ARGUMENT", e.message) from None
        record = result.record
        if result.valid and llm.tokens is not None and rate_limit:
            # What the limits in tokens counted: settled by record_llm_usage.
            request.state.irontoken_tokens = llm.tokens
        if result.valid and record is not None and not (record.rate_limits and result.rate_limit):
            request.state.irontoken = record
            return record  # nothing to say in headers: no call into core
        outcome: Dict[str, Any] = {"reason": result.reason, "now": tm.now()}
        if record is not None:
            outcome["limits"] = record.rate_limits
        if result.rate_limit:
            outcome["rate_limit"] = result.rate_limit
        denied = result.quota["denied_by"] if result.quota else None
        if denied:
            outcome["quota_reset_at"] = denied["reset_at"]
        answer = http_api_key_answer(header, wanted, outcome)
        if answer[0] == 200 and record is not None:
            for k, v in answer[3].items():
                response.headers[k] = v
            request.state.irontoken = record
            return record
        raise _refusal(answer)

    responses = guard_responses(
        scopes=wanted, limited=bool(rate_limit or quota), query=refuse_query_credentials, llm=bool(model or tokens)
    )
    setattr(dependency, _GUARD, _Guard("irontokenApiKey", wanted, responses))
    return dependency


# The attribute a guard carries: the responses it can answer, for OpenAPI.
_GUARD = "__irontoken_responses__"

_REFUSAL_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["detail"],
}


def guard_responses(
    *, scopes: Sequence[str] = (), limited: bool = True, query: bool = True, llm: bool = False
) -> Dict[Union[int, str], Dict[str, Any]]:
    """The OpenAPI responses of a guarded route (``responses=`` of a route
    or router): 401 always, 403 when ``scopes`` are required, 429 when
    rate limits or quotas apply (``limited``), 400 for a credential in the
    query string (``query``), 403 and 413 for a model policy (``llm``), 503
    when the store cannot answer. Each body is ``{"detail": {"code",
    "message"}}``. :func:`document_openapi` adds them to every guarded route
    by itself."""

    def answer(description: str, headers: Sequence[str] = ()) -> Dict[str, Any]:
        out: Dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _REFUSAL_SCHEMA}}}
        if headers:
            out["headers"] = {h: {"schema": {"type": "string"}} for h in headers}
        return out

    responses: Dict[Union[int, str], Dict[str, Any]] = {
        401: answer("The credential is missing, malformed, unknown, expired, disabled or revoked", ["WWW-Authenticate"]),
        503: answer("Authentication is unavailable (the store did not answer); retry", ["Retry-After"]),
    }
    if scopes:
        responses[403] = answer(f"The credential lacks a required scope: {' '.join(scopes)}", ["WWW-Authenticate"])
    if llm:
        if 403 not in responses:
            responses[403] = answer("The key may not call the model the request names (MODEL_NOT_ALLOWED)")
        responses[413] = answer("The request declares more tokens than the key allows at once (REQUEST_TOO_LARGE)")
    if limited:
        responses[429] = answer("A rate limit or quota is exhausted", ["Retry-After", "RateLimit", "RateLimit-Policy"])
    if query:
        responses[400] = answer("A credential was sent in the query string (CREDENTIAL_IN_QUERY)")
    return dict(sorted(responses.items(), key=lambda kv: int(kv[0])))


class _Guard(NamedTuple):
    """What a guard tells OpenAPI: its security scheme, scopes and answers."""

    scheme: str
    scopes: List[str]
    responses: Dict[Union[int, str], Dict[str, Any]]


def _guards(dependant: Any) -> List[_Guard]:
    """Every irontoken guard among a route's dependencies (nested ones too)."""
    found = []
    stack = [dependant]
    while stack:
        d = stack.pop()
        guard = getattr(getattr(d, "call", None), _GUARD, None)
        if isinstance(guard, _Guard):
            found.append(guard)
        stack.extend(getattr(d, "dependencies", ()))
    return found


def _api_routes(app: Any) -> Iterator[Any]:
    """Every API route of the app as the OpenAPI document sees it, included
    routers' routes too (FastAPI 0.16x mounts an included router rather than
    copying its routes; older versions copy them into ``app.routes``)."""
    from fastapi.routing import APIRoute

    try:
        from fastapi.openapi.utils import _get_api_route_for_openapi  # type: ignore[attr-defined]
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        route = _get_api_route_for_openapi(context)
        if route is not None:
            yield route


def document_openapi(app: Any) -> None:
    """Makes the app's OpenAPI document list, for every route guarded by
    :func:`require_api_key` or :func:`require_jwt` (as a parameter, in
    ``dependencies=``, or on a router), the answers the guard gives (see
    :func:`guard_responses`) and, in the operation's ``security``, the
    scopes it requires. Responses a route declares itself are kept. Called
    by :func:`install_error_handlers`; routes added later are covered too
    (the document is built when first asked for)."""
    if getattr(app, "_irontoken_openapi", False):
        return
    build = app.openapi
    patched: List[Any] = [None]  # the document last patched (FastAPI caches it)

    def openapi() -> Dict[str, Any]:
        schema: Dict[str, Any] = build()
        if schema is patched[0]:
            return schema
        patched[0] = schema
        paths = schema.get("paths", {})
        for route in _api_routes(app):
            guards = _guards(route.dependant)
            if not guards:
                continue
            for method in route.methods or ():
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for guard in guards:
                    for status, body in guard.responses.items():
                        responses.setdefault(str(status), body)
                    # FastAPI lists scopes only for OAuth2 schemes; OpenAPI
                    # 3.1 allows them ("roles") for any scheme.
                    for requirement in operation.get("security", []):
                        if guard.scheme in requirement and guard.scopes:
                            requirement[guard.scheme] = sorted(set(requirement[guard.scheme]) | set(guard.scopes))
                operation["responses"] = dict(sorted(responses.items()))
        return schema

    app.openapi = openapi
    app._irontoken_openapi = True


def _scopes_of(claims: Mapping[str, Any]) -> List[str]:
    """The scopes a token grants: its ``scope`` (space-separated) or ``scp``
    claim. Only strings count: ``scp: [["read"]]`` grants nothing."""
    for name in ("scope", "scp"):
        v = claims.get(name)
        if isinstance(v, str):
            return v.split()
        if isinstance(v, list):
            return [s for s in v if isinstance(s, str)]
    return []


#: Where a guard finds the TLS client certificate of a request: the name of
#: a header a TLS-terminating proxy sets (trusting it is your decision: only
#: when nothing else can reach the app), or a function of the request.
CertSource = Union[str, Callable[[Request], Union[str, bytes, None]]]


def _client_cert(source: Optional[CertSource], request: Request) -> Union[str, bytes, None]:
    if source is None:
        # The ASGI TLS extension (Hypercorn, ...): the chain as PEM, leaf first.
        tls = request.scope.get("extensions", {}).get("tls", {})
        chain = tls.get("client_cert_chain") or []
        return chain[0] if chain else None
    if isinstance(source, str):
        return request.headers.get(source) or None
    return source(request)


def _dpop_parts(request: Request) -> Tuple[Optional[str], Optional[str], str]:
    """(token from ``Authorization: DPoP``, the one ``DPoP`` header, the
    code when they are not there)."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    proofs = request.headers.getlist("dpop")
    if scheme.lower() != "dpop" or not token.strip():
        return None, None, "MISSING"
    if len(proofs) != 1:
        # RFC 9449 §4.3: exactly one DPoP header.
        return token.strip(), None, "DPOP_PROOF_INVALID"
    return token.strip(), proofs[0], "VALID"


def require_jwt(
    verifier: Union[JwtVerifier, PyJWKClient, TokenManager, AsyncTokenManager],
    *,
    algorithms: Optional[Sequence[str]] = None,
    audience: Optional[Union[str, Sequence[str]]] = None,
    issuer: Optional[str] = None,
    scopes: Sequence[str] = (),
    leeway: int = 0,
    refuse_query_credentials: bool = True,
    dpop: bool = False,
    replay: Optional[Manager] = None,
    dpop_nonce: Optional[Callable[[], str]] = None,
    client_cert: Optional[CertSource] = None,
) -> Callable[..., Awaitable[Dict[str, Any]]]:
    """A dependency that verifies the request's JWT and returns its claims.

    ``verifier`` is a :class:`~irontoken.jwt.JwtVerifier` (its policy holds
    algorithms, audience and issuer), a :class:`~irontoken.jwt.PyJWKClient`
    or a manager whose own keys issued the token (then ``algorithms``,
    default ``["RS256"]``, ``audience`` and ``issuer`` are given here;
    fetching a set or reading the store runs off the event loop).
    ``scopes`` must all be in the token's ``scope`` (space-separated) or
    ``scp`` claim. A request with a credential in its query string is
    answered 400 ``CREDENTIAL_IN_QUERY`` unless
    ``refuse_query_credentials=False``.

    Bound tokens are not bearer tokens: a token with ``cnf.jkt`` needs a
    DPoP proof, one with ``cnf["x5t#S256"]`` the client certificate it was
    issued to (from ``client_cert``: a header name, a function of the
    request, or by default the ASGI TLS extension), else 401.

    With ``dpop=True`` (RFC 9449) the request must send ``Authorization:
    DPoP <token>`` and one ``DPoP`` proof header for its method and URL;
    the token must be bound to the proof's key, and each proof is accepted
    once (through the manager, or ``replay`` for the other verifiers).
    ``dpop_nonce`` returns the server's current nonce: a proof without it
    gets 401 ``use_dpop_nonce`` with a ``DPoP-Nonce`` header.
    """
    managed = isinstance(verifier, (TokenManager, AsyncTokenManager))
    if isinstance(verifier, JwtVerifier):
        if algorithms is not None or audience is not None or issuer is not None or leeway:
            raise ValueError("with a JwtVerifier, give algorithms, audience, issuer and leeway to the verifier")
    elif not managed and not isinstance(verifier, PyJWKClient):
        raise TypeError("verifier: a JwtVerifier, a PyJWKClient or a TokenManager")
    if dpop and not managed and replay is None:
        raise ValueError("dpop=True needs replay=<a manager> to accept each proof once")
    if (dpop_nonce is not None) and not dpop:
        raise ValueError("dpop_nonce is for dpop=True")
    algs = list(algorithms or ["RS256"])
    auds = None if audience is None else [audience] if isinstance(audience, str) else list(audience)
    wanted = [str(s) for s in scopes]
    answer = http_dpop_answer if dpop else (lambda code, scopes, nonce=None: http_bearer_answer(code, scopes))
    scheme = HTTPBearer(auto_error=False, description="A JWT", bearerFormat="JWT", scheme_name="irontokenJwt")

    async def judge(token: str, proof: Optional[str], request: Request, nonce: Optional[str]) -> Dict[str, Any]:
        cert = _client_cert(client_cert, request)
        htm, htu = request.method, str(request.url)
        if managed:
            kwargs: Dict[str, Any] = dict(algorithms=algs, audience=auds, issuer=issuer, leeway=leeway, client_cert=cert)
            if dpop:
                kwargs.update(dpop_proof=proof, htm=htm, htu=htu, dpop_nonce=nonce)
            if isinstance(verifier, AsyncTokenManager):
                return await verifier.verify_jwt(token, **kwargs)
            return await run_in_threadpool(lambda: verifier.verify_jwt(token, **kwargs))  # type: ignore[union-attr]
        if isinstance(verifier, JwtVerifier):
            claims = verifier.decode(token)
        else:
            claims = await run_in_threadpool(
                verifier.decode, token, algs, audience=audience, issuer=issuer, leeway=leeway  # type: ignore[union-attr]
            )
        # The binding rule is core's: a certificate-bound token needs that
        # certificate, a key-bound one a proof of that key.
        jkt = token_binding(claims, client_cert=cert, proof_given=dpop)
        if dpop:
            if jkt is None:
                raise DPoPBindingError("DPOP_BINDING_MISMATCH: the token is not bound to a DPoP key", "DPOP_BINDING_MISMATCH")
            assert proof is not None and replay is not None
            kw: Dict[str, Any] = dict(htm=htm, htu=htu, access_token=token, nonce=nonce, jkt=jkt)
            if isinstance(replay, AsyncTokenManager):
                await replay.verify_dpop_proof(proof, **kw)
            else:
                sync_replay: TokenManager = replay
                await run_in_threadpool(lambda: sync_replay.verify_dpop_proof(proof, **kw))
        return claims

    async def dependency(
        request: Request, credentials: Optional[HTTPAuthorizationCredentials] = Security(scheme, scopes=wanted)
    ) -> Dict[str, Any]:
        if refuse_query_credentials and credential_in_query(request, "Authorization"):
            raise _query_refusal()
        nonce = dpop_nonce() if dpop_nonce is not None else None
        proof: Optional[str] = None
        if dpop:
            token, proof, code = _dpop_parts(request)
            if code != "VALID" or token is None:
                raise _refusal(answer(code, wanted, nonce))
        elif credentials is None or not credentials.credentials:
            raise _refusal(answer("MISSING", wanted))
        else:
            token = credentials.credentials
        try:
            claims = await judge(token, proof, request, nonce)
        except (StorageError, BusyError) as e:
            raise _unavailable(e) from None
        except InvalidTokenError as e:
            raise _refusal(answer(getattr(e, "code", "JWT_INVALID"), wanted, nonce)) from None
        except IronTokenError as e:
            if e.code == "INVALID_ARGUMENT":
                raise _refusal(answer("DPOP_PROOF_INVALID" if dpop else "JWT_MALFORMED", wanted, nonce)) from None
            # A JWKS that cannot be fetched: the token was not judged.
            raise _unavailable(e) from None
        missing = [s for s in wanted if s not in _scopes_of(claims)]
        if missing:
            raise _refusal(answer("INSUFFICIENT_SCOPE", wanted, nonce))
        request.state.irontoken = claims
        return claims

    setattr(dependency, _GUARD, _Guard("irontokenJwt", wanted, guard_responses(scopes=wanted, limited=False, query=refuse_query_credentials)))
    return dependency


#: A request-dependent value of a capability guard: the value, or a function
#: of the request returning it (a path parameter, say).
PerRequest = Union[Any, Callable[[Request], Any]]


def _per_request(v: PerRequest, request: Request) -> Any:
    return v(request) if callable(v) else v


def require_capability(
    manager: ManagerSource = None,
    *,
    tool: str,
    resource: PerRequest = None,
    cost_micros: PerRequest = 0,
    session_id: PerRequest = None,
    refuse_query_credentials: bool = True,
) -> Callable[..., Awaitable[Authorization]]:
    """A dependency that authorizes a call of ``tool`` under the capability
    token in ``Authorization: Bearer`` (on ``resource``, in ``session_id``,
    charging ``cost_micros`` when allowed; each may be a function of the
    request) and returns the :class:`~irontoken.Authorization`, also
    ``request.state.irontoken``. Refusals: 401 for a token that is not a live
    one of ours, 403 for a call it does not allow, 429 for a spent ceiling or
    budget, 503 when the store did not answer (core's table)."""
    scheme = HTTPBearer(
        auto_error=False, description="An irontoken capability token (Biscuit)", scheme_name="irontokenCapability"
    )

    async def dependency(
        request: Request, credentials: Optional[HTTPAuthorizationCredentials] = Security(scheme)
    ) -> Authorization:
        if refuse_query_credentials and credential_in_query(request, "Authorization"):
            raise _query_refusal()
        if credentials is None or not credentials.credentials:
            raise _refusal(http_capability_answer("MISSING"))
        tm = _manager(manager, request)
        args: Dict[str, Any] = {
            "tool": tool,
            "resource": _per_request(resource, request),
            "cost_micros": int(_per_request(cost_micros, request) or 0),
            "session_id": _per_request(session_id, request),
        }
        try:
            if isinstance(tm, AsyncTokenManager):
                a = await tm.authorize(credentials.credentials, **args)
            else:
                a = await run_in_threadpool(tm.authorize, credentials.credentials, **args)
        except (StorageError, BusyError) as e:
            raise _unavailable(e) from None
        if not a.allowed:
            raise _refusal(http_capability_answer(a.reason))
        request.state.irontoken = a
        return a

    responses = guard_responses(scopes=[tool], limited=True, query=refuse_query_credentials)
    setattr(dependency, _GUARD, _Guard("irontokenCapability", [], responses))
    return dependency


async def record_llm_usage(
    manager: Manager,
    request: Request,
    record: KeyRecord,
    *,
    model: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_micros: int = 0,
    request_id_header: str = "X-Request-ID",
    metadata: Optional[Dict[str, Any]] = None,
) -> bool:
    """Records one LLM call for the key that made the request. The request
    id comes from ``request_id_header`` when the client sent one (1-128
    visible ASCII characters; anything else is ignored), so a retried
    request is counted once; returns False for such a duplicate. When the
    guard counted declared tokens against the key's limits in tokens, the
    actual count (prompt + completion) is settled against them, once."""
    # Not an id the store takes (a client's garbage): counted as a new request. Core's rule.
    request_id = request_id_from_header(request.headers.get(request_id_header) or "")
    kwargs: Dict[str, Any] = dict(
        request_id=request_id,
        key_id=record.id,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_micros=cost_micros,
        metadata=metadata,
    )
    if isinstance(manager, AsyncTokenManager):
        recorded = await manager.record_usage(**kwargs)
    else:
        recorded = await run_in_threadpool(lambda: manager.record_usage(**kwargs))
    declared = getattr(request.state, "irontoken_tokens", None)
    if declared is not None and not recorded["duplicate"]:
        request.state.irontoken_tokens = None  # settled once
        if any(limit.get("unit") == "tokens" for limit in record.rate_limits):
            actual = prompt_tokens + completion_tokens
            if isinstance(manager, AsyncTokenManager):
                await manager.settle_tokens(record.id, declared, actual)
            else:
                await run_in_threadpool(manager.settle_tokens, record.id, declared, actual)
    return not recorded["duplicate"]


def _problem(status: int, code: str, detail: str) -> Any:
    from fastapi.responses import JSONResponse

    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(
        status_code=status,
        content={"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail},
        media_type="application/problem+json",
        headers=headers,
    )


def install_error_handlers(app: Any) -> None:
    """Answers every :class:`~irontoken.errors.IronTokenError` a route raises
    with an HTTP status for its code — 400 bad input, 401 a refused token,
    404 not found, 409 a state conflict (already revoked, rotated...), 429 a
    limit, 503 storage unavailable (with ``Retry-After``), 500 anything else
    — and an RFC 9457 problem body ``{"type", "title", "status", "code",
    "detail"}``. Messages never carry a secret; a 5xx answer carries none.
    Also documents the guards' answers in OpenAPI (:func:`document_openapi`)."""
    document_openapi(app)

    async def handler(request: Request, exc: Exception) -> Any:
        code = str(getattr(exc, "code", "INTERNAL"))
        status = http_status_of(code)  # core's table (ErrorKind::http_status)
        if status >= 500:
            detail = "the service could not complete the request, retry" if status == 503 else "internal error"
        else:
            detail = str(exc)
        return _problem(status, code, detail)

    app.add_exception_handler(IronTokenError, handler)
