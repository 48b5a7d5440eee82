"""Request bodies at the boundary (issue 11, defects 2 and 7), against `modelbot serve` as a process.

`/slack/events` reads its body as a stream and stops at 1 MB whatever the transfer encoding,
checks the Slack signature before parsing anything, and answers malformed or unsigned input
with 400/401, never a 5xx or a traceback. The REST API answers 413 to every body over its
limit, chunked or not. Memory is measured on the server process (its peak resident set).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bot.web.api.deps import MAX_BODY_BYTES
from tests.slack_fake import SlackFake, sign_request
from tests.slack_support import REPO, SIGNING_SECRET, stderr_lines, wait_for_line

BIG = 200 * 1024 * 1024
# what the server may grow by while refusing a 200 MB body (Python's allocator keeps a little)
MEMORY_SLACK = 40 * 1024 * 1024


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    seen: list[str]

    def peak_rss(self) -> int:
        """The server's peak resident set (VmHWM), in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def slack_post(self, body: bytes, *, signed: bool, content_type: str = "application/json") -> requests.Response:
        headers = {"Content-Type": content_type, **(sign_request(SIGNING_SECRET, body) if signed else {})}
        return requests.post(self.url + "/slack/events", data=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("bodies")
    with SlackFake() as slack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODELBOT_"))}
        env.update({"MODELBOT_DATABASE_URL": f"sqlite:///{tmp / 'serve.db'}", "MODELBOT_SLACK_API_URL": slack.api_url,
                    "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET})
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--http", "--port", "0"], cwd=REPO,
                                env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        seen: list[str] = []
        try:
            lines = stderr_lines(proc)
            url = wait_for_line(lines, r"listening on (http://\S+)", seen).group(1)
            yield Served(url, proc, seen)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            for line in iter(lambda: lines.get(timeout=5), None):
                seen.append(line)
    log = "".join(seen)
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]


def stream_chunked(url: str, path: str, total: int, headers: dict[str, str]) -> tuple[int | None, int]:
    """Send up to `total` bytes with Transfer-Encoding: chunked, stopping as soon as the server
    answers; returns (status or None, bytes sent)."""
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTransfer-Encoding: chunked\r\n{head}\r\n"
                 .encode())
    piece = b"%x\r\n" % 65536 + b"{" * 65536 + b"\r\n"
    sent = 0
    sock.setblocking(False)
    pending = b""
    try:
        while sent < total or pending:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                break
            if not writable:
                raise AssertionError("the server neither read nor answered for 30 s")
            if not pending:
                pending, sent = piece, sent + 65536
            try:
                pending = pending[sock.send(pending):]
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else None
    return (int(status) if status else None), sent


@pytest.mark.parametrize("signed", [False, True])
def test_a_200_mb_chunked_body_to_slack_events_is_refused_at_1_mb_without_growing_the_server(
    served: Served, signed: bool
) -> None:
    before = served.peak_rss()
    headers = {"Content-Type": "application/json"}
    if signed:  # a signature over a body we never send: it cannot matter, the size check comes first
        headers.update(sign_request(SIGNING_SECRET, b"{}"))
    status, sent = stream_chunked(served.url, "/slack/events", BIG, headers)
    assert status == 413
    assert sent < BIG / 4  # refused early, not after reading everything
    assert served.peak_rss() - before < MEMORY_SLACK


def test_a_chunked_body_over_the_api_limit_is_413_not_400(served: Served) -> None:
    before = served.peak_rss()
    status, sent = stream_chunked(served.url, "/api/v1/models/churn/versions", BIG,
                                  {"Content-Type": "application/json", "Authorization": "Bearer mbt_x"})
    assert status == 413 and sent < BIG / 4
    assert served.peak_rss() - before < MEMORY_SLACK
    over = b"{" + b" " * MAX_BODY_BYTES + b"}"
    plain = requests.post(served.url + "/api/v1/models/churn/versions", data=over, timeout=30,
                          headers={"Content-Type": "application/json"})
    assert plain.status_code == 413 and plain.json()["error"]["code"] == "payload_too_large"

    def generated() -> Iterator[bytes]:  # chunked through requests too: no Content-Length
        yield b"{"
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536
        yield b"}"

    try:
        chunked = requests.post(served.url + "/api/v1/models/churn/versions", data=generated(), timeout=30,
                                headers={"Content-Type": "application/json"})
    except requests.ConnectionError:  # the server answered and closed while we were still sending
        return
    assert chunked.status_code == 413


NESTED = b"[" * 100_000 + b"]" * 100_000
MALFORMED = [
    (b"[1,2]", "application/json"), (b"null", "application/json"), (b'"x"', "application/json"),
    (b"payload=[1]", "application/x-www-form-urlencoded"), (b"payload=null", "application/x-www-form-urlencoded"),
    (b"payload=%7B", "application/x-www-form-urlencoded"), (NESTED, "application/json"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"), (b"{not json", "application/json"),
    (b"\xff\xfe", "application/json"),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED, ids=lambda v: repr(v)[:24] if isinstance(v, bytes) else v)
def test_malformed_bodies_are_401_unsigned_and_400_signed_never_5xx(served: Served, body: bytes,
                                                                     content_type: str) -> None:
    unsigned = served.slack_post(body, signed=False, content_type=content_type)
    assert unsigned.status_code in (400, 401), unsigned.text[:200]
    assert unsigned.status_code == 401 or body == b"\xff\xfe"
    signed = served.slack_post(body, signed=True, content_type=content_type)
    assert signed.status_code == 400, (signed.status_code, signed.text[:200])
    assert json.loads(signed.text) == {"error": "invalid request"}
