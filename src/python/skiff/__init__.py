"""skiff: write serverless functions in Python and call them from anywhere (docs/python.md).

    import skiff

    app = skiff.App("my-shared-app")

    @app.function()
    def square(x):
        return x * x

    # elsewhere, after `skiff deploy app.py`:
    skiff.Function.from_name("my-shared-app", "square").remote(42)   # 1764

The names follow the reference's (``import skiff as modal``). The package is a thin Python
layer (App and the decorators in skiff.app, the handles in skiff._client) over the C extension
skiff._skiff, which wraps libskiff: the client, its asynchronous engine and the container
runtime are the C ones.
"""
from . import exception
from ._client import (AutoscalerSettings, Cls, Function, FunctionCall, FunctionStats, InputInfo,
                      client, gather)
from .app import (App, Cron, Image, Period, Retries, Secret, Volume, asgi_app, batched, concurrent, enter,
                  exit, fastapi_endpoint, method, parameter, web_endpoint, wsgi_app)
from ._skiff import VERSION as __version__

__all__ = [
    "App", "Cron", "Image", "Period", "Cls", "Function", "FunctionCall", "FunctionStats", "AutoscalerSettings",
    "InputInfo", "Retries", "Secret", "Volume", "asgi_app", "batched", "client", "concurrent", "enter", "exception",
    "exit",
    "fastapi_endpoint", "gather", "method", "parameter", "web_endpoint", "wsgi_app",
]
