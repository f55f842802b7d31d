"""FastAPI, plain def with time.sleep: FastAPI runs it on its thread pool
(anyio's, 40 threads by default), so the loop stays free.

    uvicorn fastapi_sync:app --host 127.0.0.1 --port 8000
"""

import time

from fastapi import FastAPI, Request

from common import DONE, sleep_ms

app = FastAPI()


@app.get("/sleep")
def sleep(request: Request):
    time.sleep(sleep_ms(request.url.query))
    return DONE
