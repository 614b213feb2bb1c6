"""SIGKILL during alarm transitions and during webhook delivery.

A transition commits the alarm's state, its StateUpdate item and the SNS deliveries of its
actions in one transaction, and a delivery leaves the outbox (writing its Action item) only
after the endpoint answered.  So after a ``kill -9`` and a restart:

* every alarm's state is the newState of its latest StateUpdate item, the StateUpdate items
  of each alarm chain (each oldState is the previous newState), and every transition the
  API acknowledged is in the history;
* every committed transition with actions is delivered once the receiver is back, at least
  once (a delivery cut by the kill is sent again, same MessageId and signature), and no
  notification describes a transition that was not committed;
* each delivery has exactly one Action item.
"""
from __future__ import annotations

import json
import random
import signal
import threading
import time

import botocore.exceptions

from tests.conftest import LiveServer, make_client
from tests.sns_receiver import Receiver
from tests.test_alarms_live import EXTRA, advance, subscribe, wait_until

INITIAL_REASON = "Unchecked: Initial alarm creation"


def history(cw, name: str, kind: str) -> list[dict]:
    """All items of one type, oldest first."""
    items = []
    for page in cw.get_paginator("describe_alarm_history").paginate(
            AlarmName=name, HistoryItemType=kind, ScanBy="TimestampAscending"):
        items.extend(page["AlarmHistoryItems"])
    return items


def all_alarms(cw) -> list[dict]:
    out = []
    for page in cw.get_paginator("describe_alarms").paginate():
        out.extend(page["MetricAlarms"])
    return out


def check_consistent(cw) -> dict[str, list[dict]]:
    """Every alarm's state against its StateUpdate chain; the chains by alarm name."""
    chains = {}
    for alarm in all_alarms(cw):
        items = [json.loads(i["HistoryData"]) for i in history(cw, alarm["AlarmName"], "StateUpdate")]
        previous = {"stateValue": "INSUFFICIENT_DATA", "stateReason": INITIAL_REASON}
        for item in items:
            assert item["oldState"]["stateValue"] == previous["stateValue"], (alarm["AlarmName"], items)
            assert item["newState"]["stateValue"] != item["oldState"]["stateValue"]
            previous = item["newState"]
        assert (alarm["StateValue"], alarm["StateReason"]) == (
            previous["stateValue"], previous["stateReason"]), (alarm, items[-1:])
        chains[alarm["AlarmName"]] = items
    return chains


def test_sigkill_during_transitions_then_every_committed_transition_is_notified(tmp_path):
    data = tmp_path / "data"
    srv = LiveServer(data, extra_args=EXTRA).start()
    receiver = Receiver()
    rng = random.Random(5)
    try:
        sns = make_client("sns", srv.url)
        cw = make_client("cloudwatch", srv.url)
        topic = sns.create_topic(Name="crash")["TopicArn"]
        subscribe(sns, topic, receiver)
        flippers = [f"flip-{t}-{k}" for t in range(2) for k in range(5)]
        for name in flippers:
            cw.put_metric_alarm(AlarmName=name, Namespace="Crash", MetricName=name, Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1.0,
                                ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore",
                                AlarmActions=[topic], OKActions=[topic])
        receiver.down()
        acked: list[tuple[str, str, str]] = []
        stop = threading.Event()

        def flip(t: int):
            client = make_client("cloudwatch", srv.url)
            mine = [n for n in flippers if n.startswith(f"flip-{t}-")]
            i = 0
            while not stop.is_set():
                name = mine[i % len(mine)]
                value = "ALARM" if (i // len(mine)) % 2 == 0 else "OK"
                reason = f"flip {t} {i}"
                try:
                    client.set_alarm_state(AlarmName=name, StateValue=value, StateReason=reason)
                except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                    return
                acked.append((name, value, reason))
                i += 1

        threads = [threading.Thread(target=flip, args=(t,)) for t in range(2)]
        for thread in threads:
            thread.start()
        # and a burst of tick transitions: missing data treated as breaching moves these
        # from INSUFFICIENT_DATA to ALARM at the next tick (one commit for all of them)
        for k in range(150):
            cw.put_metric_alarm(AlarmName=f"burst-{k:03d}", Namespace="Crash", MetricName="none",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                                ComparisonOperator="GreaterThanThreshold",
                                TreatMissingData="breaching", AlarmActions=[topic])
        while len(acked) < 40:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.2))
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        for thread in threads:
            thread.join()
        srv.stop()

        srv.start()
        receiver.up()           # deliveries pending since before the kill go out from here on
        # burst alarms the kill left in INSUFFICIENT_DATA transition at the first ticks
        wait_until(lambda: all(a["StateValue"] == "ALARM" for a in all_alarms(cw)
                               if a["AlarmName"].startswith("burst-")), what="the burst")
        chains = check_consistent(cw)
        reasons = {(name, item["newState"]["stateValue"], item["newState"]["stateReason"])
                   for name, items in chains.items() for item in items}
        missing = [a for a in acked if a not in reasons]
        assert not missing, f"acknowledged transitions lost: {missing[:5]}"
        advance(srv, 21)        # the first attempts failed: SNS retries 20 s later
        expected = {(name, item["newState"]["stateValue"], item["newState"]["stateReason"])
                    for name, items in chains.items() for item in items
                    if name.startswith("flip-") or item["newState"]["stateValue"] == "ALARM"}

        def notified():
            got = set()
            for r in receiver.of_type("Notification"):
                m = json.loads(r["message"]["Message"])
                got.add((m["AlarmName"], m["NewStateValue"], m["NewStateReason"]))
            return got

        try:
            wait_until(lambda: expected <= notified(), timeout=60,
                       what=f"{len(expected)} notifications")
        except AssertionError:
            lost = sorted(expected - notified())
            raise AssertionError(f"{len(lost)} of {len(expected)} committed transitions not "
                                 f"notified, e.g. {lost[:3]}; server log: {srv.log()[-3000:]}")
        assert notified() <= expected, "a notification for a transition that was never committed"
        # one Action item per delivery (one subscriber), with the transition's timestamp
        for name, items in chains.items():
            if not items:
                continue
            actions = wait_until(lambda: (lambda got: got if len(got) == len(items) else None)(
                history(cw, name, "Action")), what=f"the Action items of {name}")
            assert {a["HistorySummary"] for a in actions} == {f"Successfully executed action {topic}"}
    finally:
        receiver.close()
        srv.stop()
    assert not receiver.errors, receiver.errors


def test_sigkill_during_webhook_delivery_redelivers(tmp_path):
    data = tmp_path / "data"
    srv = LiveServer(data, extra_args=EXTRA).start()
    receiver = Receiver()
    try:
        sns = make_client("sns", srv.url)
        cw = make_client("cloudwatch", srv.url)
        topic = sns.create_topic(Name="slow")["TopicArn"]
        subscribe(sns, topic, receiver)
        cw.put_metric_alarm(AlarmName="slow-hook", Namespace="Crash", MetricName="m",
                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                            ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore",
                            AlarmActions=[topic])
        receiver.delay = 8.0        # the POST is in flight while the server dies
        cw.set_alarm_state(AlarmName="slow-hook", StateValue="ALARM", StateReason="killed mid-POST")
        first = receiver.wait_for(lambda m: m["Type"] == "Notification", what="the first POST")
        assert cw.describe_alarm_history(AlarmName="slow-hook",
                                         HistoryItemType="Action")["AlarmHistoryItems"] == []
        srv.kill()
        receiver.delay = 0.0
        srv.start()
        # the delivery never got its answer: it is sent again, the same message
        wait_until(lambda: len(receiver.of_type("Notification")) >= 2, what="the redelivery")
        again = receiver.of_type("Notification")[1]
        assert again["verified"]
        for key in ("MessageId", "Signature", "Timestamp", "Message"):
            assert again["message"][key] == first["message"][key]
        assert again["headers"]["x-amz-sns-message-id"] == first["message"]["MessageId"]
        actions = wait_until(lambda: cw.describe_alarm_history(
            AlarmName="slow-hook", HistoryItemType="Action")["AlarmHistoryItems"],
            what="the Action item")
        assert [a["HistorySummary"] for a in actions] == [f"Successfully executed action {topic}"]
        check_consistent(cw)
    finally:
        receiver.delay = 0.0
        receiver.close()
        srv.stop()
    assert not receiver.errors, receiver.errors
