"""The Python client (skiff package over libskiff) against a real skiffd running C apps:
every client call and its .aio twin, maps with order/exceptions/kwargs, generators, classes with
parameters, errors and their types, pickled objects between Python callers, bad input."""
import asyncio
import dataclasses
import time

import pytest

import skiff
from skiff import exception


@pytest.fixture(scope="module", autouse=True)
def apps(server):
    for app in ("examples/square.c", "examples/jobs.c", "examples/web.c", "tests/apps/faulty.c",
                "tests/apps/worker_app.c"):
        server.deploy(app)


def test_square_remote():
    f = skiff.Function.from_name("my-shared-app", "square")
    assert f.remote(42) == 1764
    assert f.remote(x=5) == 25
    assert f.remote(1.5) == 2.25
    assert f.object_id.startswith("fu-")


def test_lookup_and_hydrate():
    f = skiff.Function.lookup("my-shared-app", "square")
    assert f.object_id.startswith("fu-")
    assert skiff.Function.from_name("my-shared-app", "square").hydrate().remote(3) == 9


def test_not_found():
    with pytest.raises(exception.NotFoundError):
        skiff.Function.lookup("my-shared-app", "nope")
    f = skiff.Function.from_name("no-such-app", "square")  # lazy: nothing asked yet
    with pytest.raises(exception.NotFoundError):
        f.remote(1)


def test_user_errors_keep_their_type_and_traceback():
    f = skiff.Function.from_name("faulty", "fail")
    with pytest.raises(ValueError, match="bad value") as ei:
        f.remote("ValueError", "bad value")
    assert ei.value.remote_traceback
    assert any("Remote traceback" in n for n in ei.value.__notes__)
    # A type the caller cannot name: RemoteError naming it.
    with pytest.raises(exception.RemoteError, match="ParseError: nope"):
        f.remote("ParseError", "nope")
    # The square of a string: the C function's TypeError.
    with pytest.raises(TypeError):
        skiff.Function.from_name("my-shared-app", "square").remote("x")


def test_wrong_arguments():
    sq = skiff.Function.from_name("my-shared-app", "square")
    with pytest.raises(TypeError):
        sq.remote(1, 2)
    with pytest.raises(TypeError):
        sq.remote(y=1)


def test_values_roundtrip():
    echo = skiff.Function.from_name("faulty", "echo")
    v = [None, True, False, -(2 ** 63), 2 ** 63 - 1, 1.25, "héllo", b"\x00\xff", [1, [2]],
         {"a": {"b": [1]}}]
    out = echo.remote(*v, k=(1, 2))
    assert out["args"] == v
    assert out["kwargs"] == {"k": [1, 2]}


def test_big_int_is_a_clear_error():
    with pytest.raises(OverflowError, match="64 bits"):
        skiff.Function.from_name("faulty", "echo").remote(2 ** 64)


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_pickled_objects_travel_between_python_callers():
    # The C function echoes what it got: a pickled object comes back whole to a Python caller.
    out = skiff.Function.from_name("faulty", "echo").remote(Point(1, 2), s={1, 2})
    assert out["args"] == [Point(1, 2)]
    assert out["kwargs"] == {"s": {1, 2}}


def test_spawn_get_timeout_and_from_id():
    f = skiff.Function.from_name("faulty", "slow_square")
    call = f.spawn(7, 1.5)
    assert call.object_id.startswith("fc-")
    with pytest.raises(TimeoutError):
        call.get(timeout=0)
    again = skiff.FunctionCall.from_id(call.object_id)
    assert again.get(timeout=30) == 49
    assert call.get() == 49  # again: the result stays
    with pytest.raises(exception.NotFoundError):
        skiff.FunctionCall.from_id("fc-00000000000000000000000000")


def test_function_timeout():
    with pytest.raises(exception.FunctionTimeoutError):
        skiff.Function.from_name("faulty", "timeout_fn").remote(1, 5.0)


def test_cancel():
    call = skiff.Function.from_name("faulty", "sleep_for").spawn(30.0)
    time.sleep(0.2)
    call.cancel(terminate_containers=True)
    with pytest.raises(exception.CancelledError):
        call.get(timeout=30)


def test_gather():
    sq = skiff.Function.from_name("my-shared-app", "square")
    calls = [sq.spawn(i) for i in range(5)]
    assert skiff.FunctionCall.gather(*calls) == [0, 1, 4, 9, 16]
    assert skiff.gather(*calls[:2]) == [0, 1]


def test_map_ordered_unordered_kwargs():
    sq = skiff.Function.from_name("my-shared-app", "square")
    assert list(sq.map(range(20))) == [i * i for i in range(20)]
    assert sorted(sq.map(range(20), order_outputs=False)) == [i * i for i in range(20)]
    assert list(sq.map([])) == []
    echo = skiff.Function.from_name("faulty", "echo")
    out = list(echo.map([1, 2], ["a", "b", "c"], kwargs={"k": 1}))
    assert out == [{"args": [1, "a"], "kwargs": {"k": 1}}, {"args": [2, "b"], "kwargs": {"k": 1}}]


def test_map_over_iterators_is_lazy():
    sq = skiff.Function.from_name("my-shared-app", "square")
    pulled = []

    def numbers(n):
        for i in range(n):
            pulled.append(i)
            yield i

    it = sq.map(numbers(100_000))
    assert next(it) == 0
    assert len(pulled) < 100_000  # drawn as the window allows, not all at once
    assert sum(1 for _ in it) == 99_999
    echo = skiff.Function.from_name("faulty", "echo")
    out = list(echo.map(iter([1, 2, 3]), (c for c in "ab")))  # zipped: the shortest wins
    assert [o["args"] for o in out] == [[1, "a"], [2, "b"]]

    class Boom(Exception):
        pass

    def failing():
        yield 1
        raise Boom("the input iterator failed")

    with pytest.raises(Boom, match="input iterator failed"):
        list(sq.map(failing()))


def test_map_exceptions():
    sq = skiff.Function.from_name("my-shared-app", "square")
    with pytest.raises(TypeError):
        list(sq.map([1, "x", 3]))
    out = list(sq.map([1, "x", 3], return_exceptions=True))
    assert out[0] == 1 and out[2] == 9
    assert isinstance(out[1], TypeError)


def test_starmap_for_each_spawn_map():
    ss = skiff.Function.from_name("faulty", "slow_square")
    assert list(ss.starmap([(2, 0.0), (3, 0.0)])) == [4, 9]
    ss.for_each([1, 2], [0.0, 0.0])
    call = ss.spawn_map([4, 5, 6], [0.0, 0.0, 0.0])
    assert call.num_inputs == 3
    assert call.get(index=1, timeout=30) == 25
    assert list(call.iter()) == [16, 25, 36]
    assert list(skiff.FunctionCall.from_id(call.object_id).iter()) == [16, 25, 36]


def test_generators():
    gen = skiff.Function.from_name("worker-app", "gen")
    assert list(gen.remote_gen(5)) == [0, 1, 2, 3, 4]
    items = []
    with pytest.raises(ValueError, match="gen failed at 2"):
        for i in gen.remote_gen(5, fail_at=2):
            items.append(i)
    assert items == [0, 1]
    call = gen.spawn(3)  # a generator's spawn: read with get_gen
    assert list(call.get_gen()) == [0, 1, 2]
    assert list(skiff.FunctionCall.from_id(call.object_id).get_gen()) == [0, 1, 2]

    async def main():
        c = await gen.spawn.aio(2)
        return [x async for x in c.get_gen.aio()]

    assert asyncio.run(main()) == [0, 1]


def test_classes_with_parameters():
    Greeter = skiff.Cls.from_name("worker-app", "Greeter")
    g = Greeter(greeting="hi", n=3)
    assert g.hello.remote() == "hi x3"
    assert Greeter(greeting="yo").hello.remote() == "yo x1"
    lc = skiff.Cls.lookup("my-shared-app", "MyLifecycleClass")
    assert lc().foo.remote() == "hello world"
    with pytest.raises(exception.NotFoundError):
        skiff.Cls.lookup("my-shared-app", "NoSuchClass")
    with pytest.raises(exception.InvalidError):
        Greeter(greeting=1.5)


def test_stats_autoscaler_keep_warm_web_url():
    sq = skiff.Function.from_name("my-shared-app", "square")
    s = sq.get_current_stats()
    assert s.backlog >= 0 and s.num_total_runners >= 0
    now = sq.update_autoscaler(max_containers=3, scaledown_window=30)
    assert now.max_containers == 3 and now.scaledown_window == 30
    sq.keep_warm(0)
    assert sq.web_url is None
    url = skiff.Function.from_name("web-demo", "greet").get_web_url()
    assert url.startswith("http")
    with pytest.raises(exception.InvalidError):
        sq.update_autoscaler(min_containers=5, max_containers=2)


def test_call_graph():
    call = skiff.Function.from_name("faulty", "call").spawn("my-shared-app", "square", [6])
    assert call.get(timeout=60) == 36
    graph = call.get_call_graph()
    assert len(graph) == 1 and graph[0].status == "SUCCESS"
    assert graph[0].children and graph[0].children[0].function_name.endswith("square")


def test_local_without_definition():
    with pytest.raises(exception.ExecutionError):
        skiff.Function.from_name("my-shared-app", "square").local(2)


# --- the .aio twins -----------------------------------------------------------------------------


def test_aio_twins():
    async def main():
        sq = skiff.Function.from_name("my-shared-app", "square")
        assert await sq.remote.aio(12) == 144
        await sq.hydrate.aio()
        call = await sq.spawn.aio(5)
        assert await call.get.aio() == 25
        again = await skiff.FunctionCall.from_id.aio(call.object_id)
        assert await again.get.aio(timeout=10) == 25
        assert [x async for x in sq.map.aio(range(10))] == [i * i for i in range(10)]
        out = [x async for x in sq.map.aio([2, "x"], return_exceptions=True)]
        assert out[0] == 4 and isinstance(out[1], TypeError)
        with pytest.raises(TypeError):
            [x async for x in sq.map.aio([2, "x"])]
        ss = skiff.Function.from_name("faulty", "slow_square")
        assert [x async for x in ss.starmap.aio([(2, 0.0)])] == [4]
        await ss.for_each.aio([1], [0.0])
        sm = await ss.spawn_map.aio([1, 2], [0.0, 0.0])
        assert [x async for x in sm.iter.aio()] == [1, 4]
        assert await sm.get.aio(index=1) == 4
        gen = skiff.Function.from_name("worker-app", "gen")
        assert [x async for x in gen.remote_gen.aio(3)] == [0, 1, 2]
        stats = await sq.get_current_stats.aio()
        assert stats.backlog >= 0
        now = await sq.update_autoscaler.aio(max_containers=4)
        assert now.max_containers == 4
        await sq.keep_warm.aio(0)
        assert await sq.get_web_url.aio() is None
        c1, c2 = await sq.spawn.aio(2), await sq.spawn.aio(3)
        assert await skiff.FunctionCall.gather.aio(c1, c2) == [4, 9]
        slow = await skiff.Function.from_name("faulty", "sleep_for").spawn.aio(0.5)
        with pytest.raises(TimeoutError):
            await slow.get.aio(timeout=0)
        graph = await c1.get_call_graph.aio()
        assert graph[0].status == "SUCCESS"
        long = await skiff.Function.from_name("faulty", "sleep_for").spawn.aio(30.0)
        await long.cancel.aio()
        with pytest.raises(exception.CancelledError):
            await long.get.aio()
        with pytest.raises(exception.NotFoundError):
            await skiff.Function.from_name("x-no-app", "f").remote.aio(1)
        with pytest.raises(ValueError):
            await skiff.Function.from_name("faulty", "fail").remote.aio("ValueError", "m")
        looked = await skiff.Function.lookup.aio("my-shared-app", "square")
        assert looked.object_id.startswith("fu-") and await looked.remote.aio(4) == 16
        with pytest.raises(exception.NotFoundError):
            await skiff.Function.lookup.aio("my-shared-app", "nope")
        C = await skiff.Cls.lookup.aio("worker-app", "Greeter")
        assert await C(greeting="aio").hello.remote.aio() == "aio x1"
        with pytest.raises(exception.NotFoundError):
            await skiff.Cls.lookup.aio("worker-app", "Nope")

    asyncio.run(main())


def test_aio_fanout_is_concurrent():
    """100 .remote.aio calls gathered take about one call's time, not 100 (sleep_for runs 0.3 s
    in up to max_containers containers: far less than the 30 s of sequential calls)."""
    async def main():
        f = skiff.Function.from_name("faulty", "slow_square")
        t = time.monotonic()
        out = await asyncio.gather(*[f.remote.aio(i, 0.3) for i in range(100)])
        return out, time.monotonic() - t

    out, took = asyncio.run(main())
    assert out == [i * i for i in range(100)]
    assert took < 20, took
