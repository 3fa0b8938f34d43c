"""Which arguments of a `seg` command are its inputs and outputs, and the guard `main()` puts
around every run: the outputs are checked before any work (none names an input or another output,
their folders can be written: core.outputs.output_checks), and a run with several outputs
publishes them together or not at all (core.outputs.publish). What such a run prints on stdout
(its success lines) is held until its outputs are published, so a run whose publication fails
never told the user it was done."""
from __future__ import annotations

import argparse
import io
import sys
from contextlib import contextmanager, redirect_stdout
from typing import Iterator, Sequence


def declare(p: argparse.ArgumentParser, outputs: Sequence[str] = (), inputs: Sequence[str] = (),
            folders: Sequence[str] = ()) -> None:
    """Name the output and input arguments of the command `p` (flags such as "--out", or
    positional names such as "labels"); folders: the outputs that are folders. Call it after
    the arguments are added."""
    dests = {}
    for action in p._actions:
        for option in action.option_strings:
            dests[option] = (option, action.dest)
        if not action.option_strings:
            dests[action.dest] = (action.dest.upper(), action.dest)
    p.set_defaults(seg_outputs=tuple(dests[n] for n in outputs), seg_inputs=tuple(dests[n] for n in inputs),
                   seg_folders=tuple(dests[n][0] for n in folders))


@contextmanager
def guarded(args: argparse.Namespace) -> Iterator[None]:
    """Check the outputs `declare` named before the run; hold their writes until it ends."""
    from ..core.outputs.output_checks import check_outputs
    from ..core.outputs.publish import outputs_together

    outputs = {name: getattr(args, dest, None) for name, dest in getattr(args, "seg_outputs", ())}
    inputs = {name: getattr(args, dest, None) for name, dest in getattr(args, "seg_inputs", ())}
    check_outputs(outputs, inputs, getattr(args, "seg_folders", ()))
    given = [value for value in outputs.values() if value]
    if len(given) < 2:  # one output is already written whole or not at all
        yield
        return
    held = io.StringIO()
    with outputs_together(given), redirect_stdout(held):
        yield
    sys.stdout.write(held.getvalue())  # only now: every output is in place
