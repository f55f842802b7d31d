"""Flask with time.sleep, served by gunicorn's sync workers (a pool of
processes, one request each at a time): the seed's WSGI baseline.

    gunicorn --workers 4 --worker-class sync --bind 127.0.0.1:8000 flask_sync:app
"""

import time

from flask import Flask, jsonify, request

from common import DONE, sleep_ms

app = Flask(__name__)


@app.get("/sleep")
def sleep():
    time.sleep(sleep_ms(request.query_string.decode()))
    return jsonify(DONE)
