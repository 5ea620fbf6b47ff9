"""Carry TCP across the wall of a network namespace through a Unix socket (the file system is
shared): one end listens on a Unix socket and connects to a TCP address in its namespace, the
other listens on a TCP address in its namespace and connects to the Unix socket. Used to make
the test session's regtest chain (127.0.0.1 of the machine) reachable at an "internet" address
inside the NAT lab.

    python -m tests.ns_bridge unix-to-tcp SOCKET HOST PORT     # where the service runs
    ip netns exec NS python -m tests.ns_bridge tcp-to-unix HOST PORT SOCKET
"""

from __future__ import annotations

import asyncio
import sys

from tests.ns_forward import pipe


async def unix_to_tcp(socket_path: str, host: str, port: int) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_unix_server(serve, socket_path)
    async with server:
        await server.serve_forever()


async def tcp_to_unix(host: str, port: int, socket_path: str) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "unix-to-tcp":
        asyncio.run(unix_to_tcp(args[0], args[1], int(args[2])))
    else:
        asyncio.run(tcp_to_unix(args[0], int(args[1]), args[2]))
