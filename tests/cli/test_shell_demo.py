"""`modelbot shell --demo` end to end, as a newcomer runs it: a real process, in an empty folder, driven
through piped stdin and through a pseudo-terminal (pexpect, with readline, Tab and Ctrl-C).

The story of the README's tour: a promotion to production shows the approval card with numbered
Approve/Reject; `/as alice` becomes an approver who approves; the card updates; `/model alerts`
shows the live incident whose card (Acknowledge / Silence / Roll back) arrived when the shell
opened; `/model digest churn` prints a digest and writes its chart as a PNG.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pexpect
import pytest

from bot import commands
from tests.cli.test_shell_story import RAW_MARKUP

PNG = b"\x89PNG\r\n\x1a\n"
README = Path(__file__).resolve().parents[2] / "README.md"


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELBOT_", "SLACK_"))}
    env.update({"PYTHONIOENCODING": "utf-8", "HOME": env.get("HOME", "/tmp"), **extra})
    return env


class Piped:
    """`modelbot shell --demo` with stdin and stdout as pipes: write a line, then wait (with a deadline,
    never a sleep) until the answer shows up, so a later line can use a number printed earlier."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "shell", "--demo"], cwd=cwd, env=environment(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.transcript = ""
        self._seen = 0
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Whatever the shell has written so far, not line by line: a question waits on its line."""
        assert self.proc.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")()
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):  # type: ignore[union-attr]
            with self._changed:
                self.transcript += decoder.decode(chunk)
                self._changed.notify_all()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = 180) -> re.Match[str]:
        """The first match of `pattern` after the previous match; fails after `timeout` seconds."""
        compiled = re.compile(pattern)
        with self._changed:
            found = self._changed.wait_for(lambda: compiled.search(self.transcript, self._seen), timeout)
            assert found, f"{pattern!r} did not appear; the shell said:\n{self.transcript[-3000:]}"
            self._seen = found.end()
            return found

    def finish(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode()
        assert self.proc.wait(timeout=180) == 0, err
        self._reader.join(timeout=10)
        assert "Traceback" not in err
        return self.transcript


def test_the_tour_through_stdin(tmp_path: Path) -> None:
    shell = Piped(tmp_path)
    shell.send("/model promote churn 4 production")
    # the incident's card was waiting in the outbox: it arrived when the shell opened, with its chart
    shell.expect(r"^── #model-alerts\n1 alert firing: fraud-detector · production\n")
    shell.expect(r"\[\d+\] Acknowledge   \[\d+\] Silence 1 h .* \[\d+\] Roll back to v2")
    shell.expect(r"chart written to modelbot-charts/modelbot-alert-1\.png")
    shell.expect(r"── #model-approvals\nPromotion request #1: churn v4 → production\n")
    shell.expect(r"Requested by: @you\n")
    card = shell.expect(r"Approvals 0 of 1\n.*\n\[(\d+)\] Approve   \[(\d+)\] Reject\n")
    approve = card.group(1)
    shell.send("/as alice")
    shell.expect(r"You are now @alice\.")
    shell.send(approve)
    shell.expect(r"Approve request #1\? — churn v4 → production\. Your approval is recorded under your name\.\n"
                 r"Confirm\? \[y/N\] ")
    shell.send("y")
    shell.expect(r"── only @alice can see this · #model-approvals\n✅ Approved: churn v4 now serves production \(was v2\)\.")
    shell.expect(r"── #model-approvals · message updated: Promotion request #1: churn v4 → production\n")
    shell.expect(r"✅ Approved .* — churn v4 serves production\.")
    shell.expect(r"Approvals 1 of 1: @alice")
    shell.expect(r"── #model-approvals · thread of “Promotion request #1: churn v4 → production”\n"
                 r"✅ churn v4 now serves production \(was v2\)\. Approved by @alice\.")
    shell.send("/model alerts")
    shell.expect(r"Alerts: 1 firing, 0 pending, 0 silenced")
    shell.expect(r"fraud-detector@production error_rate [0-9.]+ > 0\.02 · critical")
    shell.send("/model digest churn")
    shell.expect(r"On-demand digest: churn\n")
    shell.expect(r"production · v4\n")
    chart = shell.expect(r"chart written to (modelbot-charts/digest-churn-\S+\.png)").group(1)
    transcript = shell.finish()
    assert (tmp_path / chart).read_bytes().startswith(PNG)
    assert (tmp_path / "modelbot-charts" / "modelbot-alert-1.png").read_bytes().startswith(PNG)
    assert not RAW_MARKUP.search(transcript), RAW_MARKUP.findall(transcript)
    assert "modelbot (" not in transcript  # piped: no prompt, no banner


@pytest.fixture
def pty_shell(tmp_path: Path) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "bot.cli", "shell", "--demo"], cwd=str(tmp_path),
                          env=environment(NO_COLOR="1", TERM="xterm", HOME=str(tmp_path)), encoding="utf-8",
                          timeout=60, dimensions=(50, 200))
    yield child
    child.close(force=True)


def test_the_tour_through_a_terminal(pty_shell: pexpect.spawn, tmp_path: Path) -> None:
    child = pty_shell
    child.expect_exact("modelbot shell — you are @you in #ml-team")
    child.expect_exact("People: you (deployer), alice (approves production)")
    child.expect_exact("modelbot (you)> ")
    child.sendline("/model promote churn 4 production")
    child.expect(r"\[(\d+)\] Approve   \[(\d+)\] Reject")
    approve = int(child.match.group(1))
    child.expect_exact("modelbot (you)> ")
    child.send("/as al\t")  # Tab completes the name from the demo's people
    child.expect_exact("/as alice ")
    child.sendline("")
    child.expect_exact("You are now @alice.")
    child.expect_exact("modelbot (alice)> ")
    child.sendline(str(approve))
    child.expect_exact("Confirm? [y/N] ")
    child.sendline("y")
    child.expect_exact("✅ Approved: churn v4 now serves production (was v2).")
    child.expect_exact("message updated: Promotion request #1: churn v4 → production")
    child.expect_exact("Approvals 1 of 1: @alice")
    child.expect_exact("modelbot (alice)> ")
    child.send("this line is dropped")
    child.expect_exact("this line is dropped")  # echoed: readline has the line
    child.sendintr()  # Ctrl-C clears the line and asks again; it does not leave
    child.expect_exact("^C")
    child.expect_exact("modelbot (alice)> ")
    child.sendline("/model alrets")
    child.expect_exact("There is no command 'alrets'. Did you mean alerts or alert?")
    child.sendline("/model alerts")
    child.expect_exact("fraud-detector@production error_rate")
    child.sendline("/model digest churn")
    child.expect(r"chart written to (modelbot-charts/digest-churn-\S+\.png)")
    assert (tmp_path / child.match.group(1)).read_bytes().startswith(PNG)
    child.expect_exact("modelbot (alice)> ")
    child.sendeof()  # Ctrl-D leaves
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "/model promote churn 4 production" in (tmp_path / ".modelbot_history").read_text()


def test_the_readme_tour_speaks_the_grammar() -> None:
    """Every `/model …` the README's tour tells a newcomer to type parses (the README stays true)."""
    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## A 5-minute tour"):text.index("### The shell")]
    typed = re.findall(r"`(/model [^`]+)`", tour)
    assert len(typed) >= 8
    for line in typed:
        commands.parse(line.removeprefix("/model "))
    assert "`/as alice`" in tour and "`/model digest churn`" in tour
