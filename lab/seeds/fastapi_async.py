"""FastAPI, async def with asyncio.sleep, under uvicorn: the seed's async
way, every wait an await on one event loop.

    uvicorn fastapi_async:app --host 127.0.0.1 --port 8000
"""

import asyncio

from fastapi import FastAPI, Request

from common import DONE, sleep_ms

app = FastAPI()


@app.get("/sleep")
async def sleep(request: Request):
    await asyncio.sleep(sleep_ms(request.url.query))
    return DONE
