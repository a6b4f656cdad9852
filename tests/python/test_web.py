"""Python web endpoints: fastapi_endpoint (query parameters and a JSON body as arguments, as C
endpoints) and wsgi_app serving a Flask app (every method and path under its label)."""
import json
import os
import urllib.error
import urllib.request

import pytest

import skiff

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


@pytest.fixture(scope="module", autouse=True)
def apps(server):
    server.deploy(os.path.join(APPS, "webapp.py"))


def fetch(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_fastapi_endpoint_get_and_post():
    url = skiff.Function.from_name("pyweb", "greet").web_url
    status, _, body = fetch(url + "?name=bob&times=2")
    assert status == 200 and json.loads(body) == {"greeting": "hello bob hello bob"}
    status, _, body = fetch(url + "?times=2")  # a missing argument: the request's fault
    assert status == 400
    url = skiff.Function.from_name("pyweb", "add").web_url
    assert url.endswith("/web/py-add")
    status, _, body = fetch(url, data=b'{"a": 2, "b": 40}',
                            headers={"Content-Type": "application/json"})
    assert status == 200 and json.loads(body) == 42


def test_wsgi_flask_app():
    url = skiff.Function.from_name("pyweb", "flask_app").web_url
    status, headers, body = fetch(url + "/")
    assert status == 200 and body == b"Hello Flask World!"
    assert headers["Content-Type"].startswith("text/html")
    status, _, body = fetch(url + "/echo?q=zz", data=b'{"a": 1}',
                            headers={"Content-Type": "application/json"})
    assert status == 200 and json.loads(body) == {"got": {"a": 1}, "q": "zz"}
    status, headers, body = fetch(url + "/teapot")
    assert status == 418 and headers["X-Kind"] == "teapot" and body == b"short and stout"
    status, _, _ = fetch(url + "/nope")
    assert status == 404


def test_paths_under_a_plain_endpoint_are_not_found():
    url = skiff.Function.from_name("pyweb", "greet").web_url
    status, _, _ = fetch(url + "/sub?name=x")
    assert status == 404


def test_pickles_are_refused_over_http(server):
    """A pickle would run code when a Python function unpickles it: HTTP callers (web endpoints,
    the JSON API) cannot send one."""
    import base64
    import pickle
    import re
    evil = base64.b64encode(pickle.dumps(ValueError("x"))).decode()
    arg = {"$pickle": {"$bytes": evil}}
    url = skiff.Function.from_name("pyweb", "add").web_url
    status, _, body = fetch(url, data=json.dumps({"a": arg, "b": 1}).encode(),
                            headers={"Content-Type": "application/json"})
    assert status == 400 and b"not accepted over HTTP" in body
    toml = open(os.path.join(server.home, ".skiff.toml")).read()
    tid = re.search(r'token_id\s*=\s*"([^"]+)"', toml).group(1)
    secret = re.search(r'token_secret\s*=\s*"([^"]+)"', toml).group(1)
    status, _, body = fetch(
        f"http://127.0.0.1:{server.http_port}/api/v1/apps/pyweb/greet/call",
        data=json.dumps({"kwargs": {"name": [arg]}}).encode(),
        headers={"X-Skiff-Token-Id": tid, "X-Skiff-Token-Secret": secret})
    assert status == 400 and b"not accepted over HTTP" in body
