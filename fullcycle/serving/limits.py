"""Request limits every service needs before its own validation runs: the body size."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["limit_body_size"]


def limit_body_size(app: FastAPI, max_bytes: int) -> None:
    """Refuse requests whose declared body is above ``max_bytes`` (413) or not a number (400).

    A body is never read into memory before its size is known to be acceptable;
    a client that sends more than it declared is cut off by the server itself.
    """

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return JSONResponse(
                    {"detail": [{"loc": ["header", "content-length"], "msg": "not a number"}]},
                    status_code=400,
                )
            if int(length) > max_bytes:
                return JSONResponse(
                    {
                        "detail": f"request body of {length} bytes is above the limit of "
                        f"{max_bytes}; split it into smaller batches"
                    },
                    status_code=413,
                )
        return await call_next(request)
