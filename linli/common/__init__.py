"""Small generic helpers that the gateway and the regional application share.

Among them backoff (`backoff`), the sign-in throttle and lockout
(`throttle`) and the rate-limited logger (`ratelog`): each was written several
times over, a little differently each time, before it lived here.

This package sits at the bottom of Linli's layers, beside `linli.wire`: it
imports nothing else of Linli (only the standard library), so that both the
gateway's core and `linli.region` — which must not depend on the gateway — can
use it. Keep it that way: a helper that needs the store, the bus or the
registry belongs in `linli.gateway`, not here.
"""
