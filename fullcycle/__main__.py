"""``python -m fullcycle`` is the ``fullcycle`` command."""

from fullcycle.cli import main

main()
