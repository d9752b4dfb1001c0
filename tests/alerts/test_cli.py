"""``citytel alerts test URL``: a signed test notification, and an exit code saying
whether it was delivered."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from citytel.alerts import verify
from citytel.cli import main


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    got: list[tuple[str, bytes]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers["X-Citytel-Signature"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_alerts_test_sends_a_signed_notification(
    receiver: tuple[str, list[tuple[str, bytes]]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, got = receiver
    assert main(["alerts", "test", url, "--secret", "s3cret"]) == 0
    ((signature, body),) = got
    assert verify("s3cret", body, signature) and b'"change":"test"' in body
    assert "delivered" in capsys.readouterr().out


def test_alerts_test_says_when_it_is_not_delivered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "test", "http://127.0.0.1:9/x", "--secret", "s", "--timeout", "1"]) == 1
    assert "not delivered" in capsys.readouterr().err
