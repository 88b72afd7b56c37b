"""The guided tour behind `python3 dev.py start`: the sample system and one guided lab,
on the embedded defaults (the local trace store, SQLite), nothing but Python needed.

It starts the five services and the store, plays the failing-tenant lab as a learner
would (the story, each step's query and its answer from the store, the hint ladder), then
answers with what the traces show, is graded, and proves the cause by flipping the fault's
fix switch. In a terminal it pauses between steps; unattended (CI=true or no terminal) it
runs straight through. Everything it started is stopped when it ends, however it ends.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from labs import model
from labs.cli import print_step
from labs.guide import progress_line, say
from labs.session import PROGRESS_FILE, LabSession, describe_measurement, proof_verdict
from sample_app.stack import Stack, StackConfig
from sample_app.traffic import run

TOUR_LAB = "failing-tenant"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 dev.py start", description=__doc__)
    # No default: argparse checks the choices of what is given, never of a default.
    parser.add_argument("--lang", choices=model.LANGUAGES, help="default: O11YKIT_LANG, else en")
    parser.add_argument(
        "--lab",
        default=TOUR_LAB,
        choices=[lab.id for lab in model.all_labs()],
        metavar="LAB",
        help=f"which lab to play (default {TOUR_LAB}; `o11ykit lab list` names them)",
    )
    parser.add_argument("--data-dir", default=".o11ykit/tour", help="the tour's databases")
    args = parser.parse_args(argv)
    if args.lang is None:
        # As `o11ykit lab` reads it: unset or empty is English, anything else accepted or refused.
        args.lang = os.environ.get("O11YKIT_LANG") or "en"
        if args.lang not in model.LANGUAGES:
            parser.error(f"O11YKIT_LANG={args.lang}: accepted: {', '.join(model.LANGUAGES)}")
    pause = sys.stdin.isatty() and not os.environ.get("CI")
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    lab, language = model.get(args.lab), args.lang

    def wait() -> None:
        if pause:
            input("\n" + say(language, "go_on"))

    console.print(f"[bold]{say(language, 'tour_starting')}[/bold]")
    stack = Stack(StackConfig(data_dir=Path(args.data_dir), free_ports=True))
    stack.start(progress=lambda line: console.print(f"  {progress_line(language, line)}"))
    try:
        console.print(say(language, "tour_where", gateway=stack.gateway_url, store=stack.query_url))
        # A tour plays the lab from its beginning: an earlier tour's progress here would
        # start it at the last hint, with its answers counted.
        (stack.data_dir / PROGRESS_FILE).unlink(missing_ok=True)
        session = LabSession(lab, stack.state())
        console.print(f"\n[bold]{say(language, 'tour_lab', title=lab.title(language))}[/bold]\n")
        console.print(lab.story(language), soft_wrap=True)
        console.print(f"\n[bold]→[/bold] {lab.goal(language)}", soft_wrap=True)
        session.inject()
        console.print("\n" + say(language, "tour_traffic"))
        run(session.traffic_config(max(6.0, lab.warmup_s), seed=1))
        time.sleep(0.8)
        for number in range(1, len(lab.steps) + 1):
            wait()
            print_step(console, session, number, language, run=True)
        for _ in lab.hints:
            wait()
            taken, hint = session.hint()
            shown = say(language, "hint_short", number=taken, total=len(lab.hints))
            console.print(f"\n[bold]{shown}[/bold] {hint(language)}")
        answer = session.solve()
        console.print(f"\n[bold]{say(language, 'tour_answer')}[/bold] {answer}")
        result = session.answer(answer or {})
        for field in result.fields:
            console.print(
                f"  {'✓' if field.credit == 1 else '✗'} {field.field}: {field.feedback(language)}"
            )
        console.print("  " + say(language, "score", score=result.score))
        wait()
        console.print(
            f"\n[bold]{say(language, 'prove')}[/bold]: {lab.prove(language)}", soft_wrap=True
        )
        proved = True  # a lab without a fault: its text says there is nothing to flip
        if lab.catalogue_fault is not None:
            before, after = session.prove()
            for b, a in zip(before, after, strict=True):
                console.print(say(language, "before", measured=describe_measurement(b, language)))
                console.print(say(language, "after", measured=describe_measurement(a, language)))
            proved, verdict = proof_verdict(before, after, language)
            console.print(f"  {verdict}")
        session.stop()
    finally:
        stack.stop()
    console.print("\n" + say(language, "tour_next"))
    return 0 if result.correct and proved else 1


if __name__ == "__main__":
    sys.exit(main())
