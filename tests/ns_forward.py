"""Reach a node's JSON-RPC inside a network namespace from outside it: run in the namespace,
this listens on a Unix socket (the file system is shared) and forwards each connection to
127.0.0.1:<the node's rpc.port> there.

    ip netns exec NS python -m tests.ns_forward SOCKET DATA_DIR
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def main(socket_path: str, data_dir: Path) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            port = int((data_dir / "rpc.port").read_text())
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except (OSError, ValueError):
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_unix_server(serve, socket_path)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
