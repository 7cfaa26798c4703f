"""`python -m nexotc_client.cli` runs the `nexotc` command."""

from nexotc_client.cli import main

main()
