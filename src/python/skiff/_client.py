"""skiff._client: the handles a Python program calls functions through (docs/python.md).

``Function``, ``FunctionCall`` and ``Cls`` wrap the C extension's handles (skiff._skiff, over
libskiff) with the reference's names and signatures. Each blocking method has an ``.aio`` twin
(``await f.remote.aio(x)``) that runs on libskiff's asynchronous engine (skiff._aio).

One connection per process is shared by every handle (``client()``); it is made on first use
from $SKIFF_SERVER / ~/.skiff.toml, or inside a container from the container's own settings, and
made again in a forked child.
"""
import functools
import os
import threading
from collections import namedtuple

from . import _aio, _skiff
from .exception import ExecutionError, InvalidError

_lock = threading.Lock()
_client = None
_client_pid = None


def client():
    """The process's connection to the server (connected on first use)."""
    global _client, _client_pid
    c = _client
    if c is not None and _client_pid == os.getpid():
        return c
    with _lock:
        if _client is None or _client_pid != os.getpid():
            _client = _skiff.Client()
            _client_pid = os.getpid()
        return _client


def set_client(c):
    """Makes c (a skiff._skiff.Client) the process's connection (containers, tests)."""
    global _client, _client_pid
    with _lock:
        _client, _client_pid = c, os.getpid()


class _Twin:
    """A method with an ``.aio`` twin: ``obj.m(...)`` blocks, ``await obj.m.aio(...)`` does not."""

    def __init__(self, sync, aio):
        self.sync, self.aio = sync, aio
        functools.update_wrapper(self, sync)

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return _Bound(obj, self)


class _Bound:
    __slots__ = ("_obj", "_twin")

    def __init__(self, obj, twin):
        self._obj, self._twin = obj, twin

    def __call__(self, *args, **kwargs):
        return self._twin.sync(self._obj, *args, **kwargs)

    def aio(self, *args, **kwargs):
        return self._twin.aio(self._obj, *args, **kwargs)

    def __repr__(self):
        return f"<bound {self._twin.sync.__name__} of {self._obj!r}>"


def twin(aio):
    """Decorator: the sync method, with aio as its ``.aio`` twin."""
    return lambda sync: _Twin(sync, aio)


FunctionStats = namedtuple(
    "FunctionStats", "backlog num_total_runners num_running_inputs input_headroom")
AutoscalerSettings = namedtuple(
    "AutoscalerSettings", "min_containers max_containers buffer_containers scaledown_window")


class InputInfo:
    """One input of a call graph (FunctionCall.get_call_graph)."""

    __slots__ = ("input_id", "function_call_id", "task_id", "function_name", "index", "status",
                 "children")

    def __init__(self, node):
        (self.input_id, self.function_call_id, self.task_id, self.function_name, self.index,
         self.status, kids) = node
        self.children = [InputInfo(k) for k in kids]

    def __repr__(self):
        return (f"InputInfo({self.function_name!r}, {self.input_id}, {self.status}, "
                f"{len(self.children)} children)")


def _graph(nodes):
    return [InputInfo(n) for n in nodes]


# --- FunctionCall ----------------------------------------------------------------------------


async def _get_aio(self, timeout=None, *, index=None):
    t = -1.0 if timeout is None else max(float(timeout), 0.0)
    return await _aio.call(self._client, self._raw.get_async, t, -1 if index is None else index)


async def _cancel_aio(self, terminate_containers=False):
    await _aio.call(self._client, self._raw.cancel_async, bool(terminate_containers))


async def _graph_aio(self):
    return await _aio.call(self._client, self._raw.graph_async, convert=_graph)


def _get_gen_aio(self):
    return _aio.stream(self._client, self._raw.get_gen_async)


def _iter_aio(self, *, order_outputs=True, return_exceptions=False):
    return _aio.stream(self._client, self._raw.iter_async, order_outputs, return_exceptions)


async def _from_id_aio(function_call_id):
    c = client()
    raw = await _aio.call(c, c.call_from_id_async, function_call_id)
    return FunctionCall(raw, c)


async def _gather_aio(*calls):
    if not calls:
        return []
    c = calls[0]._client
    return await _aio.call(c, _skiff.gather_async, [fc._raw for fc in calls])


class _ClassTwin:
    """A classmethod with an ``.aio`` twin: ``Cls.m(...)`` and ``await Cls.m.aio(...)``."""

    def __init__(self, sync, aio):
        self.sync, self.aio = sync, aio

    def __get__(self, obj, owner=None):
        return _Bound(owner, self)


class _StaticTwin:
    def __init__(self, sync, aio):
        self.sync, self.aio = sync, aio
        functools.update_wrapper(self, sync)

    def __call__(self, *args, **kwargs):
        return self.sync(*args, **kwargs)

    def __get__(self, obj, owner=None):
        return self


class FunctionCall:
    """A handle to a spawned call: its result, from this or any other process, by its id."""

    def __init__(self, raw, c=None):
        self._raw = raw
        self._client = c or client()

    @property
    def object_id(self):
        """The call's "fc-" id."""
        return self._raw.object_id

    @property
    def num_inputs(self):
        return self._raw.num_inputs

    def __repr__(self):
        return f"FunctionCall({self.object_id!r})"

    @staticmethod
    def _from_id(function_call_id):
        c = client()
        return FunctionCall(c.call_from_id(function_call_id), c)

    from_id = _StaticTwin(_from_id, _from_id_aio)

    @twin(_get_aio)
    def get(self, timeout=None, *, index=None):
        """Waits up to timeout seconds (None: forever, 0: poll once) for the result; the builtin
        TimeoutError when the call still runs; OutputExpiredError when the result is gone."""
        return self._raw.get(timeout, -1 if index is None else index)

    @twin(_iter_aio)
    def iter(self, *, order_outputs=True, return_exceptions=False):
        """Every output of a spawn_map (or single) call."""
        return iter(self._raw.iter(order_outputs, return_exceptions))

    @twin(_get_gen_aio)
    def get_gen(self):
        """The items of a spawned generator call, from the first."""
        return iter(self._raw.get_gen())

    @twin(_graph_aio)
    def get_call_graph(self):
        """The call's inputs, and the calls they made, as InputInfo trees."""
        return _graph(self._raw.graph())

    @twin(_cancel_aio)
    def cancel(self, terminate_containers=False):
        """Cancels the call (inputs never retried); optionally kills its containers."""
        self._raw.cancel(terminate_containers)

    @staticmethod
    def _gather(*calls):
        return _skiff.gather([fc._raw for fc in calls])

    gather = _StaticTwin(_gather, _gather_aio)


def gather(*calls):
    """The results of calls in argument order (the first failure raised)."""
    return FunctionCall.gather(*calls)


# --- Function ---------------------------------------------------------------------------------


async def _remote_aio(self, *args, **kwargs):
    raw = self._handle()
    return await _aio.call(self._c(), raw.remote_async, args, kwargs)


async def _spawn_aio(self, *args, **kwargs):
    raw = self._handle()
    c = self._c()
    if raw.kind == _skiff.KIND_UNKNOWN:
        await _aio.call(c, raw.hydrate_async)
    start = raw.spawn_gen_async if raw.kind == _skiff.KIND_GENERATOR else raw.spawn_async
    call = await _aio.call(c, start, args, kwargs)
    return FunctionCall(call, c)


def _remote_gen_aio(self, *args, **kwargs):
    return _aio.stream(self._c(), self._handle().remote_gen_async, args, kwargs)


def _map_aio(self, *iterables, kwargs=None, order_outputs=True, return_exceptions=False):
    return _aio.stream(self._c(), self._handle().map_async, iterables, kwargs or None,
                       order_outputs, return_exceptions)


def _starmap_aio(self, tuples, *, kwargs=None, order_outputs=True, return_exceptions=False):
    tuples = [list(t) for t in tuples]
    return _aio.stream(self._c(), self._handle().starmap_async, tuples, kwargs or None,
                       order_outputs, return_exceptions)


async def _for_each_aio(self, *iterables, kwargs=None, ignore_exceptions=False):
    await _aio.call(self._c(), self._handle().for_each_async, iterables, kwargs or None,
                    ignore_exceptions)


async def _spawn_map_aio(self, *iterables, kwargs=None):
    c = self._c()
    call = await _aio.call(c, self._handle().spawn_map_async, iterables, kwargs or None)
    return FunctionCall(call, c)


async def _hydrate_aio(self):
    await _aio.call(self._c(), self._handle().hydrate_async)
    return self


async def _stats_aio(self):
    return FunctionStats(*await _aio.call(self._c(), self._handle().stats_async))


async def _autoscaler_aio(self, *, min_containers=None, max_containers=None,
                          buffer_containers=None, scaledown_window=None):
    def unset(v):
        return -1 if v is None else v
    now = await _aio.call(self._c(), self._handle().update_autoscaler_async,
                          unset(min_containers), unset(max_containers),
                          unset(buffer_containers),
                          -1.0 if scaledown_window is None else float(scaledown_window))
    return AutoscalerSettings(*now)


async def _keep_warm_aio(self, n):
    await _aio.call(self._c(), self._handle().keep_warm_async, n)


async def _web_url_aio(self):
    return await _aio.call(self._c(), self._handle().web_url_async)


async def _local_aio(self, *args, **kwargs):
    return self.local(*args, **kwargs)


class Function:
    """A function of a deployed app, called by app and function name.

    Made by ``Function.from_name(app, name)`` (lazy), ``Function.lookup`` (asks the server now),
    ``@app.function()`` (which also keeps the local body for ``local()`` and containers), or a
    class instance's method.
    """

    def __init__(self, app_name, name, *, raw=None, local=None, owner=None, app=None,
                 method_of=None):
        self._method_of = method_of  # the Obj of a method (its raw handle is made on first use)
        self._app_name = app_name
        self._app = app  # an App whose (possibly late) name is the app's, or None
        self._name = name
        self._raw = raw
        self._local = local  # the Python body, when this process defines the function
        self._owner = owner  # what a method's raw handle borrows (the instance)
        self._client = raw and owner and owner._client
        self._lock = threading.Lock()

    # -- handles --
    def _c(self):
        if self._client is None:
            self._client = client()
        return self._client

    def _handle(self):
        raw = self._raw
        if raw is None:
            with self._lock:
                if self._raw is None and self._method_of is not None:
                    obj = self._method_of
                    self._raw = obj._handle().method(self._name.split(".", 1)[1])
                    self._client = obj._cls._client
                elif self._raw is None:
                    app = self._app_name if self._app is None else self._app.name
                    if not app:
                        raise ExecutionError(
                            f"function {self._name!r} belongs to an app that is not deployed "
                            "or running (deploy it, or call it inside `skiff run`)")
                    self._raw = self._c().function_from_name(app, self._name)
                raw = self._raw
        return raw

    def __repr__(self):
        app = self._app_name if self._app is None else self._app.name
        return f"Function({app!r}, {self._name!r})"

    def __call__(self, *args, **kwargs):
        return self.local(*args, **kwargs)

    @classmethod
    def from_name(cls, app_name, name, *, environment_name=None):
        """A lazy handle: nothing is asked until its first use (NotFoundError then)."""
        return cls(app_name, name)

    def _lookup(cls, app_name, name, *, environment_name=None):
        """A handle looked up now: NotFoundError naming the app and function if missing."""
        f = cls(app_name, name)
        f._raw = f._c().function_lookup(app_name, name)
        return f

    async def _lookup_aio(cls, app_name, name, *, environment_name=None):
        f = cls(app_name, name)
        c = f._c()
        f._raw = await _aio.call(c, c.function_lookup_async, app_name, name)
        return f

    lookup = _ClassTwin(_lookup, _lookup_aio)

    @twin(_hydrate_aio)
    def hydrate(self):
        """Looks a lazy handle up now (no-op if it already was)."""
        self._handle().hydrate()
        return self

    @property
    def object_id(self):
        """The "fu-" id once hydrated."""
        return self._handle().object_id

    @twin(_remote_aio)
    def remote(self, *args, **kwargs):
        """Calls the function and waits for its result."""
        return self._handle().remote(args, kwargs)

    @twin(_spawn_aio)
    def spawn(self, *args, **kwargs):
        """Queues one call (durable before this returns) and returns its FunctionCall; a
        generator's call is read with FunctionCall.get_gen."""
        raw = self._handle()
        if raw.kind == _skiff.KIND_UNKNOWN:
            raw.hydrate()  # one lookup per handle: is it a generator?
        if raw.kind == _skiff.KIND_GENERATOR:
            return FunctionCall(raw.spawn_gen(args, kwargs), self._c())
        return FunctionCall(raw.spawn(args, kwargs), self._c())

    @twin(_remote_gen_aio)
    def remote_gen(self, *args, **kwargs):
        """Calls a generator function and yields its items as they come."""
        return iter(self._handle().remote_gen(args, kwargs))

    @twin(_map_aio)
    def map(self, *iterables, kwargs=None, order_outputs=True, return_exceptions=False):
        """The function over the zipped iterables (kwargs to every call): outputs in input order
        (or completion order), the first failure raised unless return_exceptions."""
        return iter(self._handle().map(iterables, kwargs or None, order_outputs,
                                       return_exceptions))

    @twin(_starmap_aio)
    def starmap(self, tuples, *, kwargs=None, order_outputs=True, return_exceptions=False):
        """map with each tuple spread over the arguments."""
        return iter(self._handle().starmap(tuples, kwargs or None, order_outputs,
                                           return_exceptions))

    @twin(_for_each_aio)
    def for_each(self, *iterables, kwargs=None, ignore_exceptions=False):
        """Runs the function over every input, discarding the results."""
        self._handle().for_each(iterables, kwargs or None, ignore_exceptions)

    @twin(_spawn_map_aio)
    def spawn_map(self, *iterables, kwargs=None):
        """Queues every input durably; returns one FunctionCall over all of them."""
        return FunctionCall(self._handle().spawn_map(iterables, kwargs or None), self._c())

    @twin(_stats_aio)
    def get_current_stats(self):
        """FunctionStats(backlog, num_total_runners, num_running_inputs, input_headroom)."""
        return FunctionStats(*self._handle().stats())

    @twin(_autoscaler_aio)
    def update_autoscaler(self, *, min_containers=None, max_containers=None,
                          buffer_containers=None, scaledown_window=None):
        """Changes the live function's autoscaler (fields left None stay as they are)."""
        return AutoscalerSettings(*self._handle().update_autoscaler(
            min_containers, max_containers, buffer_containers, scaledown_window))

    @twin(_keep_warm_aio)
    def keep_warm(self, n):
        """Keeps n containers warm (update_autoscaler(min_containers=n))."""
        self._handle().keep_warm(n)

    @twin(_web_url_aio)
    def get_web_url(self):
        """The URL of a web endpoint, else None."""
        return self._handle().web_url()

    @property
    def web_url(self):
        return self.get_web_url()

    @twin(_local_aio)
    def local(self, *args, **kwargs):
        """Runs the function's own code in this process (ExecutionError without one)."""
        if self._local is None:
            raise ExecutionError(
                f"{self!r} has no local definition in this process (call .remote() instead)")
        return self._local(*args, **kwargs)

    def get_raw_f(self):
        """The Python function the decorator wrapped (ExecutionError without one)."""
        if self._local is None:
            raise ExecutionError(f"{self!r} has no local definition in this process")
        return self._local


# --- Cls ---------------------------------------------------------------------------------------


class Obj:
    """An instance of a deployed class with its parameters: ``obj.method.remote(...)``."""

    def __init__(self, cls, params):
        self._cls = cls
        self._params = params
        self._client = cls._client
        self._raw = None
        self._methods = {}
        self._lock = threading.Lock()

    def _handle(self):
        if self._raw is None:
            with self._lock:
                if self._raw is None:
                    self._raw = self._cls._handle().instantiate(self._params or None)
        return self._raw

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        m = self._methods.get(name)
        if m is None:
            local = None
            if self._cls._local is not None:  # this process has the class: method.local() runs it
                local = functools.partial(self._local_call, name)
            m = Function(self._cls._app_name, f"{self._cls._name}.{name}", owner=self,
                         local=local, app=self._cls._app, method_of=self)
            self._methods[name] = m
        return m

    def _local_call(self, name, *args, **kwargs):
        """Runs method name of a local instance (made and entered once, as a container would)."""
        with self._lock:
            if not hasattr(self, "_instance"):
                from ._container import _call, local_instance
                self._instance = local_instance(self._cls._local, self._params)
                self._call = _call
        return self._call(getattr(self._instance, name), args, kwargs)

    def __repr__(self):
        return f"{self._cls._name}({self._params or ''})"


class Cls:
    """A class of a deployed app: ``Cls.from_name(app, name)(**params)`` makes an instance."""

    def __init__(self, app_name, name, *, app=None, local=None):
        self._app_name, self._name, self._app, self._local = app_name, name, app, local
        self._raw = None
        self._client = None
        self._lock = threading.Lock()

    def _handle(self):
        if self._raw is None:
            with self._lock:
                if self._raw is None:
                    self._client = client()
                    app = self._app_name if self._app is None else self._app.name
                    self._raw = self._client.cls_from_name(app, self._name)
        return self._raw

    @classmethod
    def from_name(cls, app_name, name, *, environment_name=None):
        """A lazy handle to the class (NotFoundError on first use if missing)."""
        return cls(app_name, name)

    def _lookup(cls, app_name, name, *, environment_name=None):
        """A handle looked up now (NotFoundError if missing)."""
        return cls(app_name, name).hydrate()

    async def _lookup_aio(cls, app_name, name, *, environment_name=None):
        return await cls(app_name, name).hydrate.aio()

    lookup = _ClassTwin(_lookup, _lookup_aio)

    async def _hydrate_aio(self):
        raw = self._handle()
        await _aio.call(self._client, raw.hydrate_async)
        return self

    @twin(_hydrate_aio)
    def hydrate(self):
        """Looks the class up now (no-op if it already was)."""
        self._handle().hydrate()
        return self

    def __call__(self, **params):
        self._handle()
        for k, v in params.items():
            if not isinstance(v, (int, str, bytes, bool)):
                raise InvalidError(f"parameter {k!r} must be int, str, bytes or bool, "
                                   f"not {type(v).__name__}")
        return Obj(self, params)

    def __repr__(self):
        return f"Cls({self._name!r})"
