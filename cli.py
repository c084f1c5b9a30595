"""Run the fraudrules command line from a source checkout: ``python cli.py --help``.

The click commands live in the package (``engine/cli.py``, imported as ``fraudrules.cli``)
so that an installed fraudrules puts no top-level ``cli`` module into site-packages; the
``fraudrules`` console script calls the same ``main``.
"""

from fraudrules.cli import main

if __name__ == "__main__":
    main()
