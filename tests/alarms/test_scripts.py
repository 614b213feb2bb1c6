"""Runs ``scripts/*.alarmtest``: alarm behaviour over time, with a fixed clock.

Time 0 is 2026-11-26T12:00:00Z; times are ``0``, ``90s``, ``3m``, ``1h``, ``1m30s``.
One command per line; ``#`` starts a comment line.

    alarm NAME key=value ...        define a metric alarm (becomes the default alarm). Keys:
                                    period eval dta threshold op missing stat unit namespace
                                    lowsample; op also takes > >= < <= and the band operators;
                                    stat pNN is an ExtendedStatistic
    load [NAME] STEP [from T] V ... one datapoint per STEP from T (default 0): a number, ``_``
                                    (missing), ``V@N`` (sample count N), ``V[LO:HI]`` (band);
                                    ``VxK`` / ``_xK`` repeat K times
    composite NAME RULE...          define a composite alarm; the rest of the line is its rule
    state NAME STATE ["reason"]     SetAlarmState at the time of the last eval
    eval at T [expect [NAME] STATE ["reason"]]
                                    evaluate every metric alarm at T, then the composites that
                                    are new or have a child that changed (cascading)
    expect NAME STATE ["reason"]    current state (and StateReason; a reason ending in ``...``
                                    matches as a prefix)
    expect NAME history S1 S2 ...   every state the alarm has been in, oldest first
    expect NAME data {json}         StateReasonData contains these keys with these values
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from alarms.evaluate import evaluate_metric_alarm, evaluation_range
from alarms.model import (INITIAL_REASON, INSUFFICIENT_DATA, STATES, ChildState, CompositeAlarm,
                          Datapoint, Evaluation, MetricAlarm)
from alarms.rule import evaluate_composite, find_cycle, parse_rule, referenced_in_order, alarm_name

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.alarmtest"))
OPERATORS = {">": "GreaterThanThreshold", ">=": "GreaterThanOrEqualToThreshold",
             "<": "LessThanThreshold", "<=": "LessThanOrEqualToThreshold"}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_VALUE = re.compile(r"^(?P<v>_|[-+]?[\d.]+(?:e[-+]?\d+)?)(?:@(?P<n>[\d.]+))?"
                    r"(?:\[(?P<lo>[-+\d.e]+):(?P<hi>[-+\d.e]+)\])?(?:x(?P<k>\d+))?$")
_EXPECT = re.compile(r'^(?:(?P<name>\S+)\s+)?(?P<state>OK|ALARM|INSUFFICIENT_DATA)(?:\s+"(?P<reason>.*)")?$')


class ScriptError(AssertionError):
    pass


def duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if text == "0":
        return timedelta(0)
    if not text or not match:
        raise ScriptError(f"bad duration {text!r}")
    h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(hours=h, minutes=m, seconds=s)


@dataclass
class Status:
    value: str = INSUFFICIENT_DATA
    reason: str = INITIAL_REASON
    data: dict | None = None
    timestamp: datetime = T0
    history: list[str] = field(default_factory=lambda: [INSUFFICIENT_DATA])


class Run:
    def __init__(self):
        self.metric: dict[str, MetricAlarm] = {}
        self.composite: dict[str, CompositeAlarm] = {}
        self.series: dict[str, dict[datetime, Datapoint]] = {}
        self.status: dict[str, Status] = {}
        self.evaluated: set[str] = set()  # composites evaluated at least once
        self.default: str | None = None
        self.now = T0

    # ---- commands ----

    def alarm(self, rest: str) -> None:
        name, *pairs = rest.split()
        keys = dict(pair.split("=", 1) for pair in pairs)
        stat = keys.pop("stat", "Average")
        period = keys.pop("period", "60")
        op = keys.pop("op", "GreaterThanThreshold")
        config = dict(
            name=name, arn=ARN + name, namespace=keys.pop("namespace", "Test"),
            metric_name="m", period=int(period) if period.isdigit() else int(duration(period).total_seconds()),
            evaluation_periods=int(keys.pop("eval", "1")),
            comparison_operator=OPERATORS.get(op, op),
            treat_missing_data=keys.pop("missing", None), unit=keys.pop("unit", None),
            evaluate_low_sample_count_percentile=keys.pop("lowsample", None),
            statistic=None if stat.lower().startswith("p") else stat,
            extended_statistic=stat if stat.lower().startswith("p") else None)
        if "dta" in keys:
            config["datapoints_to_alarm"] = int(keys.pop("dta"))
        if "threshold" in keys:
            config["threshold"] = float(keys.pop("threshold"))
        if keys:
            raise ScriptError(f"unknown alarm keys {sorted(keys)}")
        self.metric[name] = MetricAlarm(**config)
        self.series[name] = {}
        self.status[name] = Status(timestamp=self.now)
        self.default = name

    def load(self, rest: str) -> None:
        words = rest.split()
        name = words.pop(0) if words[0] in self.metric else self.default
        step = duration(words.pop(0))
        start = T0
        if words[0] == "from":
            start = T0 + duration(words[1])
            words = words[2:]
        i = 0
        for word in words:
            match = _VALUE.match(word)
            if not match:
                raise ScriptError(f"bad value {word!r}")
            for _ in range(int(match["k"] or 1)):
                ts = start + i * step
                i += 1
                if match["v"] == "_":
                    self.series[name].pop(ts, None)
                    continue
                self.series[name][ts] = Datapoint(
                    ts, float(match["v"]), float(match["n"]) if match["n"] else None,
                    float(match["lo"]) if match["lo"] else None, float(match["hi"]) if match["hi"] else None)

    def define_composite(self, rest: str) -> None:
        name, rule = rest.split(None, 1)
        parse_rule(rule)
        self.composite[name] = CompositeAlarm(name=name, arn=ARN + name, rule_text=rule)
        self.status[name] = Status(timestamp=self.now)
        graph = {n: [alarm_name(r) for r in referenced_in_order(parse_rule(c.rule_text))]
                 for n, c in self.composite.items()}
        if find_cycle(graph):
            raise ScriptError(f"composite cycle {find_cycle(graph)}")

    def set_state(self, rest: str) -> None:
        words = shlex.split(rest)
        name, value = words[0], words[1]
        reason = words[2] if len(words) > 2 else "set by script"
        self._apply(name, Evaluation(value, reason, None, self.now))
        self._cascade({name})

    def eval(self, rest: str) -> None:
        at, _, expectation = rest.partition(" expect ")
        words = at.split()
        if words[0] != "at":
            raise ScriptError("expected 'eval at T'")
        self.now = T0 + duration(words[1])
        changed = set()
        for name, alarm in self.metric.items():
            start, end = evaluation_range(alarm, self.now)
            points = [p for ts, p in self.series[name].items() if start <= ts < end]
            result = evaluate_metric_alarm(alarm, points, self.status[name].value, self.now)
            if self._apply(name, result):
                changed.add(name)
        self._cascade(changed)
        if expectation:
            self.expect(expectation)

    def expect(self, rest: str) -> None:
        words = rest.split(None, 2)
        if len(words) >= 2 and words[1] in ("history", "data"):
            status = self._status(words[0])
            if words[1] == "history":
                assert status.history == words[2].split(), f"history of {words[0]}"
            else:
                wanted = json.loads(words[2])
                got = {k: (status.data or {}).get(k) for k in wanted}
                assert got == wanted, f"reason data of {words[0]}: {status.data}"
            return
        match = _EXPECT.match(rest.strip())
        if not match:
            raise ScriptError(f"bad expect {rest!r}")
        name = match["name"] or self.default
        status = self._status(name)
        assert status.value == match["state"], f"{name}: {status.value} ({status.reason})"
        if match["reason"] is not None:
            reason = match["reason"]
            if reason.endswith("..."):
                assert status.reason.startswith(reason[:-3]), f"{name}: {status.reason}"
            else:
                assert status.reason == reason, f"{name}: {status.reason}"

    # ---- the little engine ----

    def _status(self, name: str) -> Status:
        if name not in self.status:
            raise ScriptError(f"unknown alarm {name!r}")
        return self.status[name]

    def _apply(self, name: str, result: Evaluation) -> bool:
        """Store a transition; an unchanged or retained state changes nothing."""
        status = self.status[name]
        if result.state not in STATES:
            raise ScriptError(f"bad state {result.state!r}")
        if result.retained or result.state == status.value:
            return False
        status.value, status.reason, status.data = result.state, result.reason, result.reason_data
        status.timestamp = result.evaluated_at
        status.history.append(result.state)
        return True

    def _cascade(self, changed: set[str]) -> None:
        pending = set(changed)
        for _ in range(len(self.composite) + 2):
            if not pending and self.evaluated >= set(self.composite):
                return
            now_changed: set[str] = set()
            for name, comp in self.composite.items():
                refs = referenced_in_order(parse_rule(comp.rule_text))
                children = {ref: ChildState(ARN + alarm_name(ref), self.status[alarm_name(ref)].value,
                                            self.status[alarm_name(ref)].timestamp) for ref in refs}
                triggers = [ref for ref in refs if alarm_name(ref) in pending]
                if name not in self.evaluated:
                    result = evaluate_composite(comp, children, self.status[name].value, self.now)
                    self.evaluated.add(name)
                elif triggers:
                    result = evaluate_composite(comp, children, self.status[name].value, self.now,
                                                trigger=triggers[0])
                else:
                    continue
                if self._apply(name, result):
                    now_changed.add(name)
            pending = now_changed
        raise ScriptError("composite evaluation did not settle")


COMMANDS = {"alarm": Run.alarm, "load": Run.load, "composite": Run.define_composite,
            "state": Run.set_state, "eval": Run.eval, "expect": Run.expect}


def run_script(path: Path) -> None:
    run = Run()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        command, _, rest = line.partition(" ")
        if command not in COMMANDS:
            raise ScriptError(f"{path.name}:{number}: unknown command {command!r}")
        try:
            COMMANDS[command](run, rest)
        except AssertionError as exc:
            raise AssertionError(f"{path.name}:{number}: {line}\n{exc}") from None


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script(path):
    run_script(path)


def test_there_are_scripts():
    assert len(SCRIPTS) >= 5


def test_runner_reports_the_failing_line(tmp_path):
    script = tmp_path / "bad.alarmtest"
    script.write_text("alarm a threshold=1\nload 1m 5\neval at 1m expect OK\n")
    with pytest.raises(AssertionError, match=r"bad.alarmtest:3: eval at 1m expect OK"):
        run_script(script)
