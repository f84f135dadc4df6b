"""Reports: a results store turned into leaderboards a reader can trust.

Imports go one way: :mod:`.stats` (means and intervals over seeds) <-
:mod:`.gaps` (gaps to the reference, Avg. Gap) <- :mod:`.flags` (rows and
values never ranked), :mod:`.paired` (paired differences to the anchors) and
:mod:`.significance` (paired tests: bold and tied cells) <- :mod:`.board` (the
table, best values) <- :mod:`.headline` <- :mod:`.crossrank` (Friedman and
Nemenyi across groups) <- :mod:`.text` (Markdown, CSV, JSON),
:mod:`.html_page` and :mod:`.plots` <- :mod:`.write` (every
format of a results folder in one call); :mod:`.plot_requests` checks a suite's
``[[plots]]``. Reports know metric roles, directions and Avg. Gap membership
from the stored declarations; of execution they read only the results store,
and they never import a plugin.
"""
