"""The reference's own Python programs, with `import skiff as modal` (tests/python/apps/reference):
square(42) from another process, cube(42) across apps through `skiff run`, MyLifecycleClass,
the Flask job queue polling a spawned train_model, 100 gathered .remote.aio() calls of an async
function in about one call's time, and an async body awaiting a blocking function (420)."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import gone, run_apps

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "reference")
BUILD = os.path.abspath(os.environ.get("SKIFF_BUILD", "build"))
PKG = os.path.join(BUILD, "lib", "python3", "dist-packages")


@pytest.fixture(scope="module", autouse=True)
def apps(server):
    server.deploy(os.path.join(REF, "shared_app.py"))
    server.deploy(os.path.join(REF, "job_queue.py"))


def python(code, server):
    env = dict(os.environ, PYTHONPATH=PKG, HOME=server.home,
               SKIFF_SERVER=f"127.0.0.1:{server.port}")
    return subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


def test_square_from_another_process(server):
    r = python("import skiff as modal\n"
               "f = modal.Function.lookup('my-shared-app', 'square')\n"
               "print(f.remote(42))", server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1764"


def test_lifecycle_class(server):
    r = python("import skiff as modal\n"
               "C = modal.Cls.from_name('my-shared-app', 'MyLifecycleClass')\n"
               "print(C().foo.remote())", server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hello world"


def test_cube_across_apps_with_skiff_run(server):
    r = server.skiff("run", os.path.join(REF, "another_app.py"))
    assert "cube(42) = 74088" in r.stdout
    # The run's app was ephemeral: removed after.
    assert gone(server, "another-app-run-")


def test_skiff_run_stops_the_app_after_a_failure(server, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import skiff\napp = skiff.App()\n\n@app.function()\ndef f():\n"
                   "    return 1\n\n@app.local_entrypoint()\ndef main():\n"
                   "    assert f.remote() == 1\n    raise RuntimeError('entrypoint failed')\n")
    r = server.skiff("run", str(bad), check=False)
    assert r.returncode == 1
    assert "entrypoint failed" in r.stderr
    assert gone(server, "bad-run-")


def test_flask_job_queue(server):
    sys.path.insert(0, REF)
    import web_server
    client = web_server.web_app.test_client()
    r = client.post("/submit", json={"data": "dataset-1", "seconds": 2.0})
    assert r.status_code == 200
    call_id = r.get_json()["call_id"]
    r = client.get(f"/result/{call_id}")
    assert r.status_code == 202 and r.get_json() == {"result": None}
    deadline = time.time() + 60
    while time.time() < deadline:
        r = client.get(f"/result/{call_id}")
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200
    assert r.get_json() == {"result": {"trained_on": "dataset-1", "accuracy": 0.95}}


def test_async_gather_and_async_awaiting_blocking(server):
    r = server.skiff("run", os.path.join(REF, "async_app.py"))
    line = [x for x in r.stdout.splitlines() if x.startswith("100 calls in")][0]
    took = float(line.split()[3].rstrip("s"))
    assert took < 15, line  # one call takes 1 s; sequential calls would take 100 s


def test_skiff_run_stops_the_app_on_ctrl_c(server, tmp_path):
    app = tmp_path / "slow_run.py"
    app.write_text("import time\nimport skiff\napp = skiff.App()\n\n@app.function()\n"
                   "def f():\n    return 1\n\n@app.local_entrypoint()\ndef main():\n"
                   "    assert f.remote() == 1\n    print('started', flush=True)\n"
                   "    time.sleep(60)\n")
    env = dict(os.environ, HOME=server.home, SKIFF_SERVER=f"127.0.0.1:{server.port}")
    p = subprocess.Popen([os.path.join(BUILD, "bin", "skiff"), "run", str(app)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "started"
    assert [a["state"] for a in run_apps(server, "slow-run-run-")] == ["deployed"]
    p.send_signal(2)  # Ctrl-C
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert gone(server, "slow-run-run-")


def test_settings_reach_the_deploy(server, tmp_path):
    app = tmp_path / "settings_app.py"
    app.write_text(
        "import skiff\napp = skiff.App('settings-app')\n\n"
        "@app.function(timeout=30, retries=skiff.Retries(max_retries=2, backoff_coefficient=2.0,"
        " initial_delay=0.5, max_delay=5.0), min_containers=0, max_containers=3,"
        " buffer_containers=1, scaledown_window=20, memory=256, cpu=0.5)\n"
        "def f(x: int, y: str = 'a'):\n    return x\n\n"
        "@app.function(retries=4)\n@skiff.batched(max_batch_size=8, wait_ms=50)\n"
        "def g(xs):\n    return xs\n\n"
        "@app.cls(max_containers=2)\n@skiff.concurrent(max_inputs=5)\nclass C:\n"
        "    n: int = skiff.parameter(default=1)\n\n    @skiff.method()\n"
        "    def m(self):\n        return self.n\n")
    d = json.loads(server.skiff("deploy", str(app), "--name-check").stdout)
    fns = {f["name"]: f for f in d["functions"]}
    f = fns["f"]
    assert f["signature"] == "x:int, y:str?"
    assert (f["timeout"], f["max_containers"], f["buffer_containers"], f["scaledown_window"],
            f["memory"], f["cpu"]) == (30, 3, 1, 20, 256, 0.5)
    assert f["retries"] == {"max_retries": 2, "backoff_coefficient": 2.0, "initial_delay": 0.5,
                            "max_delay": 5.0}
    g = fns["g"]
    assert (g["max_batch_size"], g["wait_ms"], g["retries"]["max_retries"]) == (8, 50, 4)
    assert "C.m" in fns
    c = d["classes"][0]
    assert (c["name"], c["params"], c["max_containers"], c["max_inputs"]) == ("C", "n:int?", 2, 5)
    # Out-of-range settings fail the deploy, naming the problem.
    bad = tmp_path / "bad_settings.py"
    bad.write_text("import skiff\napp = skiff.App('bad-settings')\n\n"
                   "@app.function(timeout=0.5, max_containers=2, min_containers=5)\n"
                   "def f():\n    return 1\n")
    r = server.skiff("deploy", str(bad), check=False)
    assert r.returncode == 1 and "timeout" in r.stderr


def test_reference_options(server, tmp_path):
    """image= is accepted (and builds nothing); options skiff does not have are refused."""
    app = tmp_path / "img_app.py"
    app.write_text("import skiff as modal\nimage = modal.Image.debian_slim().pip_install('x')\n"
                   "app = modal.App('img-app', image=image)\n\n@app.function(image=image)\n"
                   "def f():\n    return 7\n\n@app.cls(image=image)\nclass C:\n"
                   "    @modal.method()\n    def m(self):\n        return 8\n")
    server.deploy(str(app))
    assert server.skiff("call", "img-app", "f").stdout.strip() == "7"
    bad = tmp_path / "secret_app.py"
    bad.write_text("import skiff as modal\napp = modal.App('secret-app')\n\n"
                   "@app.function(secrets=['s'])\ndef f():\n    return 1\n")
    r = server.skiff("deploy", str(bad), check=False)
    assert r.returncode == 1 and "secrets must be a list of skiff.Secret" in r.stderr
    bad.write_text("import skiff as modal\napp = modal.App('gpu-app')\n\n"
                   "@app.function(gpu='A100')\ndef f():\n    return 1\n")
    r = server.skiff("deploy", str(bad), check=False)
    assert r.returncode == 1 and "skiff has no gpu" in r.stderr
