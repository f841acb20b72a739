"""``python -m valuegym.cli``: the ``valuegym`` command without its console script."""

from valuegym.cli import main

raise SystemExit(main())
