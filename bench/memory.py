"""Memory of `postdesk ingest`: steady over many messages, and the peak for one message
carrying a large attachment.

    .venv/bin/python bench/memory.py [--messages 10000] [--attachment-mb 25]

Prints the peak resident size of one `ingest` process over --messages generated messages,
the peak of a process ingesting one small message, and of one ingesting a message with an
attachment of --attachment-mb (base64-encoded in the mail, as mail carries it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path

from scratch import run_measured, scratch_config
from workload import write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--attachment-mb", type=int, default=25)
    args = parser.parse_args()
    limits = {"max_attachment_bytes": 64 * 1024 * 1024}
    with tempfile.TemporaryDirectory() as tmp, scratch_config(limits=limits) as config:
        root = Path(tmp)
        ingest = [sys.executable, "-m", "postdesk.daemon.cli", "--config", str(config), "ingest"]
        paths = write(root / "mail", args.messages)
        _, small = run_measured([*ingest, str(paths[0])])
        _, many = run_measured([*ingest, *map(str, paths[1:])])
        big = EmailMessage()
        big["From"], big["To"], big["Subject"] = "a@example.org", "support@localhost", "dump"
        big.set_content("The crash dump is attached.")
        big.add_attachment(
            os.urandom(args.attachment_mb * 1024 * 1024),
            maintype="application",
            subtype="octet-stream",
            filename="core.dump",
        )
        big_path = root / "big.eml"
        big_path.write_bytes(big.as_bytes())
        _, large = run_measured([*ingest, str(big_path)])
    print(f"one small message: peak {small:.0f} MB")
    print(f"{args.messages - 1} messages in one process: peak {many:.0f} MB")
    print(
        f"one message with a {args.attachment_mb} MB attachment: peak {large:.0f} MB "
        f"({large - small:.0f} MB above the small one, "
        f"{(large - small) / args.attachment_mb:.1f}x the attachment)"
    )


if __name__ == "__main__":
    main()
