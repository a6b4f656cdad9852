"""skiff._run: ``skiff run APP.py[::NAME] [--entrypoint NAME] [--ARG VALUE ...]``.

Deploys the app for the run's duration under a name of its own (the App's name, or the file's,
plus "-run-" and a random suffix, so a deployed app of the same name is never touched), imports
the module here with the App renamed to match, and runs its ``@app.local_entrypoint()`` (sync or
async; ``--ARG VALUE`` pairs become its keyword arguments, converted by its annotations, JSON when unannotated) or, for
``APP.py::fn``, calls that function remotely and prints the result. The app is ephemeral: the
deploying connection lives as long as this process (see deployed), so the server removes the app
when the run ends for any reason: normally, on Ctrl-C, SIGTERM, a failure, or kill -9. Exit status: 0, 1 a failure (traceback on stderr), 2 usage.
"""
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import secrets
import signal
import subprocess
import sys
import traceback

USAGE = "usage: skiff run APP.py[::NAME] [--entrypoint NAME] [--ARG VALUE ...]"


def _cli():
    return os.environ.get("SKIFF_CLI") or "skiff"


def _import(path):
    path = os.path.realpath(path)
    sys.path.insert(0, os.path.dirname(path))
    module = importlib.import_module(os.path.splitext(os.path.basename(path))[0])
    from ._container import find_app
    return module, find_app(module)


def run_name(app, path):
    base = app.name or os.path.splitext(os.path.basename(path))[0].replace("_", "-")
    return f"{base[:40]}-run-{secrets.token_hex(4)}"


@contextlib.contextmanager
def deployed(path, name):
    """Deploys path as ephemeral app name for the block: ``skiff deploy --ephemeral`` holds the
    deploying connection while its standard input, a pipe from this process, stays open, so the
    server removes the app when the block ends or this process dies in any way (even kill -9)."""
    holder = subprocess.Popen([_cli(), "deploy", path, "--name", name, "--ephemeral"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    reply = holder.stdout.read()  # ends once the app is deployed, or the command failed
    holder.stdout.close()
    try:
        ok = json.loads(reply).get("app") == name
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        holder.stdin.close()
        holder.wait()
        raise SystemExit(1)
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        holder.stdin.close()  # the holder closes its connection: the server removes the app
        holder.wait()


def _terminate(signum, frame):
    raise KeyboardInterrupt


def ephemeral(app):
    """App.run(): deploys the module defining app for a with-block."""
    bodies = [d.body for d in list(app.functions.values()) + list(app.classes.values())]
    if not bodies:
        raise RuntimeError("the app has no functions")
    path = inspect.getfile(bodies[0])
    name = run_name(app, path)

    @contextlib.contextmanager
    def cm():
        with deployed(path, name):
            old, app.name = app.name, name
            try:
                yield app
            finally:
                app.name = old

    return cm()


def _convert(fn, kwargs):
    sig = inspect.signature(fn)
    out = {}
    for k, v in kwargs.items():
        p = sig.parameters.get(k)
        t = p.annotation if p is not None else None
        if t in (int, float):
            v = t(v)
        elif t is bool:
            v = v.lower() in ("1", "true", "yes")
        elif t is not str:  # unannotated: a JSON value if it reads as one ("5", "[1, 2]")
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out[k] = v
    return out


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    target, rest = argv[0], argv[1:]
    path, _, fn_name = target.partition("::")
    entry, kwargs = None, {}
    i = 0
    while i < len(rest):
        a = rest[i]
        if not a.startswith("--") or i + 1 >= len(rest):
            print(f"skiff run: unexpected argument {a!r}\n{USAGE}", file=sys.stderr)
            return 2
        if a == "--entrypoint":
            entry = rest[i + 1]
        else:
            kwargs[a[2:].replace("-", "_")] = rest[i + 1]
        i += 2
    if not path.endswith(".py") or not os.path.exists(path):
        print(f"skiff run: {path} is not a Python file\n{USAGE}", file=sys.stderr)
        return 2
    try:
        module, app = _import(path)
    except Exception:
        traceback.print_exc()
        return 1
    if fn_name:
        call = app.functions.get(fn_name)
        if call is None:
            print(f"skiff run: the app has no function {fn_name!r}", file=sys.stderr)
            return 2
    else:
        eps = app.local_entrypoints
        if entry is None and len(eps) == 1:
            entry = next(iter(eps))
        if entry not in eps:
            print(f"skiff run: choose a local entrypoint with --entrypoint "
                  f"({', '.join(eps) or 'the app has none'})", file=sys.stderr)
            return 2
    name = run_name(app, path)
    try:
        with deployed(path, name):
            app.name = name
            if fn_name:
                f = getattr(module, fn_name)
                print(f.remote(**_convert(f.get_raw_f(), kwargs)))
            else:
                ep = eps[entry]
                r = ep(**_convert(ep, kwargs))
                if inspect.iscoroutine(r):
                    asyncio.run(r)
    except KeyboardInterrupt:
        print("skiff run: interrupted; the app was stopped", file=sys.stderr)
        return 130
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
