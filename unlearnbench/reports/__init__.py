"""Reports: a results store turned into leaderboards a reader can trust.

Imports go one way: :mod:`.board` (aggregation over seeds, gaps to the
reference, best values, collapse and uninformative-attack flags) <- :mod:`.text`
(Markdown, CSV, JSON), :mod:`.html` and :mod:`.plots` <- :mod:`.write` (every
format of a results folder in one call). Reports know metric roles and
directions from the stored metrics; they never import a plugin.
"""
