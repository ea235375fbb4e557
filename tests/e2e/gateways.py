"""Real gateways for the end-to-end tests: nginx and Caddy running the recipes of
docs/gateways/ (addresses replaced by local ports), and a service behind them that tells
what it received."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.debian_packages import debian_binary
from tests.e2e.server import ROOT, free_port
from tests.listening import wait_until_listening

RECIPES = ROOT / "docs" / "gateways"


class EchoService:
    """The service behind the gateway: answers any method with the X-Auth-* headers it got."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        seen = self.requests

        class Echo(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as gateways expect of a service

            def _echo(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                received = {
                    "method": self.command,
                    "path": self.path,
                    "body": body,
                    "auth": {
                        k: v for k, v in self.headers.items() if k.lower().startswith("x-auth-")
                    },
                }
                seen.append(received)
                answer = json.dumps(received).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def recipe(name: str, replacements: dict[str, str]) -> str:
    """The documented recipe `name`, each replaced text found exactly once."""
    text = (RECIPES / name).read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"docs/gateways/{name} no longer has {old!r} once"
        text = text.replace(old, new)
    return text


class Gateway:
    """A gateway process on a free loopback port, with its files in a folder of its own."""

    name = "gateway"

    def __init__(self, api_port: int, service_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._argv = self.prepare(api_port, service_port)

    def prepare(self, api_port: int, service_port: int) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> None:
        with (self.dir / "stdout.log").open("wb") as output:
            self._process = subprocess.Popen(
                self._argv, env=self.environment(), stdout=output, stderr=subprocess.STDOUT
            )
        wait_until_listening(self._process, self.port, self.name, self.log, seconds=20)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.dir.glob("*.log"))

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx(Gateway):
    """nginx with docs/gateways/nginx.conf as its one server."""

    name = "nginx"

    def prepare(self, api_port: int, service_port: int) -> list[str]:
        binary = debian_binary("nginx", "nginx-light")
        server = recipe(
            "nginx.conf",
            {
                "server auth:8000;": f"server 127.0.0.1:{api_port};",
                "server app:9000;": f"server 127.0.0.1:{service_port};",
                "listen 443 ssl;": f"listen 127.0.0.1:{self.port};",
            },
        )
        (self.dir / "recipe.conf").write_text(server)
        temp = self.dir / "temp"
        temp.mkdir()
        # Workers run as nobody when the master is root: they write request bodies there.
        self.dir.chmod(0o755)
        temp.chmod(0o777)
        (self.dir / "nginx.conf").write_text(
            "daemon off;\n"
            "worker_processes 1;\n"
            f"pid {self.dir / 'nginx.pid'};\n"
            f"error_log {self.dir / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "    access_log off;\n"
            f"    client_body_temp_path {temp}/body;\n"
            f"    proxy_temp_path {temp}/proxy;\n"
            f"    fastcgi_temp_path {temp}/fastcgi;\n"
            f"    uwsgi_temp_path {temp}/uwsgi;\n"
            f"    scgi_temp_path {temp}/scgi;\n"
            f"    include {self.dir / 'recipe.conf'};\n"
            "}\n"
        )
        return [binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]


class Caddy(Gateway):
    """Caddy with docs/gateways/Caddyfile, over plain HTTP and without its admin endpoint."""

    name = "caddy"

    def prepare(self, api_port: int, service_port: int) -> list[str]:
        binary = debian_binary("caddy", "caddy")
        site = recipe(
            "Caddyfile",
            {
                "api.example.com {": f"http://127.0.0.1:{self.port} {{",
                "auth:8000": f"127.0.0.1:{api_port}",
                "app:9000": f"127.0.0.1:{service_port}",
            },
        )
        # Global options: no admin port (other test runs may use 2019), no certificates.
        (self.dir / "Caddyfile").write_text("{\n    admin off\n    auto_https off\n}\n\n" + site)
        return [binary, "run", "--config", str(self.dir / "Caddyfile"), "--adapter", "caddyfile"]

    def environment(self) -> dict[str, str]:
        home = str(self.dir)
        return {**os.environ, "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home}
