"""``python -m loopbp`` is the ``loopbp`` command."""

from .cli import main

raise SystemExit(main())
