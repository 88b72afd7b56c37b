"""`o11ykit lab list|start|look|hint|answer|check|prove|solve|stop|reset`.

`start` brings the sample system up when it is not running (local store by default),
injects the lab's fault with the lab's scope, starts its traffic and walks through the
guide; in a terminal it pauses between steps, without one (or with CI=true) it prints
them all. Progress is kept beside the stack's state, so each command picks up where the
last one left off.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from labs import grading, model
from labs.guide import STORE_SOURCES, progress_line, say
from o11ykit.timeformats import format_duration

if TYPE_CHECKING:
    from labs.session import EarlierLab

SHOWN_GROUPS = 12
# Newest first: a few traces are enough to open one; the rest are the command's to list.
SHOWN_TRACES = 5
# Spans drawn of the trace a walk-through opens: an N+1 trace holds hundreds.
SHOWN_SPANS = 25
MARKS = {1: "✓", 0.5: "½"}  # full and half credit; anything else is ✗
BACKENDS = ("local", "jaeger", "honeycomb")
# What a lab's start saves in its progress, to be every later command's default: the option,
# its variable in the environment, its default without either, and what it accepts.
PREFERENCES = {
    "lang": ("O11YKIT_LANG", "en", model.LANGUAGES),
    "backend": ("O11YKIT_LAB_BACKEND", "local", BACKENDS),
}


def register(commands: argparse._SubParsersAction) -> None:
    lab = commands.add_parser("lab", help="guided, graded labs on the sample system")
    actions = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    # No defaults here: the lab's start saves them, and later commands take them from there.
    common.add_argument(
        "--lang",
        choices=model.LANGUAGES,
        help="hints, feedback and steps in this language (default: the lab's start's,"
        " else O11YKIT_LANG, else en)",
    )
    common.add_argument("--data-dir", help="the sample system's data directory")
    common.add_argument(
        "--backend",
        choices=BACKENDS,
        help="where the learner looks: the local store, Jaeger or Honeycomb (default: the"
        " lab's start's, else O11YKIT_LAB_BACKEND, else local)",
    )
    actions.add_parser("list", parents=[common], help="the labs").set_defaults(run=_list)
    start = actions.add_parser("start", parents=[common], help="start a lab")
    start.add_argument("lab_id", metavar="LAB")
    start.add_argument("--no-traffic", action="store_true", help="send your own requests")
    start.add_argument(
        "--free-ports", action="store_true", help="start the system on any free ports"
    )
    start.set_defaults(run=_start)
    look = actions.add_parser("look", parents=[common], help="a step's query, for your backend")
    look.add_argument("step", type=int, nargs="?", help="step number (all steps without it)")
    look.add_argument(
        "--run", dest="run_query", action="store_true", help="run it against the local store"
    )
    look.set_defaults(run=_look)
    actions.add_parser("hint", parents=[common], help="the next hint").set_defaults(run=_hint)
    answer = actions.add_parser("answer", parents=[common], help="submit and grade an answer")
    answer.add_argument("--service")
    answer.add_argument("--operation")
    answer.add_argument("--attr", type=grading.attribute_argument, help="KEY=VALUE")
    answer.add_argument("--class", dest="fault_class", help="the kind of fault")
    answer.add_argument("--version")
    answer.add_argument("--count", type=grading.count_argument)
    answer.set_defaults(run=_answer)
    actions.add_parser(
        "check", parents=[common], help="your answers so far, and the best score"
    ).set_defaults(run=_check)
    actions.add_parser(
        "prove", parents=[common], help="flip the fix switch; watch the signal go"
    ).set_defaults(run=_prove)
    actions.add_parser(
        "solve", parents=[common], help="(facilitators) run the lab's solver"
    ).set_defaults(run=_solve)
    actions.add_parser(
        "stop", parents=[common], help="clear the fault, stop the traffic"
    ).set_defaults(run=_stop)
    actions.add_parser(
        "reset", parents=[common], help="stop, and forget the progress"
    ).set_defaults(run=_reset)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 110)


def _interactive() -> bool:
    return sys.stdin.isatty() and not os.environ.get("CI")


def _state(args: argparse.Namespace, start: bool = False) -> dict:
    """The running system's state; a start brings one up where none runs, after stopping
    what is left of one whose processes died without `o11ykit app down`."""
    from labs.system import end_leftovers, found_state, is_running, located
    from sample_app import stack
    from sample_app.cli import data_dir

    directory = data_dir(args)
    state = found_state(directory)
    if state is not None and not is_running(state):
        if not start:
            sys.exit(say(_language_before_progress(args, directory), "not_running"))
        end_leftovers(state)
        state = None
    if state is None and start:
        config = stack.StackConfig(
            data_dir=directory, die_with_parent=False, free_ports=getattr(args, "free_ports", False)
        )
        running = stack.Stack(config)
        # A start has settled its language by now (_session): the seeding line in it.
        running.start(progress=lambda line: print(progress_line(args.lang or "en", line)))
        state = located(running.state(), directory)
    if state is None:
        sys.exit(say(_language_before_progress(args, directory), "not_running"))
    return state


def _language_before_progress(args: argparse.Namespace, directory: str | os.PathLike) -> str:
    """The language of a message said before the lab's progress is read (the system is
    not running): as the later commands settle it, from the progress file if there is one."""
    import json
    from pathlib import Path

    from labs.session import PROGRESS_FILE

    try:
        saved = json.loads((Path(directory) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        saved = {}
    settled = argparse.Namespace(lang=getattr(args, "lang", None), backend=None)
    settle_preferences(settled, saved if isinstance(saved, dict) else {})
    return settled.lang


def settle_preferences(
    args: argparse.Namespace, saved: dict[str, Any], environ: Any = None
) -> None:
    """Fill in `--lang` and `--backend` where not given: as the lab's start chose them
    (`saved`, its progress), else from the environment, else the defaults. A learner who
    started with `--lang ja` gets hints and feedback in Japanese without saying it again."""
    environ = os.environ if environ is None else environ
    for name, (variable, default, accepted) in PREFERENCES.items():
        if getattr(args, name, None) is not None:
            continue
        from_environment = environ.get(variable) or default
        if from_environment not in accepted:
            sys.exit(f"{variable}={from_environment}: accepted: {', '.join(accepted)}")
        chosen = saved.get(name)
        setattr(args, name, chosen if chosen in accepted else from_environment)


def _session(args: argparse.Namespace, lab_id: str | None = None, start: bool = False) -> Any:
    import json
    from pathlib import Path

    from labs.session import PROGRESS_FILE, LabSession

    if start:  # a start chooses afresh, and says what it does in its language from the first
        settle_preferences(args, {})
    if lab_id is not None:  # before the system starts: a mistyped id started it, and left it up
        _known_lab(lab_id, args.lang)
    state = _state(args, start)
    try:
        saved = json.loads((Path(state["data_dir"]) / PROGRESS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        saved = {}
    if not isinstance(saved, dict):
        saved = {}
    if lab_id is None:
        lab_id = saved.get("lab")
        if not isinstance(lab_id, str):
            settle_preferences(args, {})
            sys.exit(say(args.lang, "no_lab"))
    # A start chooses afresh; any other command follows the start of the lab it acts on.
    settle_preferences(args, {} if start or saved.get("lab") != lab_id else saved)
    return LabSession(_known_lab(lab_id, args.lang), state, backend=args.backend)


def _known_lab(lab_id: str, language: str) -> model.Lab:
    """The lab of that id, or exit naming the labs there are."""
    try:
        return model.get(lab_id)
    except KeyError:
        labs = ", ".join(lab.id for lab in model.all_labs())
        sys.exit(say(language, "no_such_lab", lab=repr(lab_id), labs=labs))


def _list(args: argparse.Namespace) -> int:
    settle_preferences(args, {})
    for lab in model.all_labs():
        level = say(args.lang, lab.level)
        minutes = say(args.lang, "minutes_short", minutes=f"{lab.minutes:>3}")
        print(f"  {lab.id:<20} {padded(level, 13)} {minutes}  {lab.title(args.lang)}")
    return 0


def padded(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns: a Japanese character takes two, and
    padding by characters left the columns after it out of line."""
    from rich.cells import cell_len

    return text + " " * max(0, width - cell_len(text))


def print_step(console: Any, session: Any, number: int, language: str, run: bool) -> None:
    step = session.lab.steps[number - 1]
    console.print(f"\n[bold]{number}. {step.title(language)}[/bold]")
    console.print(step.text(language), soft_wrap=True)
    look = session.look(step, language)
    if look is None:
        return
    console.print(f"  → {look.text}", soft_wrap=True)
    if run and session.backend == "local":
        result = session.run_look(step)
        show_result(console, result, language)
        open_one_trace(console, session.query, result, language)
    elif run and session.backend == "honeycomb":
        from labs.session import honeycomb_answer

        answer = honeycomb_answer(session.look_spec(step))
        if answer["kind"] == "link only":
            console.print(say(language, "link_only", reason=answer["reason"]))
        else:
            for row in answer["rows"][:SHOWN_GROUPS]:
                console.print(f"    {row}")


def show_result(console: Any, result: dict | None, language: str = "en") -> None:
    """A look's answer from the store; when nothing matched, that, and what to do about it
    (an empty answer said nothing, as if the look had not run)."""
    if not result:
        return
    if result.get("kind") == "breakdown":
        groups = result.get("groups", [])
        console.print(breakdown_table_in(result, language, rows=SHOWN_GROUPS))
        if not groups:
            console.print(say(language, "no_spans"))
        hidden = len(groups) - SHOWN_GROUPS
        if hidden > 0:
            console.print(more_rows(result, hidden, language))
    else:
        traces = result.get("traces", [])
        if not traces:
            console.print(say(language, "no_traces"))
        for trace in traces[:SHOWN_TRACES]:
            counts = say(language, "trace_counts", spans=trace["spans"], errors=trace["errors"])
            console.print(
                f"    {trace['traceId']}  {trace['root']}  {trace['durationMs']:.1f} ms  {counts}"
            )
        hidden = len(traces) - SHOWN_TRACES
        if hidden > 0:
            console.print(say(language, "more_traces", hidden=hidden))


def more_rows(result: dict, hidden: int, language: str = "en") -> str:
    """That `hidden` rows of the breakdown are not drawn, and what shows them: the look's
    command, unless the store kept groups past its limit (`moreGroups`), when it needs a
    larger `--limit` (the look's command itself prints `traces breakdown`'s 50 at most)."""
    from o11ykit.argtypes import MAX_LIMIT
    from o11ykit.traces_cli import breakdown_groups

    if not result.get("moreGroups"):
        return say(language, "more_rows", hidden=hidden)
    total = breakdown_groups(result)
    return say(
        language,
        "more_rows_past_limit",
        hidden=hidden,
        shown=len(result.get("groups", [])),
        total=total,
        limit=min(total, MAX_LIMIT),
    )


def breakdown_table_in(answer: dict, language: str = "en", rows: int | None = None) -> Any:
    """The table `o11ykit traces breakdown` prints, its title and caption in `language`;
    the column headings stay as the command prints them, since the steps name them.
    `rows`: the first groups alone (the title counts them all)."""
    from rich.cells import cell_len
    from rich.text import Text

    from o11ykit.traces_cli import breakdown_groups, breakdown_table, printable

    table = breakdown_table(answer, rows)
    if language == "en":
        return table
    source = answer.get("source", "")
    title = say(
        language,
        "breakdown_title",
        total=answer["total"],
        by=answer["groupBy"],
        groups=breakdown_groups(answer),
        source=say(language, source) if source in STORE_SOURCES else source,
    )
    table.title = Text(printable(title))
    # As wide as its title: a Japanese title is wider than the English one, and wrapped to
    # the table's width it could split the number of groups from its word.
    table.min_width = cell_len(table.title.plain)
    if answer.get("moreGroups"):
        table.caption = say(language, "more_groups", hidden=answer["moreGroups"])
    return table


def open_one_trace(console: Any, query: Any, result: dict | None, language: str = "en") -> None:
    """Draw one of the traces a search listed, as the step asks the learner to open one
    (`o11ykit traces show`): of those shown, the one with the most spans (the newest of
    them on a tie), since a step may say to choose one with many (n-plus-one)."""
    from o11ykit.backends.query_spec import url_args
    from o11ykit.traces_cli import waterfall

    shown = ((result or {}).get("traces") or [])[:SHOWN_TRACES]
    if query is None or not shown:
        return
    richest = max(shown, key=lambda summary: summary["spans"])  # max keeps the first of ties
    trace = query.get_trace(richest["traceId"])
    if trace is None:  # evicted since the search: nothing to draw
        return
    command = shlex.join(["o11ykit", "traces", "show", trace.trace_id, *url_args(query.base_url)])
    console.print(f"  → {command}", soft_wrap=True)

    def more_spans(hidden: int) -> str:
        return say(language, "more_spans", hidden=hidden)

    console.print(waterfall(trace, most=SHOWN_SPANS, more_spans=more_spans))


def _start(args: argparse.Namespace) -> int:
    from labs.session import stop_earlier_lab

    session = _session(args, args.lab_id, start=True)
    lab, language, console = session.lab, args.lang, _console()
    refuse_during_a_drill(session.state, language)
    if session.progress.get("traffic_pid"):
        session.stop()
    # Before this lab's progress is saved over it: the progress file says which lab ran.
    earlier = stop_earlier_lab(session.state, lab.id, args.backend)
    if earlier is not None:
        say_earlier_lab(console, earlier, session.looks_window_s(), language)
    # The same lab again: as the tour does, from the beginning. Kept, its hints and answers
    # had the next `lab hint` give the last hint (the answer) first.
    hints, answers = session.forget_progress()
    if hints or answers:
        console.print(say(language, "afresh", lab=lab.id, hints=hints, answers=answers))
    session.progress.update(lang=language, backend=args.backend)  # saved by inject
    session.inject()
    if not args.no_traffic:
        session.start_background_traffic()
    level = say(language, "level_minutes", level=say(language, lab.level), minutes=lab.minutes)
    console.print(f"\n[bold]{lab.title(language)}[/bold]  {level}\n")
    console.print(lab.story(language), soft_wrap=True)
    console.print(f"\n[bold]→[/bold] {lab.goal(language)}", soft_wrap=True)
    for number in range(1, len(lab.steps) + 1):
        if _interactive():
            input("\n" + say(language, "next_step"))
        print_step(console, session, number, language, run=False)
    console.print("\n" + say(language, "lab_commands"))
    return 0


def refuse_during_a_drill(state: dict[str, Any], language: str = "en") -> None:
    """A lab's fault in the middle of a drill would be one more for the teams to find."""
    from labs.drills.drill import running_drill

    running = running_drill(state["data_dir"])
    if running is not None:
        sys.exit(say(language, "drill_running", drill=running))


def say_earlier_lab(console: Any, earlier: EarlierLab, window_s: int, language: str = "en") -> None:
    """That the lab before was stopped, and how long its traces stay in this one's looks."""
    from labs.session import now

    stopped = earlier.stopped_text(language)
    if stopped:
        console.print(stopped)
    if earlier.fault is None or earlier.stopped is None:
        return
    until = earlier.stopped + timedelta(seconds=window_s)
    if until > now():
        window = format_duration(window_s * 10**9)
        console.print(
            say(language, "traces_stay", lab=earlier.lab_id, window=window, until=f"{until:%H:%M}")
        )


def _look(args: argparse.Namespace) -> int:
    session, console = _session(args), _console()
    numbers = [args.step] if args.step is not None else range(1, len(session.lab.steps) + 1)
    for number in numbers:
        if not 1 <= number <= len(session.lab.steps):
            sys.exit(say(args.lang, "no_step", number=number, steps=len(session.lab.steps)))
        print_step(console, session, number, args.lang, run=args.run_query)
    return 0


def _hint(args: argparse.Namespace) -> int:
    session = _session(args)
    number, hint = session.hint()
    print(
        say(args.lang, "hint_of", number=number, total=len(session.lab.hints), text=hint(args.lang))
    )
    return 0


def _answer(args: argparse.Namespace) -> int:
    session = _session(args)
    given: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("service", "operation", "fault_class", "version", "count")
        if getattr(args, k) is not None
    }
    if args.attr:
        given["attribute"] = args.attr
    result = session.answer(given)
    for field in result.fields:
        mark = MARKS.get(field.credit, "✗")
        print(f"  {mark} {field.field}: {field.feedback(args.lang)}")
    for field in result.details.get("ungraded", []):
        print(say(args.lang, "not_graded", field=field))
    solved = say(args.lang, "solved") if result.correct else ""
    print(say(args.lang, "score", score=result.score) + solved)
    return 0 if result.correct else 1


def _check(args: argparse.Namespace) -> int:
    session = _session(args)
    answers = session.progress["answers"]
    best = max((a["score"] for a in answers), default=0)
    hints = session.progress["hints"]
    print(say(args.lang, "check", lab=session.lab.id, answers=len(answers), best=best, hints=hints))
    return 0 if best == 100 else 1


def _prove(args: argparse.Namespace) -> int:
    from labs.session import CannotProve, describe_measurement, proof_verdict

    session = _session(args)
    print(session.lab.prove(args.lang))
    if session.lab.catalogue_fault is None:
        return 0  # the text says why there is nothing to flip
    try:
        before, after = session.prove()
    except CannotProve as exc:
        print(f"o11ykit lab prove: {exc.said(args.lang)}", file=sys.stderr)
        return 1
    for b, a in zip(before, after, strict=True):
        print(say(args.lang, "before_fix", measured=describe_measurement(b, args.lang)))
        print(say(args.lang, "after_fix", measured=describe_measurement(a, args.lang)))
    proved, verdict = proof_verdict(before, after, args.lang, command="o11ykit lab prove")
    print(verdict)
    return 0 if proved else 1


def _solve(args: argparse.Namespace) -> int:
    from labs.session import Refused

    session = _session(args)
    try:
        solved = session.solve()
    except Refused as exc:
        print(f"o11ykit lab solve: {exc.said(args.lang)}", file=sys.stderr)
        return 1
    print(solved or say(args.lang, "no_solution"))
    return 0


def _stop(args: argparse.Namespace) -> int:
    _session(args).stop()
    print(say(args.lang, "stopped"))
    return 0


def _reset(args: argparse.Namespace) -> int:
    session = _session(args)
    session.stop()
    session.progress_path.unlink(missing_ok=True)
    print(say(args.lang, "forgotten", lab=session.lab.id))
    return 0
