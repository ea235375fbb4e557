"""The baseline of scripts/bench: a bare Flask hello-world, served by Hypercorn like the API."""

from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def hello() -> str:
    return "hello"
