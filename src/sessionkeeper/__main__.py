"""``python -m sessionkeeper`` runs the command line tool."""

from sessionkeeper.cli import main

main()
