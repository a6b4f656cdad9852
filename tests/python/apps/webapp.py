"""webapp: Python web endpoints (tests/python/test_web.py): a fastapi_endpoint answering GET
query parameters, one answering a POST JSON body, and a Flask app served with wsgi_app."""
import skiff

app = skiff.App("pyweb")


@app.function()
@skiff.fastapi_endpoint(method="GET")
def greet(name: str, times: int = 1):
    return {"greeting": " ".join([f"hello {name}"] * times)}


@app.function()
@skiff.fastapi_endpoint(method="POST", label="py-add")
def add(a: int, b: int):
    return a + b


@app.function()
@skiff.wsgi_app()
def flask_app():
    from flask import Flask, request

    web_app = Flask(__name__)

    @web_app.get("/")
    def home():
        return "Hello Flask World!"

    @web_app.post("/echo")
    def echo():
        return {"got": request.get_json(), "q": request.args.get("q")}

    @web_app.get("/teapot")
    def teapot():
        return "short and stout", 418, {"X-Kind": "teapot"}

    return web_app
