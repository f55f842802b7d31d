"""Starts a seed app the way the lab starts its own servers.

    python3 launch.py PORT -- COMMAND...

The lab reads `listening on ADDR` as a server's first line. A forked
watcher prints it once 127.0.0.1:PORT answers `GET /sleep?ms=0` with a
200 (a worker is up, not only the listening socket), within 10 s, the
lab's own start timeout;
this process then becomes COMMAND (exec), so the lab's pid, CPU and RSS
figures and its SIGTERM are the server's (gunicorn's master: its workers
are children and not in the figures).
"""

import http.client
import os
import sys
import time


def wait_and_announce(port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/sleep?ms=0")
            ok = conn.getresponse().status == 200
            conn.close()
        except (OSError, http.client.HTTPException):
            ok = False
        if not ok:
            time.sleep(0.05)
            continue
        print(f"listening on 127.0.0.1:{port}", flush=True)
        return 0
    print(f"launch.py: no 200 from port {port} after 10 s", file=sys.stderr)
    return 1


def main():
    port = int(sys.argv[1])
    command = sys.argv[sys.argv.index("--") + 1 :]
    if os.fork() == 0:
        os._exit(wait_and_announce(port))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
