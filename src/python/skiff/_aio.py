"""skiff._aio: asyncio glue for the ``.aio`` twins (docs/python.md, "Async").

libskiff reports asynchronous completions through one pollable descriptor per thread; this
module puts that descriptor on the running loop once (``loop.add_reader(fd, client.process)``)
and turns each operation's callback into an asyncio future, or an async iterator for streams.
No thread is used per call: 1,000 ``remote.aio`` calls are 1,000 entries in libskiff's engine.
"""
import asyncio
import contextvars
import weakref

from . import _skiff

# The input an async function body runs for (set by skiff._container for each input's
# coroutine): the calls it starts carry it as their parent, as blocking calls of a body do.
parent_input = contextvars.ContextVar("skiff_parent_input", default=None)

_attached = weakref.WeakKeyDictionary()  # loop -> set of ids of clients attached
_last = (None, None)  # the last (loop, client) attached: the fast path of every call


def _attach(client):
    global _last
    loop = asyncio.get_running_loop()
    if _last[0] is loop and _last[1] is client:
        return loop
    done = _attached.setdefault(loop, set())
    if id(client) not in done:
        loop.add_reader(client.fd(), client.process)
        done.add(id(client))
    _last = (loop, client)
    return loop


def _start(start, *args):
    """start(*args), with the current body's input as the parent of what it starts."""
    parent = parent_input.get()
    if parent is None:
        return start(*args)
    _skiff.set_parent(parent)
    try:
        return start(*args)
    finally:
        _skiff.set_parent(None)


def _settle(fut, exc, value):
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


async def call(client, start, *args, convert=None):
    """Runs start(*args, cb) and awaits cb(exc, value); convert(value) if given."""
    loop = _attach(client)
    fut = loop.create_future()
    _start(start, *args, lambda exc, value: _settle(fut, exc, value))
    value = await fut
    return convert(value) if convert else value


_END = object()


async def stream(client, start, *args):
    """Runs start(*args, item, cb) and yields each item, then raises the end's failure."""
    loop = _attach(client)
    queue = asyncio.Queue()
    _start(start, *args, queue.put_nowait, lambda exc, value: queue.put_nowait((_END, exc)))
    while True:
        item = await queue.get()
        if type(item) is tuple and len(item) == 2 and item[0] is _END:
            if item[1] is not None:
                raise item[1]
            return
        yield item
