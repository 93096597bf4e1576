"""`python -m linli` is the same as the `linli` command."""

from linli.cli import main

raise SystemExit(main())
