"""skiff.app: App and the decorators that declare an app's functions and classes.

A module declares ``app = skiff.App("name")`` and decorates its functions (``@app.function()``)
and classes (``@app.cls()``). Decorating records a definition on the app (name, body, settings)
and returns a Function / Cls handle that calls the deployed function by name (``.remote``) or
the body in this process (``.local`` / calling it). ``skiff deploy app.py`` imports the module
(skiff._deploy) to read the definitions; a container imports it again and runs the bodies
(skiff._container).
"""
import inspect

from ._client import Cls, Function
from .exception import InvalidError

# The function settings the C app SDK has (struct skiff_function_def), by their Python names.
_SETTINGS = ("timeout", "retries", "min_containers", "max_containers", "buffer_containers",
             "scaledown_window", "memory", "cpu", "max_inputs", "target_inputs",
             "max_batch_size", "wait_ms")


def _unsupported(where, **given):
    """InvalidError for a reference option skiff does not have, when it is given."""
    for k, v in given.items():
        if v:
            raise InvalidError(f"{where}: skiff has no {k} (the option is the reference's; "
                               "see docs/python.md, \"Not supported\")")


class Image:
    """Accepted for the reference's programs and ignored: containers run the server's
    /usr/bin/python3 with its Debian packages (install what the app imports there)."""

    @classmethod
    def debian_slim(cls, *a, **kw):
        return cls()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **kw: self


class Secret:
    """A secret stored with ``skiff secret create NAME KEY=VALUE...``, named for a function's
    ``secrets=[...]``: its pairs become the container's environment variables."""

    def __init__(self, name):
        self.name = name

    @classmethod
    def from_name(cls, name, **_options):
        return cls(name)

    @classmethod
    def from_dict(cls, *a, **kw):
        raise InvalidError("skiff has no Secret.from_dict: store the secret with `skiff secret "
                           "create NAME KEY=VALUE...` and use Secret.from_name(NAME)")

    def __repr__(self):
        return f"Secret.from_name({self.name!r})"


class Volume:
    """A volume made with ``skiff volume create NAME``, mounted read-write where a function's
    ``volumes={"/data": ...}`` says."""

    def __init__(self, name):
        self.name = name

    @classmethod
    def from_name(cls, name, create_if_missing=False, **_options):
        if create_if_missing:
            raise InvalidError("skiff has no create_if_missing: make the volume with `skiff volume "
                               "create NAME` first")
        return cls(name)

    def commit(self):
        """Files are on the volume as soon as written: nothing to do."""

    def reload(self):
        """Files are on the volume as soon as written: nothing to do."""

    def __repr__(self):
        return f"Volume.from_name({self.name!r})"


def _resources(where, settings, secrets, volumes):
    """Puts secrets (a list of Secret) and volumes (a dict path -> Volume) into settings as the
    C SDK's .secrets / .volumes strings."""
    if secrets:
        if not all(isinstance(x, Secret) for x in secrets):
            raise InvalidError(f"{where}: secrets must be a list of skiff.Secret.from_name(...)")
        settings["secrets"] = ",".join(x.name for x in secrets)
    if volumes:
        if not isinstance(volumes, dict) or not all(
                isinstance(p, str) and isinstance(v, Volume) for p, v in volumes.items()):
            raise InvalidError(f"{where}: volumes must be a dict of path to "
                               "skiff.Volume.from_name(...)")
        settings["volumes"] = ",".join(f"{p}={v.name}" for p, v in volumes.items())


class Retries:
    """A retry policy: max_retries, the n-th retry after
    min(initial_delay * backoff_coefficient ** (n - 1), max_delay) seconds."""

    def __init__(self, *, max_retries, backoff_coefficient=2.0, initial_delay=1.0,
                 max_delay=60.0):
        self.max_retries = max_retries
        self.backoff_coefficient = backoff_coefficient
        self.initial_delay = initial_delay
        self.max_delay = max_delay


class Period:
    """schedule=skiff.Period(minutes=5): the function runs on its own every so long (at least a
    second), the first time one period after the deploy (docs/app-sdk.md, "Schedules")."""

    def __init__(self, *, days=0, hours=0, minutes=0, seconds=0):
        self.seconds = ((days * 24 + hours) * 60 + minutes) * 60 + seconds


class Cron:
    """schedule=skiff.Cron("0 9 * * mon-fri"): the function runs on its own at the times of a
    crontab(5) spec. Times are UTC: a timezone other than UTC is refused."""

    def __init__(self, spec, timezone="UTC"):
        if timezone not in ("UTC", "Etc/UTC", "utc"):
            raise InvalidError(f"skiff.Cron: schedules run in UTC; timezone={timezone!r} is not "
                               "supported")
        self.spec = spec


def _schedule(schedule):
    """The settings a schedule= value stands for."""
    if schedule is None:
        return {}
    if isinstance(schedule, Period):
        return {"period_s": float(schedule.seconds)}
    if isinstance(schedule, Cron):
        return {"cron": schedule.spec}
    raise InvalidError(f"schedule= takes skiff.Period(...) or skiff.Cron(...), not {schedule!r}")


class _Def:
    """What a decorator recorded about one function or class."""

    def __init__(self, name, body, settings, kind="function"):
        self.name, self.body, self.settings, self.kind = name, body, settings, kind
        self.generator = inspect.isgeneratorfunction(body) or inspect.isasyncgenfunction(body)
        self.is_async = inspect.iscoroutinefunction(body) or inspect.isasyncgenfunction(body)
        self.web = getattr(body, "_skiff_web", None)
        conc = getattr(body, "_skiff_concurrent", None)
        if conc:
            settings.setdefault("max_inputs", conc[0])
            if conc[1]:
                settings.setdefault("target_inputs", conc[1])
        batch = getattr(body, "_skiff_batched", None)
        if batch:
            settings.setdefault("max_batch_size", batch[0])
            settings.setdefault("wait_ms", batch[1])


class App:
    """An app: a named group of functions and classes deployed together. ``App()`` (no name)
    is an ephemeral app that ``skiff run`` names for the run's duration."""

    def __init__(self, name=None, **_options):
        self.name = name
        self.functions = {}  # name -> _Def
        self.classes = {}  # name -> _Def
        self.local_entrypoints = {}

    def __repr__(self):
        return f"App({self.name!r})"

    def function(self, _fn=None, *, serialized=False, name=None, image=None, secrets=(),
                 volumes=None, schedule=None, gpu=None, **settings):
        """Declares a function of the app; settings as the C SDK's (timeout, retries,
        min_containers, max_containers, buffer_containers, scaledown_window, memory, cpu)."""
        for k in settings:
            if k not in _SETTINGS:
                raise InvalidError(f"@app.function: unknown setting {k!r}")
        _unsupported("@app.function", gpu=gpu)
        _resources("@app.function", settings, secrets, volumes)
        settings.update(_schedule(schedule))

        def wrap(fn):
            if isinstance(fn, Function):
                raise InvalidError("@app.function applied twice")
            fname = name or fn.__name__
            if fname in self.functions:
                raise InvalidError(f"app {self.name!r} has two functions named {fname!r}")
            self.functions[fname] = _Def(fname, fn, dict(settings))
            return Function(None, fname, local=fn, app=self)

        return wrap(_fn) if _fn is not None else wrap

    def cls(self, _cls=None, *, image=None, secrets=(), volumes=None, gpu=None, **settings):
        """Declares a class: parameters (skiff.parameter()), @skiff.enter / @skiff.exit hooks
        and @skiff.method methods; settings as for functions."""
        for k in settings:
            if k not in _SETTINGS:
                raise InvalidError(f"@app.cls: unknown setting {k!r}")
        _unsupported("@app.cls", gpu=gpu)
        _resources("@app.cls", settings, secrets, volumes)

        def wrap(klass):
            d = _Def(klass.__name__, klass, dict(settings), kind="class")
            conc = getattr(klass, "_skiff_concurrent", None)
            if conc:
                d.settings.setdefault("max_inputs", conc[0])
            self.classes[klass.__name__] = d
            return _LocalCls(self, klass)

        return wrap(_cls) if _cls is not None else wrap

    def local_entrypoint(self, _fn=None, *, name=None):
        """Declares the function ``skiff run app.py`` runs locally (sync or async)."""

        def wrap(fn):
            self.local_entrypoints[name or fn.__name__] = fn
            return fn

        return wrap(_fn) if _fn is not None else wrap

    def run(self):
        """Context manager: deploys the app for the block's duration (as ``skiff run``)."""
        from ._run import ephemeral
        return ephemeral(self)


class _LocalCls(Cls):
    """The handle ``@app.cls()`` returns: a Cls of this app that also keeps the class."""

    def __init__(self, app, klass):
        super().__init__(None, klass.__name__, app=app, local=klass)

    def __getattr__(self, name):
        return getattr(self._local, name)


# --- decorators -------------------------------------------------------------------------------


class _Parameter:
    def __init__(self, default, init):
        self.default, self.init = default, init


_NO_DEFAULT = object()


def parameter(*, default=_NO_DEFAULT, init=True):
    """A class parameter: ``name: str = skiff.parameter(default="x")`` (int, str, bytes, bool)."""
    return _Parameter(default, init)


def enter(_fn=None, *, snap=False):
    """Marks a method to run when a container starts (snap=True: before the snapshot
    template forks containers)."""

    def mark(fn):
        fn._skiff_enter = "snap" if snap else "enter"
        return fn

    return mark(_fn) if _fn is not None else mark


def exit(_fn=None):
    """Marks a method to run when a container stops."""

    def mark(fn):
        fn._skiff_exit = True
        return fn

    return mark(_fn) if _fn is not None else mark


def method(_fn=None, *, is_generator=None):
    """Marks a method callers can call (``obj.name.remote(...)``)."""

    def mark(fn):
        fn._skiff_method = True
        return fn

    return mark(_fn) if _fn is not None else mark


def concurrent(_obj=None, *, max_inputs, target_inputs=None):
    """One container runs up to max_inputs inputs at once (threads for blocking bodies, one
    asyncio loop for async ones)."""

    def mark(obj):
        obj._skiff_concurrent = (max_inputs, target_inputs)
        return obj

    return mark(_obj) if _obj is not None else mark


def batched(*, max_batch_size, wait_ms=0):
    """The body gets lists of up to max_batch_size inputs (gathered for up to wait_ms) and
    returns a list of as many results; callers call it one input at a time."""

    def mark(fn):
        fn._skiff_batched = (max_batch_size, wait_ms)
        return fn

    return mark


def fastapi_endpoint(_fn=None, *, method="GET", label=None, requires_proxy_auth=False,
                     docs=False):
    """A web endpoint: query parameters (GET) or the JSON body become the arguments."""

    def mark(fn):
        fn._skiff_web = {"method": method.upper(), "label": label,
                         "requires_auth": bool(requires_proxy_auth)}
        return fn

    return mark(_fn) if _fn is not None else mark


web_endpoint = fastapi_endpoint


def wsgi_app(_fn=None, *, label=None, requires_proxy_auth=False):
    """A web endpoint serving the WSGI app (a Flask app) the function returns."""

    def mark(fn):
        fn._skiff_web = {"method": "ANY", "label": label, "wsgi": True,
                         "requires_auth": bool(requires_proxy_auth)}
        return fn

    return mark(_fn) if _fn is not None else mark


def asgi_app(_fn=None, **_kw):
    """Not supported: skiff serves WSGI apps (wsgi_app) and function endpoints."""
    raise InvalidError("skiff does not serve ASGI apps; use @skiff.wsgi_app() or "
                       "@skiff.fastapi_endpoint()")
