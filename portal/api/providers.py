"""Service providers: their accounts and API keys (scoped, revocable, shown once)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Final

from linli.gateway import users
from linli.gateway.users import Role, TokenKind, UserError
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.auth.middleware import ACCOUNTS

# Capability and health kinds: lower case, digits allowed after the first letter (spo2).
KIND: dict[str, Any] = {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,31}$"}


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "POST",
    "/api/v1/provider-keys",
    summary="Issue a provider API key for households and capability kinds (shown once; audited)",
    tag="providers",
    roles=[Role.MANAGER],
    status=201,
    body=obj(
        {
            "provider": text(64),
            "households": {
                "type": "array",
                "items": ID,
                "minItems": 1,
                "maxItems": 10000,
                "uniqueItems": True,
            },
            "kinds": {"type": "array", "items": KIND, "minItems": 1, "maxItems": 64, "uniqueItems": True},
            "expires_days": {"type": "number", "minimum": 1, "maximum": 3650},
        },
        ["provider", "households", "kinds"],
    ),
)
async def issue(call: Call) -> dict[str, Any]:
    b, store = call.body, call.gateway.store
    unknown = [h for h in b["households"] if h not in call.gateway.registry.households]
    if unknown:
        raise not_found(f"household(s) {unknown[:5]}")
    provider = await store.async_read(lambda c: users.get_user(c, name=b["provider"]))
    if provider is None:
        # A provider signs in only with keys: its account has no usable password.
        unusable = await asyncio.to_thread(users.hash_password, secrets.token_urlsafe(32))
        try:
            provider = await store.async_write(
                lambda db: users.add_user(
                    db.conn, b["provider"], Role.PROVIDER, password_hash=unusable, by=call.principal.name
                )
            )
        except UserError as exc:
            raise ApiError(exc.code, exc.message) from None
    elif provider.role is not Role.PROVIDER:
        raise ApiError("conflict", f"user {b['provider']!r} is a {provider.role.value}, not a provider")
    scope = {"households": sorted(b["households"]), "kinds": sorted(b["kinds"])}
    days = b.get("expires_days")

    def create(db: Any) -> tuple[users.Token, str]:
        token, secret = users.create_token(
            db.conn,
            kind=TokenKind.PROVIDER,
            user_id=provider.id,
            name=f"provider key for {provider.name}",
            ttl_s=days * 86400 if days else None,
            scope=scope,
        )
        users.append_audit(
            db.conn,
            actor=call.principal.name,
            role="manager",
            action="provider_key.issue",
            target=provider.name,
            detail={"key": token.id, **scope},
            ip=call.ip,
        )
        return token, secret

    token, secret = await store.async_write(create)
    return {"key": token.as_dict(), "secret": secret, "shown_once": True}


@ROUTES.op(
    "GET",
    "/api/v1/provider-keys",
    summary="List provider keys (never their secrets)",
    tag="providers",
    roles=[Role.MANAGER],
)
async def list_keys(call: Call) -> dict[str, Any]:
    tokens = await call.gateway.store.async_read(lambda c: users.list_tokens(c, TokenKind.PROVIDER))
    return {"items": [t.as_dict() for t in tokens], "total": len(tokens)}


@ROUTES.op(
    "DELETE",
    "/api/v1/provider-keys/{key_id}",
    summary="Revoke a provider key (at once; audited)",
    tag="providers",
    roles=[Role.MANAGER],
)
async def revoke(call: Call) -> dict[str, Any]:
    key_id = call.path["key_id"]

    def write(db: Any) -> bool:
        done = users.revoke_token(db.conn, key_id)
        if done:
            users.append_audit(
                db.conn,
                actor=call.principal.name,
                role="manager",
                action="provider_key.revoke",
                target=key_id,
                ip=call.ip,
            )
        return done

    if not await call.gateway.store.async_write(write):
        raise not_found(f"live provider key {key_id!r}")
    call.request.app[ACCOUNTS].forget_token(key_id)
    return {"revoked": key_id}
