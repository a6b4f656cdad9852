"""pybench: the Python app of bench/bench_python.sh: echo(x) returns its argument."""
import skiff

app = skiff.App("pybench")


@app.function(max_containers=8)
def echo(x):
    return x


@app.function(max_containers=8)
@skiff.concurrent(max_inputs=100)
async def aecho(x):
    return x


@app.function(max_containers=8)
@skiff.concurrent(max_inputs=100)
def nap(x, ms=5):
    """A call that takes ms milliseconds (I/O-bound work): the fan-out's case."""
    import time
    time.sleep(ms / 1000)
    return x
