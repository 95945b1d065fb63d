"""A real HTTP receiver on 127.0.0.1 for webhook releases and callbacks (aiohttp).

``script`` lists the status to answer for each request in turn; once it runs out the
receiver answers ``then``. Every request is recorded with its headers and raw body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    script: list[int] = field(default_factory=list)
    then: int = 200
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        status = self.script.pop(0) if self.script else self.then
        self.received.append(
            Received(request.path, dict(request.headers), await request.read(), status)
        )
        return web.json_response({"ok": status < 300}, status=status)

    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.status < 300]
