"""A real Postfix in a folder of its own on a free port: the MTA in front of postdesk.

Its configuration, queue and data directories live in the folder, so no system service is
involved and runs never collide. Postfix's daemons run as the `postfix` user and the pipe
transport as an unprivileged user, so the folder must be traversable by them: it is made
under /tmp with mode 0755, never inside pytest's private temp folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import free_port

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = /tmp, /var
myhostname = mx.example.com
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = example.com
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
{extra}
"""
SERVICE = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*)$")


def available() -> bool:
    return shutil.which("postfix") is not None


class Postfix:
    """``main_cf`` and ``master_cf`` are what the README tells an admin to add."""

    def __init__(self, main_cf: str, master_cf: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="postdesk-postfix-", dir="/tmp"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.config = self.root / "etc"
        self.config.mkdir()
        (self.config / "main.cf").write_text(MAIN_CF.format(root=self.root, extra=main_cf))
        (self.config / "master.cf").write_text(self._master(master_cf))
        (self.root / "queue").mkdir()
        data = self.root / "data"
        data.mkdir()
        shutil.chown(data, "postfix")

    def _master(self, extra: str) -> str:
        """The system's master.cf, listening on our port, with no service chrooted (a chroot
        in a temp queue would lack what smtpd needs)."""
        lines = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            match = SERVICE.match(line)
            if match and not line.startswith("#"):
                name, kind, private, unpriv, _chroot, rest = match.groups()
                if (name, kind) == ("smtp", "inet"):
                    name = f"127.0.0.1:{self.port}"
                line = f"{name} {kind} {private} {unpriv} n {rest}"
            lines.append(line)
        return "\n".join(lines) + "\n" + extra

    def postfix(self, *args: str) -> None:
        done = subprocess.run(
            ["postfix", "-c", str(self.config), *args], capture_output=True, timeout=60
        )
        assert done.returncode == 0, f"postfix {args}: {done.stderr.decode()}\n{self.maillog()}"

    def start(self) -> None:
        self.postfix("set-permissions")
        self.postfix("start")

    def flush(self) -> None:
        """Retry every deferred mail now, as an admin would after fixing the cause."""
        subprocess.run(["postqueue", "-c", str(self.config), "-f"], check=True, timeout=60)

    def queue(self) -> str:
        done = subprocess.run(
            ["postqueue", "-c", str(self.config), "-p"], capture_output=True, timeout=60
        )
        return done.stdout.decode()

    def maillog(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 60.0) -> list[str]:
        """Lines of the maillog matching ``pattern``, once there are ``count`` of them.

        Postfix writes the maillog through its own log daemon, with no way to be told of a
        line, so this reads the file again every tenth of a second until then."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.maillog().splitlines() if regex.search(line)]
            if len(found) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(found) >= count, f"{count} x {pattern!r} not in the maillog:\n{self.maillog()}"
        return found

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.config), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
