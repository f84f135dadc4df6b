"""The plugin host: the plugin-manager factory and the registry it fills.

:mod:`.manager` builds the pluggy plugin manager (hook specs, built-ins,
entry points, the block list) and collects every registration hook into a
:class:`~unlearnbench.host.registry.Registry` (:mod:`.registry`: name -> spec
tables with origins and did-you-mean errors). The execution core receives a
registry, or a picklable :class:`~unlearnbench.host.manager.RegistryFactory`
for its workers, and never imports the manager or pluggy.
"""
