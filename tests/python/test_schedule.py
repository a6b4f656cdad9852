"""Schedules of Python functions (schedule=skiff.Period(...) / skiff.Cron(...)): each run is a
spawned call, shown in `skiff stats`; bad schedules fail the deploy naming the problem."""
import json
import os
import textwrap
import time

import pytest

import skiff
from skiff.exception import InvalidError


def write(tmp_path, name, body):
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(body))
    return path


def stats(server, app, fn):
    return json.loads(server.skiff("stats", app, fn, "--json").stdout)


def test_period_and_cron(server, tmp_path):
    path = write(tmp_path, "pysched.py", """
        import skiff
        app = skiff.App("pysched")

        @app.function(schedule=skiff.Period(seconds=1))
        def tick(note=None):
            print("tick")
            return "ticked"

        @app.function(schedule=skiff.Cron("0 9 * * mon-fri"))
        def report():
            return None
        """)
    server.deploy(path)
    deadline = time.time() + 20
    while stats(server, "pysched", "tick")["schedule"]["runs"] < 2:
        assert time.time() < deadline, "tick did not run twice"
        time.sleep(0.1)
    s = stats(server, "pysched", "tick")["schedule"]
    assert s["spec"] == "every 1s"
    assert skiff.FunctionCall.from_id(s["last_call"]).get(timeout=10) == "ticked"
    r = stats(server, "pysched", "report")["schedule"]
    assert r["spec"] == "cron 0 9 * * mon-fri"
    assert r["next_run"] % 3600 == 0 and r["next_run"] // 3600 % 24 == 9  # 09:00 UTC
    assert time.gmtime(r["next_run"]).tm_wday < 5 and r["next_run"] > time.time()
    server.skiff("app", "stop", "pysched")


@pytest.mark.parametrize("decl,message", [
    ("schedule=skiff.Period(seconds=5)", "its parameter 'x' is required"),
    ("schedule=skiff.Cron('0 25 * * *')", "the hour field '25' is out of range 0-23"),
    ("schedule=skiff.Cron('0 9 * * *', timezone='Europe/Paris')", "schedules run in UTC"),
    ("schedule=skiff.Period(seconds=0.5)", "period_s 0.5 must be 1 s to a year"),
    ("schedule='hourly'", "schedule= takes skiff.Period(...) or skiff.Cron(...)"),
])
def test_bad_schedules_fail_the_deploy(server, tmp_path, decl, message):
    path = write(tmp_path, "badsched.py", f"""
        import skiff
        app = skiff.App("badsched")

        @app.function({decl})
        def f(x):
            return x
        """)
    r = server.skiff("deploy", path, check=False)
    assert r.returncode == 1
    assert message in r.stderr


def test_cron_refuses_other_timezones():
    with pytest.raises(InvalidError):
        skiff.Cron("* * * * *", timezone="America/New_York")
