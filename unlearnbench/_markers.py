"""The pluggy markers, kept in a module with no heavy imports.

Plugin authors write ``from unlearnbench import hookimpl``; importing that must
not pull in torch, so this module imports pluggy only.
"""

import pluggy

PROJECT_NAME = "unlearnbench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
