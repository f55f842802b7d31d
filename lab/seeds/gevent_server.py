"""gevent with monkey-patching: blocking-style WSGI code (time.sleep) on
greenlets, the seed's green-thread way.

    python3 gevent_server.py 8000
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from common import DONE, sleep_ms  # noqa: E402

BODY = json.dumps(DONE).encode()


def app(environ, start_response):
    if environ.get("PATH_INFO") != "/sleep":
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    time.sleep(sleep_ms(environ.get("QUERY_STRING", "")))
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]


if __name__ == "__main__":
    server = WSGIServer(("127.0.0.1", int(sys.argv[1])), app, log=None)
    # SIGTERM (how the lab stops a server) stops serving and exits 0.
    gevent.signal_handler(signal.SIGTERM, server.stop)
    server.serve_forever()
