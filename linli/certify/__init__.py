"""The conformance kit: `linli certify ADAPTER [--target URL] [--json PATH]`.

One suite for every adapter, run by anyone against a live box or a simulated one:

    manifest.py    the manifest against its schema, the entry point importable, the kinds known
    lifecycle.py   start, stop (tasks, files and connections counted: nothing left behind),
                   restart, unaffected by crashing neighbours
    stb.py         the set-top box contract: every declared verb's effect seen on the box, its
                   state checked against the schema and the box; refusals that never reach the
                   box; errors injected into the box; off, woken, addresses that refuse or never
                   answer; one box's trouble not another's
    observe.py     seeing the box without the adapter under test; what the process holds
    report.py      the human table and the JSON report (its format: report.schema.json)
    run.py         the command line; each adapter's last report kept in <data_dir>/certifications/

It is not an adapter (no manifest.json) and imports adapters only by the names
their manifests give, as the gateway does.
"""
