"""The execution core: from a suite file to a results store.

:mod:`.suite` reads a suite file; :mod:`.plan` resolves it against a
registry into tasks and cells; :mod:`.runner` runs a task's cells and keeps
the run's bookkeeping, :mod:`.cell` computes one cell (``fit``, the timed
``unlearn``, the evaluators), :mod:`.limits` bounds their time and
:mod:`.devices` picks devices and worker sizes; :mod:`.executors` decides where
cells run (this process, worker processes, Ray); :mod:`.store` is the results
store, :mod:`.cache` the artifact cache, :mod:`.provenance` what every record
says about the machine. It imports no pluggy and no plugin: it is given a
registry (or, for workers, a picklable factory of one).
"""
