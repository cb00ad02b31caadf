"""The fake Discord (`testkit.fake_discord.FakeDiscord`) plus file uploads: a message sent with
a file (discord.py's `file=`) arrives as multipart/form-data, a `payload_json` part and one
`files[n]` part per file, as Discord's API v10 takes it. The message keeps each attachment's
`filename` and, for the tests to read, its `content` (text)."""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

from aiohttp import web
from testkit.fake_discord import BODY, FakeDiscord


def parse_multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """The JSON payload of a multipart request, each attachment given its file's text."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    payload: dict[str, Any] = {}
    files: list[dict[str, Any]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if name == "payload_json":
            payload = json.loads(data)
        elif name and name.startswith("files["):
            files.append({"filename": part.get_filename(), "content": data.decode(errors="replace")})
    target = payload.get("data", payload)   # an interaction callback nests the message in `data`
    listed = target.get("attachments") or [{} for _ in files]
    target["attachments"] = [{**meta, **upload, "id": str(n)}
                             for n, (meta, upload) in enumerate(zip(listed, files))]
    return payload


class FilesFakeDiscord(FakeDiscord):
    @web.middleware
    async def _record(self, request: web.Request, handler):
        async def with_files(request: web.Request) -> web.StreamResponse:
            if request.content_type == "multipart/form-data":
                body = parse_multipart(request.headers["Content-Type"], await request.read())
                request[BODY] = body
            return await handler(request)
        return await super()._record(request, with_files)

    def _new_message(self, body: dict[str, Any], channel_id: str, **kwargs: Any) -> dict[str, Any]:
        message = super()._new_message(body, channel_id, **kwargs)
        message["attachments"] = [dict(a) for a in body.get("attachments") or []]
        return message
