"""``python -m unlearnbench.cli``: the ``unlearnbench`` command."""

from unlearnbench.cli import main

raise SystemExit(main())
