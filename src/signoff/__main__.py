"""``python -m signoff`` is the ``signoff`` command."""

from signoff.cli import main

main()
