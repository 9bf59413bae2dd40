"""What bounds the SMTP listener: its two parts apart, each on its own.

    python bench/listener_floor.py [--messages 2000] [--clients 8]

The listener is aiosmtpd's protocol on the event loop and the committer writing groups in
a thread of the same process, which share one interpreter lock. This prints:

- aiosmtpd alone: the same clients as bench/smtp_throughput.py against an aiosmtpd server
  whose handler answers 250 at once (no ingest), in this process, so its loop and the
  clients share this interpreter as the daemon's loop and writer do;
- the committer's work alone: `ingest_group` in this process, with a parse worker, on a
  fresh SQLite installation, over groups of 1, 4 and 8 messages (the listener's groups
  are whatever arrived during the previous commit: about half the clients each), in
  messages/s and ms per group.

The listener cannot pass the rate its writer reaches alone at the groups it forms, less
what the loop's share of the lock takes from it.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller
from scratch import free_port, scratch_app
from smtp_throughput import client
from workload import messages

from postdesk.daemon.pipeline.ingest import Delivery, ingest_group
from postdesk.daemon.pipeline.parse_ahead import ParseAhead


class Answer250:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def protocol_alone(mix: list[bytes], clients: int) -> float:
    port = free_port()
    controller = Controller(Answer250(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        with ThreadPoolExecutor(clients) as pool:
            started = time.perf_counter()
            for done in [pool.submit(client, port, mix[k::clients]) for k in range(clients)]:
                done.result()
            return len(mix) / (time.perf_counter() - started)
    finally:
        controller.stop()


def writer_alone(mix: list[bytes], size: int) -> tuple[float, float]:
    """Messages/s and the median ms of a group of ``size``, after 100 untimed messages."""
    ahead = ParseAhead()
    try:
        with scratch_app(support_addresses=["support@example.com"]) as app:
            logging.getLogger("postdesk").setLevel(logging.WARNING)
            envelope = ("support@example.com",)
            ingest_group(app, [Delivery(r, "smtp", envelope) for r in mix[:100]], ahead=ahead)
            groups = []
            for start in range(100, len(mix), size):
                deliveries = [Delivery(r, "smtp", envelope) for r in mix[start : start + size]]
                began = time.perf_counter()
                ingest_group(app, deliveries, ahead=ahead)
                groups.append(time.perf_counter() - began)
    finally:
        ahead.close()
    return (len(mix) - 100) / sum(groups), statistics.median(groups) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    mix = list(messages(args.messages + 100))
    rate = protocol_alone(mix[: args.messages], args.clients)
    print(f"aiosmtpd alone, answering 250 at once, {args.clients} clients: {rate:.0f} messages/s")
    for size in (1, 4, 8):
        rate, group = writer_alone(mix, size)
        print(f"ingest_group alone, groups of {size}: {rate:.0f} messages/s, {group:.2f} ms each")


if __name__ == "__main__":
    main()
