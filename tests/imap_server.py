"""A real Dovecot in a temp folder on a free port, for the IMAP gateway's tests and benches.

Dovecot runs in the foreground as our child (``-F``), so stopping it is a plain terminate
and wait, and a restart is exactly what a server restart looks like to a client.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from imapclient import IMAPClient

from tests.helpers import free_port

USER, PASSWORD = "support@example.com", "secret"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = {instance}
log_path = {root}/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 100
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def available() -> bool:
    return shutil.which("dovecot") is not None


class Dovecot:
    def __init__(self) -> None:
        # Not under pytest's tmp_path: its folders are 0700, and Dovecot's unprivileged
        # processes must reach the users file and the mail.
        self.root = root = Path(tempfile.mkdtemp(prefix="postdesk-dovecot-"))
        root.chmod(0o711)
        self.port = free_port()
        self.conf = root / "dovecot.conf"
        self.process: subprocess.Popen[bytes] | None = None
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.instance = f"postdesk-test-{self.port}"
        self.conf.write_text(CONFIG.format(root=root, port=self.port, instance=self.instance))
        shutil.chown(root / "mail", "dovecot", "dovecot")

    def start(self, timeout: float = 15.0) -> None:
        with (self.root / "stdout.log").open("ab") as out:
            self.process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.conf)], stdout=out, stderr=out
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # no readiness signal: try the port until it answers
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None, (self.root / "stdout.log").read_text()
                time.sleep(0.05)
        raise AssertionError(f"dovecot did not listen on {self.port}")

    def stop(self) -> None:
        """Like a server restart: the master and every session process go, the sessions at
        once (the master may take seconds to end them, while a fast client keeps fetching)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self._kill_leftovers()
            self.process.wait(timeout=15)
        self.process = None
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        for pid in self._leftovers():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _leftovers(self) -> list[int]:
        """Our instance's processes (named after it) that outlive the master, e.g. imap."""
        marker = f"dovecot-{self.instance}/".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with suppress(OSError):
                    if (entry / "cmdline").read_bytes().startswith(marker):
                        found.append(int(entry.name))
        return found

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=30)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))
