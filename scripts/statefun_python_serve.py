"""Serves the aiohttp application `app` of a module (argv[1]) on 127.0.0.1 at a free port; writes
its URL to argv[2] once it listens (scripts/statefun-python waits for that)."""
import importlib.util
import socket
import sys

from aiohttp import web

spec = importlib.util.spec_from_file_location("statefun_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
url = f"http://127.0.0.1:{sock.getsockname()[1]}/statefun"


async def announce(_app):
    with open(sys.argv[2], "w") as ready:
        ready.write(url)


module.app.on_startup.append(announce)
web.run_app(module.app, sock=sock, print=None, access_log=None)
