"""`skiff run APP.py` deploys its app ephemerally: the app is listed while the run goes and gone
(stopped and removed by the server) once the run ends, whether it ends normally, on a failure,
on Ctrl-C or by kill -9 of the Python process running it. The server here closes idle
connections after 2 s (--idle-timeout 2): the run's deploying connection must outlive that."""
import json
import os
import subprocess
import time

import pytest

from conftest import BUILD, Server, _forget_client, gone, run_apps

APP = ("import os, time\nimport skiff\napp = skiff.App()\n\n@app.function()\n"
       "def f():\n    return 1\n\n@app.local_entrypoint()\ndef main(go: str, fail: bool = False):\n"
       "    assert f.remote() == 1\n    print('started', flush=True)\n"
       "    deadline = time.time() + 60\n"
       "    while not os.path.exists(go) and time.time() < deadline:\n"
       "        time.sleep(0.1)\n"
       "    if fail:\n        raise RuntimeError('entrypoint failed')\n"
       "    print('done', flush=True)\n")


@pytest.fixture(scope="module")
def server():
    s = Server()
    s.start("--idle-timeout", "2")
    _forget_client()
    yield s
    s.stop()
    _forget_client()


def start_run(server, tmp_path, name, *args):
    app = tmp_path / f"{name}.py"
    app.write_text(APP)
    go = tmp_path / f"{name}.go"
    env = dict(os.environ, HOME=server.home, SKIFF_SERVER=f"127.0.0.1:{server.port}")
    p = subprocess.Popen([os.path.join(BUILD, "bin", "skiff"), "run", str(app),
                          "--go", str(go), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "started", p.stderr.read()
    prefix = name.replace("_", "-") + "-run-"
    runs = run_apps(server, prefix)
    assert [a["state"] for a in runs] == ["deployed"], runs
    return p, go, prefix


def test_normal_end_outlives_the_idle_timeout(server, tmp_path):
    p, go, prefix = start_run(server, tmp_path, "idle_run")
    time.sleep(5)  # over twice the server's idle timeout: the deploying connection stays
    assert [a["state"] for a in run_apps(server, prefix)] == ["deployed"], server.log()
    go.touch()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.strip() == "done"
    assert gone(server, prefix), run_apps(server, prefix)


def test_failure(server, tmp_path):
    p, go, prefix = start_run(server, tmp_path, "fail_run", "--fail", "true")
    go.touch()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1, err
    assert "entrypoint failed" in err
    assert gone(server, prefix), run_apps(server, prefix)


def test_ctrl_c(server, tmp_path):
    p, go, prefix = start_run(server, tmp_path, "int_run")
    p.send_signal(2)  # Ctrl-C
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err
    assert gone(server, prefix), run_apps(server, prefix)


def test_kill_9(server, tmp_path):
    p, go, prefix = start_run(server, tmp_path, "kill_run")
    p.kill()  # SIGKILL: no cleanup in the Python process at all
    p.wait(timeout=60)
    assert gone(server, prefix), run_apps(server, prefix)
    assert "removed ephemeral app kill-run-run-" in server.log(200)


def test_a_second_run_of_the_same_file_meanwhile(server, tmp_path):
    """Two runs at once get apps of their own; ending one leaves the other."""
    p1, go1, prefix = start_run(server, tmp_path, "twice_run")
    app = tmp_path / "twice_run.py"
    env = dict(os.environ, HOME=server.home, SKIFF_SERVER=f"127.0.0.1:{server.port}")
    go2 = tmp_path / "second.go"
    p2 = subprocess.Popen([os.path.join(BUILD, "bin", "skiff"), "run", str(app), "--go",
                           str(go2)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env)
    assert p2.stdout.readline().strip() == "started"
    assert len(run_apps(server, prefix)) == 2
    p1.kill()
    p1.wait(timeout=60)
    deadline = time.time() + 20
    while len(run_apps(server, prefix)) != 1 and time.time() < deadline:
        time.sleep(0.1)
    assert len(run_apps(server, prefix)) == 1
    go2.touch()
    p2.communicate(timeout=60)
    assert p2.returncode == 0
    assert gone(server, prefix)


def test_deploy_ephemeral(server, tmp_path):
    """`skiff deploy --ephemeral` (what `skiff run` uses) holds the app until its input ends."""
    app = tmp_path / "held.py"
    app.write_text(APP)
    env = dict(os.environ, HOME=server.home, SKIFF_SERVER=f"127.0.0.1:{server.port}")
    p = subprocess.Popen([os.path.join(BUILD, "bin", "skiff"), "deploy", str(app), "--name",
                          "held-x", "--ephemeral"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    reply = json.loads(p.stdout.read())  # the output ends once deployed
    assert reply["app"] == "held-x"
    time.sleep(3)  # past the idle timeout
    assert p.poll() is None
    assert [a["state"] for a in run_apps(server, "held-x")] == ["deployed"]
    p.stdin.close()
    assert p.wait(timeout=30) == 0
    assert gone(server, "held-x")
    # A failed deploy does not wait: exit 1 at once, nothing deployed.
    bad = tmp_path / "broken.py"
    bad.write_text("import skiff\nraise RuntimeError('no')\n")
    r = subprocess.run([os.path.join(BUILD, "bin", "skiff"), "deploy", str(bad), "--name",
                        "broken-x", "--ephemeral"], stdin=subprocess.PIPE, capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert not run_apps(server, "broken-x")
    r = server.skiff("deploy", str(app), "--ephemeral", "--bogus", check=False)
    assert r.returncode == 2
