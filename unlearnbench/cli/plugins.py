"""``unlearnbench list``, ``plugins`` and ``show``: what the registry holds."""

from __future__ import annotations

import argparse

from unlearnbench.cli.common import EXIT_OK, UsageError, load_plugins
from unlearnbench.cli.parser import KIND_ARGS
from unlearnbench.host.registry import KINDS

ABBREVIATIONS = ("al", "e.g", "i.e", "cf", "vs", "fig", "eq", "approx", "resp", "etc")
"""Words whose full stop ends no sentence (``Bourtoule et al. 2021``, ``e.g. SISA``)."""


def first_sentence(paragraph: str) -> str:
    """``paragraph`` up to its first full stop followed by a space that ends a sentence
    (not an abbreviation's, as in ``et al.``), without that full stop."""
    start = 0
    while (stop := paragraph.find(". ", start)) >= 0:
        word = paragraph[:stop].rsplit(" ", 1)[-1].lstrip("(").lower()
        if word not in ABBREVIATIONS:
            return paragraph[:stop]
        start = stop + 2
    return paragraph.rstrip(".")


def summary(description: str, width: int = 90) -> str:
    """The first sentence of a plugin's description, on one line, without RST markup."""
    paragraph = " ".join((description or "").strip().split("\n\n")[0].split())
    sentence = first_sentence(paragraph.replace("``", ""))
    return sentence if len(sentence) <= width else sentence[: width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    registry, _ = load_plugins(args)
    kinds = [KIND_ARGS[args.kind]] if args.kind else list(KINDS)
    for kind in kinds:
        print(f"{kind}s:")
        for entry in registry.entries(kind):
            print(
                f"  {entry.spec.name:<18} {summary(entry.spec.description)}  "
                f"[{entry.origin.plugin}]"
            )
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    _, infos = load_plugins(args)
    for info in infos:
        print(f"{info.name:<16} {info.distribution} {info.version}  ({info.module})")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from unlearnbench.host.registry import unknown_name_message

    registry, _ = load_plugins(args)
    found = [
        (kind, registry.entry(kind, args.name))
        for kind in KINDS
        if args.name in registry.tables[kind]
    ]
    if not found:
        everything = [n for kind in KINDS for n in registry.names(kind)]
        raise UsageError(unknown_name_message("plugin", args.name, everything))
    for kind, entry in found:
        spec = entry.spec
        print(f"{spec.name} ({kind}, from {entry.origin})")
        print()
        print((spec.description or "(no description)").strip())
        if spec.params:
            print("\nparameters:")
            for p in spec.params:
                choices = f" one of {list(p.choices)}" if p.choices else ""
                bounds = f" in {p.bounds_text}" if p.bounds_text else ""
                print(
                    f"  {p.name} ({p.kind.__name__}, default {p.default!r}){choices}{bounds}: "
                    f"{p.help}"
                )
        metrics = getattr(spec, "metrics", ())
        if metrics:
            print("\nmetrics:")
            for m in metrics:
                print(f"  {m.name} ({m.direction} is better, {m.unit or 'no unit'}): {m.help}")
        print()
    return EXIT_OK
