# The reference's async pages: 100 .remote.aio() calls gathered, and an async body awaiting a
# blocking function's .remote.aio().
import asyncio
import time

import skiff as modal

app = modal.App("async-demo")


@app.function()
@modal.concurrent(max_inputs=100)
async def async_fn(i):
    await asyncio.sleep(1)
    return i


@app.function()
def blocking_fn():
    time.sleep(0.5)
    return 420


@app.function()
async def async_calls_blocking():
    return await blocking_fn.remote.aio()


@app.local_entrypoint()
async def main():
    t = time.monotonic()
    results = await asyncio.gather(*[async_fn.remote.aio(i) for i in range(100)])
    assert results == list(range(100))
    print(f"100 calls in {time.monotonic() - t:.2f}s")
    assert await async_calls_blocking.remote.aio() == 420
