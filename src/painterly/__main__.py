"""``python -m painterly`` is the ``painterly`` command."""

from .cli import main

raise SystemExit(main())
