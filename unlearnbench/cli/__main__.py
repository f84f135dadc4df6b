"""``python -m unlearnbench.cli``: the ``unlearnbench`` command, with the interpreter's
usual exit (so ``python -m cProfile -m unlearnbench.cli`` writes its profile); the
installed command skips the teardown (:func:`unlearnbench.cli.console_main`)."""

from unlearnbench.cli import main

raise SystemExit(main())
