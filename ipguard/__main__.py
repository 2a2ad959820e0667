"""`python -m ipguard` is the `ipguard` command."""

from ipguard.cli.main import run

run()
