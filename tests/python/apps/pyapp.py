"""pyapp: the Python test app of tests/python/test_apps.py (every feature of a Python function
in a container: errors, pickled objects, generators, async bodies, concurrency, batching,
classes with parameters and hooks, calls into C apps)."""
import asyncio
import os
import threading
import time

import skiff
from shapes import AppError, Point

app = skiff.App("pyapp")


@app.function()
def square(x):
    return x * x


@app.function(timeout=5)
def fail(kind):
    if kind == "value":
        raise ValueError("bad value")
    if kind == "custom":
        raise AppError("custom failure")
    if kind == "unpicklable":
        return threading.Lock()
    if kind == "bigint":
        return 2 ** 70
    if kind == "sleep":
        time.sleep(30)
    return kind


@app.function()
def move(p: Point, dx=1):
    return Point(p.x + dx, p.y)


@app.function()
def make_point():
    return Point(1, 2)


@app.function()
def gen(n, fail_at=-1):
    for i in range(n):
        if i == fail_at:
            raise RuntimeError(f"gen failed at {i}")
        yield i


@app.function()
async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i * 10


@app.function()
async def aplus(x):
    await asyncio.sleep(0.01)
    return x + 1


@app.function()
@skiff.concurrent(max_inputs=100)
async def slow_async(x, seconds=1.0):
    await asyncio.sleep(seconds)
    return x


@app.function()
@skiff.concurrent(max_inputs=4)
def slow_sync(x, seconds=1.0):
    time.sleep(seconds)
    return [x, threading.get_ident()]


@app.function()
@skiff.batched(max_batch_size=4, wait_ms=300)
def double(xs):
    return [[x * 2, len(xs)] for x in xs]


@app.function()
def blocking_420():
    time.sleep(0.1)
    return 420


@app.function()
async def async_awaits_blocking():
    return await blocking_420.remote.aio()


@app.function()
def c_square(x):
    """Python calling a C function (examples/square.c)."""
    return skiff.Function.from_name("my-shared-app", "square").remote(x)


@app.function()
def crash():
    """A crash inside a C extension: the caller gets a RemoteError naming the signal."""
    import ctypes
    return ctypes.string_at(0)


@app.cls(retries=2, max_containers=1)
class Flaky:
    """Fails until it has run three times (retries=2), counting in its one container."""

    @skiff.enter()
    def start(self):
        self.runs = 0

    @skiff.method()
    def run(self):
        self.runs += 1
        if self.runs < 3:
            raise RuntimeError(f"attempt {self.runs}")
        return self.runs


@app.function(max_containers=1)
def spin(seconds):
    """Busy for seconds (in 10 ms sleeps); `except Exception` must not swallow a cancellation."""
    t = time.time()
    try:
        while time.time() - t < seconds:
            time.sleep(0.01)
    except Exception:
        return "swallowed"
    return "done"


@app.function(max_containers=1)
async def aspin(seconds):
    await asyncio.sleep(seconds)
    return "done"


@app.function()
def pid():
    return os.getpid()


@app.cls()
class Counter:
    greeting: str = skiff.parameter(default="hi")
    n: int = skiff.parameter(default=1)

    @skiff.enter()
    def setup(self):
        self.text = f"{self.greeting} x{self.n}"
        self.calls = 0

    @skiff.method()
    def hello(self):
        self.calls += 1
        return self.text

    @skiff.method()
    def count(self):
        self.calls += 1
        return self.calls

    @skiff.method()
    def items(self, n):
        for i in range(n):
            yield f"{self.greeting}{i}"

    @skiff.exit()
    def bye(self):
        print(f"exit {self.text} after {self.calls} calls", flush=True)
