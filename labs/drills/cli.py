"""`o11ykit drill list|start|brief|key|ack|diagnose|mitigate|status|watch|postmortem|end`.

The facilitator starts a drill (a shipped replay scenario, `fault:<id>` from the
catalogue, or `--random`) and keeps `drill watch` running, which applies the timeline and
verifies recovery; if it dies, any drill command picks up from the log. Participants see
the briefing, never the key (`drill key` is the facilitator's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from labs.cli import MARKS
from labs.drills import postmortem, scenario
from labs.drills.catalogue_ja import fault_text
from labs.drills.drill import Drill, DrillError
from labs.drills.state import DrillState, scoreboard
from labs.drills.words import say
from labs.grading import attribute_argument
from sample_app.companions import end_companion, register_companion
from sample_app.faults import catalogue

DRILL_TRAFFIC = "drill-traffic"  # its companion name on the stack


def register(commands: argparse._SubParsersAction) -> None:
    drill = commands.add_parser("drill", help="mock incident drills: blind, timed, scored")
    actions = drill.add_subparsers(dest="drill_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="the sample system's data directory")
    common.add_argument("--lang", choices=("en", "ja"), default="en")
    actions.add_parser("list", parents=[common], help="the scenarios").set_defaults(run=_list)
    start = actions.add_parser("start", parents=[common], help="(facilitator) start a drill")
    start.add_argument("scenario", nargs="?", help="a scenario id or fault:<catalogue id>")
    start.add_argument("--random", action="store_true", help="pick one at random (by --seed)")
    start.add_argument("--teams", required=True, help="comma-separated team names")
    start.add_argument("--seed", type=int, default=1)
    start.add_argument(
        "--time-scale",
        type=speed_factor,
        default=1.0,
        help="timeline speed factor: 2 plays it twice as fast, 0.5 half as fast",
    )
    start.add_argument(
        "--baseline", type=baseline_seconds, default=60.0, help="healthy seconds first (0 or more)"
    )
    start.add_argument("--no-traffic", action="store_true")
    start.set_defaults(run=_start)
    for name, run, text in (
        ("brief", _brief, "what participants are told"),
        ("key", _key, "(facilitator) the answer key"),
        ("status", _status, "the scoreboard"),
        ("watch", _watch, "(facilitator) apply the timeline, verify recovery"),
        ("end", _end, "(facilitator) end the drill, clear its faults"),
    ):
        actions.add_parser(name, parents=[common], help=text).set_defaults(run=run)
    team = argparse.ArgumentParser(add_help=False, parents=[common])
    team.add_argument("--team", required=True)
    actions.add_parser("ack", parents=[team], help="acknowledge the page").set_defaults(run=_ack)
    diagnose = actions.add_parser("diagnose", parents=[team], help="submit a diagnosis")
    diagnose.add_argument("--service")
    diagnose.add_argument("--operation")
    diagnose.add_argument("--attr", type=attribute_argument, help="KEY=VALUE")
    diagnose.add_argument("--class", dest="fault_class")
    diagnose.add_argument("--version")
    diagnose.set_defaults(run=_diagnose)
    mitigate = actions.add_parser("mitigate", parents=[team], help="apply a mitigation")
    mitigate.add_argument("mitigation", help="e.g. rollback-canary, disable-retries")
    mitigate.set_defaults(run=_mitigate)
    report = actions.add_parser("postmortem", parents=[common], help="the postmortem draft")
    report.add_argument("--out", help="write it to this file")
    report.set_defaults(run=_postmortem)


def speed_factor(text: str) -> float:
    """`--time-scale`: how many times faster than written the timeline plays, more than 0.
    argparse names the option in front of the message."""
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not 0 < factor < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a speed factor: a number more than 0 (2: twice as fast, 0.5:"
            " half as fast)"
        )
    return factor


def baseline_seconds(text: str) -> float:
    """`--baseline`: the healthy seconds before the first change, a finite number 0 or more.
    argparse names the option in front of the message."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds: a finite number, 0 or more (e.g. 60)"
        )
    return seconds


def _drill(args: argparse.Namespace) -> Drill:
    """The drill on the running system; exit saying so when none runs (no state file, or
    its processes died without `o11ykit app down`)."""
    from labs.system import found_state, is_running
    from sample_app.cli import data_dir

    state = found_state(data_dir(args))
    if state is None or not is_running(state):
        sys.exit(say(args.lang, "not_running"))
    return Drill(state)


def _guarded(action: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except DrillError as exc:
            print(f"o11ykit drill: {exc.said(args.lang)}", file=sys.stderr)
            return 2
        except KeyError as exc:
            print(f"o11ykit drill: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 2

    return run


@_guarded
def _start(args: argparse.Namespace) -> int:
    drill = _drill(args)
    if args.random:
        chosen = scenario.pick(args.seed).id
    elif args.scenario:
        chosen = args.scenario
    else:
        raise DrillError("no_scenario")
    teams = [t.strip() for t in args.teams.split(",") if t.strip()]
    drill.check_start(chosen, teams)  # refused before anything changes
    # A lab's fault would be one more for the teams to find, and not the drill's.
    from labs.session import stop_earlier_lab

    lab = stop_earlier_lab(drill.stack_state, starting=None)
    stopped = lab.stopped_text(args.lang) if lab is not None else None
    if stopped:
        print(stopped)
    picked = drill.start(
        chosen, teams, seed=args.seed, time_scale=args.time_scale, baseline_s=args.baseline
    )
    if not args.no_traffic:
        _start_traffic(drill)
    print(say(args.lang, "started", teams=say(args.lang, "separator").join(teams)))
    print(say(args.lang, "keep_watching"))
    del picked  # the facilitator sees the key with `drill key`, not here, where others look
    return 0


# The share of the drill's visits that are the root cause's tenant's (a flash sale's shop):
# without them its fault's code path may never run, and the drill has nothing to find.
DRILL_FOCUS_SHARE = 0.3


def traffic_command(chosen: scenario.Scenario, gateway: str, journal: Path) -> list[str]:
    """The drill's traffic process: an hour at 15 visits/s, the root cause reachable (its
    personas boosted as in a lab of that fault, its tenant or user given a share)."""
    from labs.session import lab_mix
    from sample_app.traffic import TrafficConfig
    from sample_app.traffic.cli import command_line

    focus = chosen.root_fault.focus
    share = DRILL_FOCUS_SHARE if focus.tenant or focus.user else 0.0
    return command_line(
        TrafficConfig(
            base_url=gateway,
            rate=15,
            duration_s=3600,
            personas=lab_mix(chosen.root_fault),
            focus_tenant=focus.tenant if share else None,
            focus_user=focus.user if share else None,
            focus_share=share,
            journal=journal,
        )
    )


def _start_traffic(drill: Drill) -> None:
    import subprocess

    command = traffic_command(
        drill.scenario,
        drill.stack_state["services"]["gateway"]["url"],
        drill.directory / "traffic.jsonl",
    )
    log = (drill.directory / "traffic.log").open("ab")
    with log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    register_companion(drill.stack_state["data_dir"], DRILL_TRAFFIC, process.pid)


_CATALOGUE_LINE = {
    "en": "a drill of one catalogue fault ({count} of them); --random picks any of these",
    "ja": "障害カタログにある障害を一つ使うドリル（全 {count} 種類）。"
    "--random はこの中から一つを選びます",
}


def _list(args: argparse.Namespace) -> int:
    """The shipped scenarios, one a line, then the catalogue's faults. Nothing of a key:
    participants may run it too."""
    for chosen in scenario.shipped():
        print(f"  {chosen.id:<20} {chosen.title(args.lang)}")
    line = _CATALOGUE_LINE[args.lang].format(count=len(catalogue.FAULTS))
    print(f"  {'fault:<id>':<20} {line}")
    return 0


@_guarded
def _brief(args: argparse.Namespace) -> int:
    chosen = _drill(args).scenario
    print(f"{chosen.title(args.lang)}\n\n{chosen.briefing(args.lang)}")
    return 0


@_guarded
def _key(args: argparse.Namespace) -> int:
    drill, language = _drill(args), args.lang
    chosen = drill.scenario
    kind = fault_text(chosen.root_fault, language).fault_class
    print(say(language, "root_cause", fault=chosen.root_cause, kind=kind))
    print(say(language, "expected", answer=chosen.key.expected))
    print(say(language, "mitigation", name=chosen.mitigation))
    for line in timeline_lines(chosen, drill.state, language):
        print(line)
    return 0


def timeline_lines(chosen: scenario.Scenario, state: DrillState, language: str = "en") -> list[str]:
    """The timeline as this drill plays it: seconds since its start, the healthy baseline
    and the time scale taken in, and the scenario's own seconds beside them when scaled."""
    scale, baseline = state.time_scale, state.baseline_s
    speed = (
        say(language, "scaled", scale=f"{scale:g}") if scale != 1 else say(language, "as_written")
    )
    lines = [say(language, "timeline", baseline=f"{baseline:g}", speed=speed)]
    for change in chosen.timeline:
        written = f"t+{change.at_s:g}s" + (
            say(language, "lasting", seconds=f"{change.duration_s:g}") if change.duration_s else ""
        )
        at = _seconds(baseline + change.at_s / scale)
        lines.append(
            "  "
            + say(language, "inject_at", at=at, fault=change.fault)
            + (
                say(language, "lasting", seconds=_seconds(change.duration_s / scale))
                if change.duration_s
                else ""
            )
            + (say(language, "red_herring") if change.red_herring else "")
            + (say(language, "written", written=written) if scale != 1 else "")
        )
    return lines


def _seconds(value: float) -> str:
    """Seconds for people: whole from 10 on, one decimal below."""
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}".removesuffix(".0")


@_guarded
def _ack(args: argparse.Namespace) -> int:
    _drill(args).acknowledge(args.team)
    print(say(args.lang, "acknowledged", team=args.team))
    return 0


@_guarded
def _diagnose(args: argparse.Namespace) -> int:
    answer = {
        k: getattr(args, k)
        for k in ("service", "operation", "fault_class", "version")
        if getattr(args, k) is not None
    }
    if args.attr:
        answer["attribute"] = args.attr  # {KEY: VALUE}: argparse refused any other form
    result = _drill(args).diagnose(args.team, answer)
    for field in result.fields:
        print(f"  {MARKS.get(field.credit, '✗')} {field.field}: {field.feedback(args.lang)}")
    correct = say(args.lang, "correct") if result.correct else ""
    print(say(args.lang, "score", score=result.score) + correct)
    return 0 if result.correct else 1


@_guarded
def _mitigate(args: argparse.Namespace) -> int:
    print(_drill(args).mitigate(args.team, args.mitigation, args.lang))
    return 0


@_guarded
def _status(args: argparse.Namespace) -> int:
    drill = _drill(args)
    for line in drill.tick(language=args.lang):
        print(line)
    for row in scoreboard(drill.state):
        print("  " + status_line(row, args.lang))
    return 0


def status_line(row: dict[str, Any], language: str = "en") -> str:
    """A scoreboard row for people: seconds rounded, — for what has not happened."""

    def shown(value: Any) -> Any:
        if value is None:
            return "—"
        if isinstance(value, float):
            return say(language, "seconds", seconds=_seconds(value))
        return value

    return say(language, "status_separator").join(
        say(language, "status_field", name=say(language, k), value=shown(v)) for k, v in row.items()
    )


@_guarded
def _watch(args: argparse.Namespace) -> int:
    drill = _drill(args)
    while drill.state.ended is None:
        for line in drill.tick(language=args.lang):
            print(time.strftime("%H:%M:%S"), line, flush=True)
        if drill.state.recovered is not None:
            print(say(args.lang, "recovery_verified"))
            return 0
        time.sleep(1.0)
    return 0


@_guarded
def _end(args: argparse.Namespace) -> int:

    drill = _drill(args)
    drill.end()
    end_companion(drill.stack_state["data_dir"], DRILL_TRAFFIC)
    print(say(args.lang, "ended"))
    return 0


@_guarded
def _postmortem(args: argparse.Namespace) -> int:
    text = postmortem.render(_drill(args), args.lang)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(say(args.lang, "wrote", path=args.out))
    else:
        print(text)
    return 0
