"""skiff._deploy: bundles a Python app for ``skiff deploy app.py`` (docs/python.md).

    python3 -m skiff._deploy --bundle OUT.zip [--name APP] app.py

Imports app.py (its directory first on sys.path, as ``python3 app.py`` would see it), then
writes OUT.zip: app.py, every module it imported from its own directory tree (packages with
their __init__.py), and __skiff__.json ({"main": module name, "app": name override or null}).
`skiff deploy` then describes the bundle (skiff-worker --describe, which re-runs in python3 and
reads the App's definitions through the C runtime's own checks) and ships it as the app's code.
An import failure is reported with its traceback and exit status 1.
"""
import importlib
import json
import os
import sys
import traceback
import zipfile


def local_modules(app_dir, skip):
    """Paths (relative to app_dir) of the imported modules' files under app_dir."""
    files = set()
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if not f:
            continue
        f = os.path.realpath(f)
        if f.startswith(app_dir + os.sep) and f.endswith(".py") and not f.startswith(skip):
            files.add(os.path.relpath(f, app_dir))
    return sorted(files)


def bundle(path, out, name=None):
    path = os.path.realpath(path)
    app_dir = os.path.dirname(path)
    main = os.path.splitext(os.path.basename(path))[0]
    sys.path.insert(0, app_dir)
    module = importlib.import_module(main)
    from ._container import find_app
    app = find_app(module)
    if not (name or app.name):
        raise RuntimeError(f"{path}: skiff deploy needs a named app (skiff.App(\"name\")); "
                           "`skiff run` deploys unnamed apps")
    pkg = os.path.dirname(os.path.realpath(__file__))
    files = local_modules(app_dir, pkg + os.sep)
    if os.path.basename(path) not in files:
        files.append(os.path.basename(path))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__skiff__.json", json.dumps({"main": main, "app": name}))
        for f in files:
            z.write(os.path.join(app_dir, f), f)
    return app


def main(argv):
    out = name = src = None
    i = 0
    while i < len(argv):
        if argv[i] == "--bundle" and i + 1 < len(argv):
            out = argv[i + 1]
            i += 2
        elif argv[i] == "--name" and i + 1 < len(argv):
            name = argv[i + 1]
            i += 2
        else:
            src = argv[i]
            i += 1
    if not out or not src:
        print("usage: python3 -m skiff._deploy --bundle OUT.zip [--name APP] APP.py",
              file=sys.stderr)
        return 2
    try:
        bundle(src, out, name)
    except BaseException as e:
        traceback.print_exception(e)
        print(f"skiff deploy: importing {src} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
