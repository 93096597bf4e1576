"""Property-based API testing from the OpenAPI document (schemathesis) against the live portal.

A manager's token, the portal on 127.0.0.1, and for every documented operation a
bounded number of generated requests — valid ones and, through the bodies'
schemas, every shape the schemas allow. Each answer must not be a server error
and must match what the document says it returns (status, content type, the
response schema, the uniform error). Path ids are narrowed to the community's
real ones (and one unknown), so the generated requests reach the handlers
rather than stopping at "no such household".
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from linli.gateway import users
from tests.discovering import DISCOVERY, discovery_config
from tests.homes import add_home
from tests.portal_accounts import PORTAL_SERVICES, add_account, api_token, portal

EXAMPLES = 15  # per operation: ~70 operations in about 12 s
#: Operations that end the caller's own token or account: they would sign the fuzzer out.
SKIP = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password"),
    ("GET", "/api/v1/ws"),  # a WebSocket upgrade, not a request/response operation
}


def narrowed(spec: dict[str, Any], ids: dict[str, list[str]]) -> dict[str, Any]:
    """The document with each path id's schema limited to real ids (and one unknown)."""
    for methods in spec["paths"].values():
        for op in methods.values():
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in ids:
                    parameter["schema"] = {"enum": [*ids[parameter["name"]], "unknown-1"]}
    return spec


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fuzz_one(operation: Any, base_url: str, headers: dict[str, str]) -> str | None:
    """Generated requests to one operation; the first failure, in one line, or None."""
    found: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI must not flake on a new draw
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: keep it fast
    )
    @hypothesis.given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a group of failures
            if not found:
                detail = " ".join(str(exc).split())[:400]
                found.append(f"{operation.label} {case.path_parameters} {case.body!r:.120}: {detail}")
            raise

    try:
        run()
    except (Exception, BaseExceptionGroup):
        return found[0] if found else f"{operation.label}: failed without a recorded answer"
    return None


def fuzz(spec: dict[str, Any], base_url: str, token: str) -> list[str]:
    """Every operation's generated requests (blocking: run in a worker thread); the failures."""
    schema = schemathesis.openapi.from_dict(spec)
    headers = {"Authorization": f"Bearer {token}"}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        failure = fuzz_one(operation, base_url, headers)
        if failure is not None:
            failures.append(failure)
    return failures


@pytest.mark.slow
async def test_generated_requests_get_no_server_error_and_documented_answers(make_gateway) -> None:
    # given a community of two homes, with residents, an open alert and a manager signed in by token
    gateway = await make_gateway(
        components=[
            *PORTAL_SERVICES,
            "linli.services.security:Security",
            *DISCOVERY,
        ],
        discovery=discovery_config("mqtt"),  # the inbox, on loopback MQTT only
    )
    for household in ("h1", "h2"):
        await add_home(gateway, household)
        await gateway.registry.async_add_resident(f"{household}-r1", household, f"resident of {household}")
    await add_account(gateway, "mgr", "manager")
    await add_account(gateway, "li", "resident", "h1")  # an account the generated requests may change
    token = await api_token(gateway, "mgr")
    alert = await gateway.components["alerts"].async_raise(kind="sos", household_id="h1", title="SOS")
    user = await gateway.store.async_read(lambda c: users.get_user(c, name="li"))
    async with portal(gateway) as client:
        spec = await (await client.get("/api/v1/openapi.json")).json()
        ids = {
            "household_id": ["h1", "h2"],
            "resident_id": ["h1-r1", "h2-r1"],
            "device_id": ["h1-plug", "h1-door", "h2-sos"],
            "alert_id": [str(alert.id)],
            "user_id": [user.id],
        }
        base_url = f"http://127.0.0.1:{client.port}"
        # when schemathesis sends its generated requests to every operation
        failures = await asyncio.to_thread(fuzz, narrowed(spec, ids), base_url, token)
    # then none is a server error, and every answer is as documented
    assert not failures, "\n".join(failures)


async def test_malformed_ids_and_huge_numbers_answer_400_in_the_one_error_shape(make_gateway) -> None:
    # given a community with an open alert, a manager signed in by token
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    await add_account(gateway, "mgr", "manager")
    token = await api_token(gateway, "mgr")
    alert = await gateway.components["alerts"].async_raise(kind="sos", household_id="h1", title="SOS")
    auth = {"Authorization": f"Bearer {token}"}
    huge = [str(2**63), str(2**64), str(2**64 + 1), "9" * 40]
    requests = [
        # an alert id that Python's int() would take or choke on: superscripts, other scripts, signs
        ("GET", "/api/v1/alerts/%C2%B2", "path.alert_id"),
        ("GET", "/api/v1/alerts/%D9%A1%D9%A2", "path.alert_id"),  # Arabic-Indic "12"
        ("GET", "/api/v1/alerts/-1", "path.alert_id"),
        ("GET", "/api/v1/alerts/1_0", "path.alert_id"),
        ("GET", f"/api/v1/alerts/{2**64}/timeline", "path.alert_id"),
        ("POST", "/api/v1/alerts/%C2%B2/acknowledge", "path.alert_id"),
        *[
            ("GET", f"/api/v1/{route}?offset={n}", "query.offset")
            for route in ("alerts", "audit", "devices")
            for n in huge
        ],
        *[
            ("GET", f"/api/v1/{route}?limit={n}", "query.limit")
            for route in ("alerts", "audit", "devices")
            for n in huge
        ],
        ("GET", "/api/v1/alerts?offset=%C2%B2", "query.offset"),
        ("GET", "/api/v1/devices?offset=%20%201", "query.offset"),
    ]
    async with portal(gateway) as client:
        for method, url, field in requests:
            # when each malformed request is sent
            response = await client.request(method, url, headers=auth, json={} if method == "POST" else None)
            body = await response.json()
            # then it is a 400 naming the offending parameter, never a 500
            assert response.status == 400, (url, response.status, body)
            assert set(body) == {"error"} and body["error"]["code"] in ("invalid_path", "invalid_query"), body
            assert body["error"]["field"] == field, (url, body)
        # and a well-formed id and page still work
        ok = await client.get(f"/api/v1/alerts/{alert.id}", headers=auth)
        assert ok.status == 200, await ok.text()
        page = await client.get(f"/api/v1/audit?offset={2**63 - 1}&limit=500", headers=auth)
        assert page.status == 200, await page.text()
        assert (await page.json())["items"] == []
        # and a body number beyond 64 bits (JSON reads it, SQLite could not bind it) is a 400 too
        too_big = await client.post(
            "/api/v1/announcements",
            headers=auth,
            json={"title": "停水通知", "scope": "community", "starts": 2**64 - 1},
        )
        body = await too_big.json()
        assert (too_big.status, body["error"]["field"]) == (400, "body.starts"), body
