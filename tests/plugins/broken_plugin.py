"""A plugin module that fails at import (for the error-message test)."""

raise ZeroDivisionError("this plugin is broken on purpose")
