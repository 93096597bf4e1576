"""`python -m gateway` is the same as the `linli` command."""

from gateway.cli import main

raise SystemExit(main())
