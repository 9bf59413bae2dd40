"""How many calls one new ticket makes between postdesk's modules, and which modules talk.

    python bench/module_calls.py [--top 15]

A warm-up message loads every module first; then one new customer mail is ingested under
``sys.setprofile``, and every call whose caller and callee are functions of two different
``postdesk.*`` modules is counted. Fewer calls across modules for the same work means each
module does a whole step rather than one line of someone else's.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections import Counter
from email.message import EmailMessage
from types import FrameType
from typing import Any

from scratch import scratch_app


def mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.org>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Invoice {n} is wrong"
    msg["Message-ID"] = f"<calls-{n}@example.org>"
    msg.set_content("Hello,\n\nthe invoice you sent me last week is wrong.\n\nAnn\n")
    return msg.as_bytes()


def module_of(frame: FrameType | None) -> str:
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    entry = importlib.import_module("postdesk.daemon.pipeline.ingest")
    pairs: Counter[tuple[str, str]] = Counter()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee, caller = module_of(frame), module_of(frame.f_back)
        if callee != caller and callee.startswith("postdesk.") and caller.startswith("postdesk."):
            pairs[caller, callee] += 1

    with scratch_app() as app:
        entry.ingest(app, mail(0), "smtp")
        sys.setprofile(profile)
        try:
            entry.ingest(app, mail(1), "smtp")
        finally:
            sys.setprofile(None)
    out_of: Counter[str] = Counter()
    for (caller, _), n in pairs.items():
        out_of[caller] += n
    print(f"calls between modules for one new ticket: {sum(pairs.values())}")
    print(f"modules taking part: {len({m for pair in pairs for m in pair})}")
    print("calls out of each module:")
    for module, n in out_of.most_common(args.top):
        print(f"  {n:4} {module}")
    print("busiest pairs:")
    for (caller, callee), n in pairs.most_common(args.top):
        print(f"  {n:4} {caller} -> {callee}")


if __name__ == "__main__":
    main()
