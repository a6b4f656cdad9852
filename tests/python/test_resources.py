"""Secrets and volumes of Python apps: Secret.from_name and Volume.from_name become the C
SDK's .secrets and .volumes; bad forms are InvalidErrors at decoration."""
import os

import pytest

import skiff
from skiff import exception

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


@pytest.fixture(scope="module", autouse=True)
def apps(server):
    server.skiff("secret", "create", "pysecret", "TOKEN=py-value")
    server.skiff("volume", "create", "pyvol")
    server.deploy(os.path.join(APPS, "resapp.py"))


def test_a_function_sees_its_secret_and_writes_its_volume(server):
    f = skiff.Function.from_name("resapp", "env_and_file")
    assert f.remote("TOKEN", "written by python") == "py-value"
    assert f.remote("HOME", "again") == "/tmp"
    assert skiff.Function.from_name("resapp", "read_note").remote() == "again"
    r = server.skiff("volume", "get", "pyvol", "note.txt", "-")
    assert r.stdout == "again"


def test_bad_forms_are_refused():
    app = skiff.App("bad")
    with pytest.raises(exception.InvalidError, match="secrets must be"):
        app.function(secrets=["pysecret"])(lambda: 0)
    with pytest.raises(exception.InvalidError, match="volumes must be"):
        app.function(volumes={"/data": "pyvol"})(lambda: 0)
    with pytest.raises(exception.InvalidError, match="from_dict"):
        skiff.Secret.from_dict({"A": "1"})
    with pytest.raises(exception.InvalidError, match="create_if_missing"):
        skiff.Volume.from_name("v", create_if_missing=True)


def test_deploy_refuses_an_unknown_secret(server, tmp_path):
    src = tmp_path / "unknown_secret.py"
    src.write_text("import skiff\napp = skiff.App('pyunknown')\n"
                   "@app.function(secrets=[skiff.Secret.from_name('nope')])\n"
                   "def f():\n    return 1\n")
    r = server.skiff("deploy", str(src), check=False)
    assert r.returncode == 1
    assert "secret nope" in r.stderr
