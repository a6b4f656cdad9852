"""Python functions in containers (tests/python/apps/pyapp.py) called from Python, the CLI and
C: results, errors with their types and Python tracebacks, pickled objects, generators, async
bodies, concurrency, batching, classes with parameters and hooks, local(), bad input."""
import asyncio
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

import pytest

import skiff
from skiff import exception

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
sys.path.insert(0, APPS)
from shapes import AppError, Point  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def apps(server):
    server.deploy("examples/square.c")
    server.deploy("tests/apps/faulty.c")
    server.deploy(os.path.join(APPS, "pyapp.py"))


def fn(name):
    return skiff.Function.from_name("pyapp", name)


def test_python_calls_python():
    assert fn("square").remote(42) == 1764
    assert fn("square").remote(x=1.5) == 2.25


def test_cli_calls_python(server):
    r = server.skiff("call", "pyapp", "square", "42")
    assert r.stdout.strip() == "1764"
    r = server.skiff("call", "pyapp", "gen", "3")
    assert r.stdout.split() == ["0", "1", "2"]
    r = server.skiff("call", "pyapp", "fail", '"value"', check=False)
    assert r.returncode == 1
    assert "ValueError: bad value" in r.stderr
    assert 'pyapp.py", line' in r.stderr


def test_c_calls_python_and_python_calls_c():
    assert skiff.Function.from_name("faulty", "call").remote("pyapp", "square", [6]) == 36
    assert fn("c_square").remote(7) == 49


def test_errors_keep_type_and_python_traceback():
    with pytest.raises(ValueError, match="bad value") as ei:
        fn("fail").remote("value")
    tb = ei.value.remote_traceback
    assert 'pyapp.py", line' in tb and "in fail" in tb
    with pytest.raises(AppError, match="custom failure"):
        fn("fail").remote("custom")
    # A type of a module the caller has not imported: RemoteError naming it, nothing imported.
    with pytest.raises(exception.RemoteError, match="os.system: nope"):
        skiff.Function.from_name("faulty", "fail").remote("os.system", "nope")
    with pytest.raises(exception.RemoteError, match="this_module_does_not_exist_q.E: x"):
        skiff.Function.from_name("faulty", "fail").remote("this_module_does_not_exist_q.E", "x")
    assert "this_module_does_not_exist_q" not in sys.modules


def test_bad_results_and_arguments():
    with pytest.raises(exception.SerializationError, match="pickle"):
        fn("fail").remote("unpicklable")
    with pytest.raises(exception.SerializationError, match="64 bits"):
        fn("fail").remote("bigint")
    with pytest.raises(TypeError):
        fn("square").remote(1, 2)
    with pytest.raises(TypeError):
        fn("square").remote(y=2)
    with pytest.raises(exception.NotFoundError):
        fn("no_such_function").remote()


def test_pickled_objects():
    assert fn("move").remote(Point(1, 2), dx=5) == Point(6, 2)
    assert list(fn("move").map([Point(0, 0), Point(1, 1)])) == [Point(1, 0), Point(2, 1)]


def test_pickled_result_is_a_clear_error_for_c_cli_and_http(server):
    assert fn("make_point").remote() == Point(1, 2)
    # The CLI (libskiff in C) cannot show a pickled object: it says so instead of its bytes.
    r = server.skiff("call", "pyapp", "make_point", check=False)
    assert r.returncode == 1
    assert "DeserializationError" in r.stderr and "pickled Python object" in r.stderr
    # A C function calling it gets the same error.
    with pytest.raises(exception.DeserializationError, match="pickled Python object"):
        skiff.Function.from_name("faulty", "call").remote("pyapp", "make_point")
    # And the HTTP API.
    toml = open(os.path.join(server.home, ".skiff.toml")).read()
    tid = re.search(r'token_id\s*=\s*"([^"]+)"', toml).group(1)
    secret = re.search(r'token_secret\s*=\s*"([^"]+)"', toml).group(1)
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/api/v1/apps/pyapp/make_point/call", data=b"{}",
        headers={"X-Skiff-Token-Id": tid, "X-Skiff-Token-Secret": secret})
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=60)
    body = ei.value.read().decode()
    assert "DeserializationError" in body and "pickled Python object" in body


def test_generators():
    assert list(fn("gen").remote_gen(4)) == [0, 1, 2, 3]
    got = []
    with pytest.raises(RuntimeError, match="gen failed at 2"):
        for i in fn("gen").remote_gen(5, fail_at=2):
            got.append(i)
    assert got == [0, 1]
    assert list(fn("agen").remote_gen(3)) == [0, 10, 20]


def test_async_bodies():
    assert fn("aplus").remote(41) == 42
    assert fn("async_awaits_blocking").remote() == 420


def test_call_graph_links_calls_of_sync_and_async_bodies():
    for name, child in (("c_square", "square"), ("async_awaits_blocking", "blocking_420")):
        call = fn(name).spawn(*([3] if name == "c_square" else []))
        call.get(timeout=60)
        graph = call.get_call_graph()
        assert len(graph) == 1 and graph[0].status == "SUCCESS"
        assert [k.function_name.split(".")[-1] for k in graph[0].children] == [child], graph


def test_concurrent_async_fanout():
    """100 .remote.aio() calls of an async function (1 s each, 100 inputs per container) in
    about one function's time."""
    async def main():
        f = fn("slow_async")
        await f.remote.aio(-1, 0.0)  # a warm container
        t = time.monotonic()
        out = await asyncio.gather(*[f.remote.aio(i) for i in range(100)])
        return out, time.monotonic() - t

    out, took = asyncio.run(main())
    assert out == list(range(100))
    assert took < 15, took  # sequential: 100 s


def test_concurrent_threads():
    out = list(fn("slow_sync").map(range(4), kwargs={"seconds": 1.0}))
    assert [o[0] for o in out] == [0, 1, 2, 3]


def test_batched():
    calls = [fn("double").spawn(i) for i in range(4)]
    out = skiff.FunctionCall.gather(*calls)
    assert [o[0] for o in out] == [0, 2, 4, 6]
    assert max(o[1] for o in out) > 1  # some inputs ran in one batch


def test_classes_with_parameters_and_hooks():
    Counter = skiff.Cls.from_name("pyapp", "Counter")
    c = Counter(greeting="yo", n=3)
    assert c.hello.remote() == "yo x3"
    assert c.count.remote() >= 2
    assert Counter().hello.remote() == "hi x1"
    assert list(c.items.remote_gen(2)) == ["yo0", "yo1"]


def test_local():
    import pyapp
    assert pyapp.square.local(5) == 25
    assert pyapp.square(6) == 36
    assert pyapp.square.get_raw_f()(3) == 9
    c = pyapp.Counter(greeting="yo", n=2)
    assert c.hello.local() == "yo x2"  # entered locally, as a container would
    assert c.count.local() == 2  # the same local instance
    assert c.hello.remote() == "yo x2"  # and the deployed class, by the app's name
    with pytest.raises(exception.ExecutionError):
        skiff.Cls.from_name("pyapp", "Counter")().hello.local()


def test_function_timeout():
    with pytest.raises(exception.FunctionTimeoutError):
        fn("fail").remote("sleep")


def test_crash_in_a_c_extension_is_a_remote_error_naming_the_signal():
    with pytest.raises(exception.RemoteError, match="SIGSEGV|signal 11|Segmentation"):
        fn("crash").remote()
    assert fn("square").remote(3) == 9  # the function's other containers still serve


def test_retries():
    assert skiff.Cls.from_name("pyapp", "Flaky")().run.remote() == 3


def test_snapshot_template_forks_containers(server):
    server.deploy(os.path.join(APPS, "snapapp.py"))
    Model = skiff.Cls.from_name("snapapp", "Model")
    m = Model(tag="x")
    outs = [c.get(timeout=120) for c in [m.info.spawn(1.0) for _ in range(3)]]
    for o in outs:
        assert o["weights"] == "weights-x"
        # Imported and entered (snap) once, in the template; the containers are its forks.
        assert o["import_pid"] == o["snap_pid"] != o["pid"]
        assert o["enter_pid"] == o["pid"]
    assert len({o["pid"] for o in outs}) >= 2  # several containers, one template
    assert len({o["snap_pid"] for o in outs}) == 1
    assert isinstance(m.ainfo.remote(), int)  # async bodies work in a forked container


@pytest.mark.parametrize("name", ["spin", "aspin"])
def test_cancel_interrupts_a_running_body(name):
    """cancel() stops a running Python body (InputCancellation in it; an async body's task is
    cancelled): the function's one container is free again long before the body's 60 s."""
    f = fn(name)
    assert f.remote(0) == "done"  # a warm container
    call = f.spawn(60)
    deadline = time.time() + 30
    while f.get_current_stats().num_running_inputs < 1 and time.time() < deadline:
        time.sleep(0.05)
    t = time.time()
    call.cancel()
    with pytest.raises(exception.CancelledError):
        call.get(timeout=30)
    assert f.remote(0) == "done"
    # Interrupted: well under a second here; a body left running holds the container until the
    # server's own stop of an unresponsive input (about 10 s).
    assert time.time() - t < 5
