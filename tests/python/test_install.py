"""`make install PREFIX=DIR` installs the Python package at DIR/lib/python3/dist-packages/skiff/,
whose extension finds DIR/lib/libskiff.so by its relative rpath; the installed `skiff deploy`
and the containers of the installed server find the package relative to their binaries."""
import os
import subprocess

import pytest

from conftest import BUILD, SRC, Server


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    r = subprocess.run(["make", "-C", SRC, "--no-print-directory", f"BUILD={BUILD}",
                        f"PREFIX={p}", "install"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return str(p)


def test_package_installed_and_linked_relative(prefix):
    pkg = os.path.join(prefix, "lib", "python3", "dist-packages", "skiff")
    names = os.listdir(pkg)
    assert "__init__.py" in names and "_container.py" in names
    ext = [n for n in names if n.startswith("_skiff") and n.endswith(".so")]
    assert len(ext) == 1
    r = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import skiff, skiff._skiff as s; print(skiff.__file__); print(s.__file__)"],
        capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=os.path.join(prefix, "lib", "python3", "dist-packages")))
    assert r.returncode == 0, r.stderr
    assert all(line.startswith(prefix) for line in r.stdout.split())
    ldd = subprocess.run(["ldd", os.path.join(pkg, ext[0])], capture_output=True, text=True)
    line = [x for x in ldd.stdout.splitlines() if "libskiff.so" in x][0]
    assert os.path.join(prefix, "lib", "libskiff.so") in os.path.normpath(line.split("=>")[1].split()[0])


def test_installed_deploy_and_containers(prefix, tmp_path):
    app = tmp_path / "inst_app.py"
    app.write_text("import skiff\napp = skiff.App('inst-app')\n\n@app.function()\n"
                   "def where():\n    import skiff\n    return skiff.__file__\n")
    s = Server()
    s.start()
    try:
        env = dict(os.environ, HOME=s.home, SKIFF_SERVER=f"127.0.0.1:{s.port}")
        env.pop("PYTHONPATH", None)
        skiff = os.path.join(prefix, "bin", "skiff")
        r = subprocess.run([skiff, "deploy", str(app)], capture_output=True, text=True, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([skiff, "call", "inst-app", "where"], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        # The build tree's server runs the container: the package next to its own binaries.
        assert os.path.join(BUILD, "lib", "python3", "dist-packages", "skiff") in r.stdout
    finally:
        s.stop()


def test_deploy_of_a_module_that_cannot_import(server, tmp_path):
    app = tmp_path / "broken.py"
    app.write_text("import skiff\nimport no_such_package_xyz\napp = skiff.App('broken')\n")
    r = server.skiff("deploy", str(app), check=False)
    assert r.returncode == 1
    assert "No module named 'no_such_package_xyz'" in r.stderr
    unnamed = tmp_path / "unnamed.py"
    unnamed.write_text("import skiff\napp = skiff.App()\n\n@app.function()\ndef f():\n"
                       "    return 1\n")
    r = server.skiff("deploy", str(unnamed), check=False)
    assert r.returncode == 1 and "needs a named app" in r.stderr
