"""FastAPI, async def with time.sleep: the seed's blocking mistake. The
call blocks the event loop, so requests are served one at a time.

    uvicorn fastapi_blocking:app --host 127.0.0.1 --port 8000
"""

import time

from fastapi import FastAPI, Request

from common import DONE, sleep_ms

app = FastAPI()


@app.get("/sleep")
async def sleep(request: Request):
    time.sleep(sleep_ms(request.url.query))
    return DONE
