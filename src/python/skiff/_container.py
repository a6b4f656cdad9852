"""skiff._container: a container of a Python app (``python3 -m skiff._container ARGS``).

skiff-worker execs this module when the app's code is a bundle (src/worker/python.c), with its
own arguments (--fd, --code BUNDLE, --function/--class, ...; or --describe BUNDLE for deploy).
It imports the app's module from the bundle (a zip on sys.path), turns the App's definitions
into the spec skiff._skiff.worker_main builds C definitions from (src/python/worker.c), and runs
the C container runtime on them. Bodies run as the C runtime dictates: blocking bodies on its
threads, async bodies as coroutines on one asyncio loop (a thread of its own), generators item by
item. A module that fails to import fails the container's start (InitFailureError) with the
import's traceback, or the deploy.
"""
import asyncio
import concurrent.futures
import importlib
import inspect
import json
import os
import sys
import threading
import traceback
import zipfile

from . import _aio, _skiff
from .app import App, _Parameter, _NO_DEFAULT
from .exception import InputCancellation

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))

# Python annotations -> signature types of the C runtime (app.h, "Signatures").
_TYPES = {int: "int", float: "float", str: "str", bytes: "bytes", bool: "bool", list: "list",
          dict: "map"}
_PARAM_TYPES = {int: "int", str: "str", bytes: "bytes", bool: "bool"}


def signature_of(fn, skip_self=False):
    """The C signature string for fn ("x, y:int?"), or None when the runtime should not bind
    (*args, **kwargs or positional-only parameters: Python binds alone)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if skip_self and params:
        params = params[1:]
    out = []
    for p in params:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            return None
        t = _TYPES.get(p.annotation)
        s = p.name + (f":{t}" if t else "")
        if p.default is not p.empty:
            s += "?"
        out.append(s)
    return ", ".join(out)


# --- async bodies: one loop for the container ---------------------------------------------------

_loop = None
_loop_lock = threading.Lock()


def _the_loop():
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            t = threading.Thread(target=_loop.run_forever, name="skiff-asyncio", daemon=True)
            t.start()
        return _loop


def _forget_loop():
    """In a container forked from a snapshot template: the loop's thread did not survive."""
    global _loop, _loop_lock
    _loop, _loop_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_loop)


async def _with_parent(aw, input_id):
    _aio.parent_input.set(input_id)  # this task's context only
    return await aw


def _wait(fut):
    """fut's result, waking every 50 ms so a cancellation (InputCancellation, injected into this
    thread by skiff._skiff) is seen: it then cancels the task on the loop too."""
    try:
        while True:
            try:
                return fut.result(timeout=0.05)
            except concurrent.futures.TimeoutError:
                continue
    except InputCancellation:
        fut.cancel()
        raise


def _run(coro):
    parent = _skiff.current_input()
    return _wait(asyncio.run_coroutine_threadsafe(_with_parent(coro, parent), _the_loop()))


def _agen_items(agen):
    loop = _the_loop()
    parent = _skiff.current_input()
    while True:
        try:
            yield _wait(asyncio.run_coroutine_threadsafe(_with_parent(agen.__anext__(), parent),
                                                         loop))
        except StopAsyncIteration:
            return


def _call(fn, args, kwargs):
    """fn(*args, **kwargs), an async body run on the container's loop, an async generator
    iterated through it."""
    r = fn(*args, **kwargs)
    if inspect.iscoroutine(r):
        return _run(r)
    if inspect.isasyncgen(r):
        return _agen_items(r)
    return r


# --- failures -----------------------------------------------------------------------------------


def type_name(t):
    """How a caller names exception type t: "ValueError", or "module.Qualname"."""
    if t.__module__ == "builtins":
        return t.__qualname__
    return f"{t.__module__}.{t.__qualname__}"


def format_exc(exc):
    """(type, message, file, line, function, rest of the traceback) of exc, for the C runtime:
    the app's frames only (not skiff's own), outermost first as Python prints them."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_PKG_DIR + os.sep)]
    for f in frames:  # a file of the bundle by its path in the app's directory
        if _bundle and f.filename.startswith(_bundle + os.sep):
            f.filename = f.filename[len(_bundle) + 1:]
    msg = str(exc)
    if not frames:
        return type_name(type(exc)), msg, None, 0, None, None
    first = frames[0]
    rest = "".join(traceback.format_list(frames[1:])).rstrip("\n") or None
    return type_name(type(exc)), msg, first.filename, first.lineno or 0, first.name, rest


# --- the spec -------------------------------------------------------------------------------------


def _config(settings):
    cfg = {k: v for k, v in settings.items() if v is not None}
    r = cfg.get("retries")
    if r is not None and not isinstance(r, int):
        cfg["retries"] = (r.max_retries, float(r.backoff_coefficient), float(r.initial_delay),
                          float(r.max_delay))
    return cfg


def _web(body):
    w = getattr(body, "_skiff_web", None)
    if not w:
        return None
    return (w["method"], w.get("label"), bool(w.get("requires_auth")))


def _function_entry(d):
    body = d.body
    if getattr(body, "_skiff_web", {}).get("wsgi"):
        return (d.name, None, "request:map", False, _web(body), _config(d.settings),
                _wsgi_invoker(body))

    def invoke(_self, args, kwargs):
        return _call(body, args, kwargs)

    return (d.name, None, signature_of(body), d.generator, _web(body), _config(d.settings),
            invoke)


def _wsgi_invoker(factory):
    """A raw endpoint's body serving the WSGI app factory() returns (made once per container):
    the request map the server passes (src/server/http_web.c, raw endpoints) becomes a WSGI
    environ, the app's answer {status, headers, body}."""
    import io
    state = {}
    lock = threading.Lock()

    def invoke(_self, args, kwargs):
        with lock:
            if "app" not in state:
                state["app"] = factory()
        req = kwargs["request"]
        body = req.get("body") or b""
        environ = {
            "REQUEST_METHOD": req.get("method", "GET"),
            "SCRIPT_NAME": "",
            "PATH_INFO": req.get("path") or "/",
            "QUERY_STRING": req.get("query") or "",
            "CONTENT_TYPE": req.get("content_type") or "",
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": "skiff",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        answer = {}

        def start_response(status, headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = [[str(k), str(v)] for k, v in headers]
            return lambda data: chunks.append(data)

        chunks = []
        result = state["app"](environ, start_response)
        try:
            for c in result:
                chunks.append(c)
        finally:
            if hasattr(result, "close"):
                result.close()
        return {"status": answer.get("status", 500), "headers": answer.get("headers", []),
                "body": b"".join(chunks)}

    return invoke


def class_params(klass):
    """[(name, type, default)] of the class's skiff.parameter() attributes, in order."""
    out = []
    ann = getattr(klass, "__annotations__", {})
    for name, t in ann.items():
        p = klass.__dict__.get(name)
        if isinstance(p, _Parameter):
            out.append((name, t, p.default))
    return out


def _hooks(klass, attr, value=None):
    hooks = []
    for name, f in inspect.getmembers(klass, predicate=callable):
        v = getattr(f, attr, None)
        if v is not None and (value is None or v == value):
            hooks.append((f.__code__.co_firstlineno if hasattr(f, "__code__") else 0, name))
    return [name for _, name in sorted(hooks)]


def local_instance(klass, params):
    """An instance of klass made and entered as in a container (parameters set, the snap and
    then the other enter hooks run), for method.local()."""
    inst = klass.__new__(klass)
    for n, _t, dflt in class_params(klass):
        setattr(inst, n, params.get(n, None if dflt is _NO_DEFAULT else dflt))
    for phase in ("snap", "enter"):
        for h in _hooks(klass, "_skiff_enter", phase):
            _call(getattr(inst, h), (), {})
    return inst


def _class_entries(d):
    klass = d.body
    params = class_params(klass)
    sig = ", ".join(f"{n}:{_PARAM_TYPES.get(t, 'str')}" + ("?" if dflt is not _NO_DEFAULT else "")
                    for n, t, dflt in params) or None
    snap_hooks = _hooks(klass, "_skiff_enter", "snap")
    enter_hooks = _hooks(klass, "_skiff_enter", "enter")
    exit_hooks = _hooks(klass, "_skiff_exit")

    def enter(inst, given, phase):
        if inst is None:
            inst = klass.__new__(klass)
            for n, _t, dflt in params:
                setattr(inst, n, given.get(n, None if dflt is _NO_DEFAULT else dflt))
        for h in snap_hooks if phase == "snap" else enter_hooks:
            _call(getattr(inst, h), (), {})
        return inst

    def exit_(inst):
        for h in exit_hooks:
            _call(getattr(inst, h), (), {})

    methods = []
    for name in _hooks(klass, "_skiff_method"):
        f = getattr(klass, name)

        def invoke(inst, args, kwargs, _name=name):
            return _call(getattr(inst, _name), args, kwargs)

        gen = inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f)
        methods.append((name, d.name, signature_of(f, skip_self=True), gen, None, {}, invoke))
    cls_entry = (d.name, sig, bool(snap_hooks), _config(d.settings), enter, exit_)
    return cls_entry, methods


def spec_of(app):
    """The (name, functions, classes, format_exc) tuple worker_main takes."""
    fns, classes = [], []
    for d in app.functions.values():
        fns.append(_function_entry(d))
    for d in app.classes.values():
        c, methods = _class_entries(d)
        classes.append(c)
        fns.extend(methods)
    return (app.name, fns, classes, format_exc)


def find_app(module):
    apps = [v for v in vars(module).values() if isinstance(v, App)]
    if len(apps) != 1:
        raise RuntimeError(f"{module.__name__} must define exactly one skiff.App "
                           f"(it defines {len(apps)})")
    return apps[0]


_bundle = None  # the bundle's path, once loaded


def load_bundle(path):
    """Imports the app of the bundle at path; returns its App (named as the manifest says)."""
    global _bundle
    _bundle = path
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("__skiff__.json"))
    sys.path.insert(0, path)
    module = importlib.import_module(manifest["main"])
    app = find_app(module)
    if manifest.get("app"):
        app.name = manifest["app"]
    return app


def main(argv):
    path = None
    for i, a in enumerate(argv[:-1]):
        if a in ("--code", "--describe"):
            path = argv[i + 1]
    if path is None:
        print("skiff._container: no --code or --describe BUNDLE", file=sys.stderr)
        return 2
    try:
        app = load_bundle(path)
        spec = spec_of(app)
    except BaseException as e:  # the import's failure is the container's (or deploy's)
        t, msg, _f, _l, _fn, _rest = format_exc(e)
        tb = "".join(traceback.format_exception(e)).rstrip("\n")
        print(tb, file=sys.stderr)
        return _skiff.worker_fail(["skiff-worker"] + argv, f"{t}: {msg}", tb)
    sys.stdout.flush()
    return _skiff.worker_main(["skiff-worker"] + argv, spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
