"""The conformance kit: `linli certify ADAPTER [--target URL] [--json PATH]`.

One suite for every adapter, run by anyone against a live box or a simulated one:

    manifest.py    the manifest against its schema, the entry point importable, the kinds known
    lifecycle.py   start, stop, restart, crash isolation (a crashing neighbour, a failing start)
    stb.py         the set-top box contract: every declared capability exercised and its state
                   checked against the schema, `not_supported` uniform, latency per command,
                   an unreachable box handled (off, woken again; an address that never answers)
    report.py      the human table and the JSON report
    run.py         the command line

It is not an adapter (no manifest.json) and imports adapters only by the names
their manifests give, as the gateway does.
"""
