"""``python -m devtools``: the same as the ``rdt`` command."""

from devtools.cli import main

main()
