"""``python -m fraudrules`` is the ``fraudrules`` command."""

from .cli import main

main()
