"""Bounded cost, played by an attacker against the running daemon (SMTP in, SQLite, outgoing
Maildir): connection floods, idle connections, huge header fields, forged-agent and
notification storms. Each test asserts what must not happen and reads the mail that left."""

from __future__ import annotations

import json
import resource
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from postdesk.parsers import mime
from tests.conftest import Daemon
from tests.helpers import free_port, mail, parse_mail, postdesk, read_until

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from huge_headers import huge_cc_mail


def shown(config: Path, number: int) -> dict[str, Any]:
    done = postdesk(config, "tickets", "show", str(number), "--json")
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def listed(config: Path) -> list[dict[str, Any]]:
    done = postdesk(config, "tickets", "list", "--json")
    assert done.returncode == 0, done.stderr.decode()
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def sent_mail(daemon: Daemon, config: Path, tmp_path: Path) -> list[EmailMessage]:
    """Everything the daemon queued, as the Maildir holds it once the daemon has stopped
    and the outbox has been delivered to the end: a count that cannot race the sender."""
    daemon.process.terminate()
    assert daemon.process.wait(timeout=30) == 0
    done = postdesk(config, "send-outbox")
    assert done.returncode == 0, done.stderr.decode()
    folder = tmp_path / "sent" / "new"
    return [parse_mail(p.read_bytes()) for p in sorted(folder.iterdir())] if folder.exists() else []


def greeting(port: int, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """A connection from ``source`` (any 127/8 address is a client of its own) and the
    first line the server sends."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return sock, sock.recv(1024)


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (it reads as the end of the stream)."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def send(port: int, message: EmailMessage, source: str = "127.0.0.1") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as client:
        client.send_message(message)


def quit_(sock: socket.socket) -> None:
    """End a held connection and wait until the server has let it go: it closes the socket
    only after its own bookkeeping of the connection is done."""
    sock.sendall(b"QUIT\r\n")
    assert sock.recv(1024).startswith(b"221")
    assert closed_by_server(sock)
    sock.close()


@pytest.fixture
def run_daemon(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon]
) -> Callable[..., tuple[Daemon, Path]]:
    def run(**overrides: Any) -> tuple[Daemon, Path]:
        listen = {"smtp": f"127.0.0.1:{free_port()}", **overrides.pop("listen", {})}
        config = write_config(listen=listen, **overrides)
        daemon = start_daemon(config)
        daemon.drain()
        return daemon, config

    return run


@contextmanager
def held(sockets: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


# 4. Connection limits and the idle timeout


def test_connections_beyond_the_limits_get_421_and_others_are_still_served(
    run_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    daemon, config = run_daemon(listen={"max_connections": 10, "max_connections_per_client": 4})
    port = daemon.smtp_port
    with held([]) as idle:
        for _ in range(4):
            sock, line = greeting(port)
            idle.append(sock)
            assert line.startswith(b"220")
        refused, line = greeting(port)
        assert line.startswith(b"421 4.7.0 too many connections from 127.0.0.1")
        assert closed_by_server(refused)
        refused.close()
        send(port, mail(subject="From another client"), source="127.0.0.2")
        for source, count in (("127.0.0.2", 4), ("127.0.0.3", 2)):
            for _ in range(count):
                sock, line = greeting(port, source)
                idle.append(sock)
                assert line.startswith(b"220")
        refused, line = greeting(port, "127.0.0.4")
        assert line.startswith(b"421 4.7.0 too many connections (10)")
        refused.close()
        quit_(idle.pop())
        send(port, mail(subject="After one connection was released"), source="127.0.0.4")
    subjects = sorted(t["subject"] for t in listed(config))
    assert subjects == ["After one connection was released", "From another client"]
    acknowledged = sorted(m["Subject"] for m in sent_mail(daemon, config, tmp_path))
    assert len(acknowledged) == 2 and all("[#" in s for s in acknowledged)


def test_a_flood_of_idle_connections_cannot_starve_a_customer(
    run_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    """The finding: 1,100 idle connections used up the daemon's 1,024 file descriptors (the
    systemd default) and a customer's MTA timed out. With the default limits the attacker
    holds 50 connections, every other one is refused, and the customer's mail goes in."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 1200, "the attacker needs more file descriptors than the daemon has"
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by the daemon
    try:
        daemon, config = run_daemon()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    with held([]) as flood:
        answers = []
        for _ in range(1100):
            sock, line = greeting(daemon.smtp_port)
            answers.append(line[:3])
            if line.startswith(b"220"):
                flood.append(sock)
            else:
                sock.close()
        assert answers.count(b"220") == 50
        assert answers.count(b"421") == 1050
        started = time.monotonic()
        send(daemon.smtp_port, mail(subject="Customer during the flood"), source="127.0.0.9")
        assert time.monotonic() - started < 5
    (ticket,) = listed(config)
    assert ticket["subject"] == "Customer during the flood"
    (ack,) = sent_mail(daemon, config, tmp_path)
    assert ack["To"] == "ann@example.org"


def test_a_reload_changes_the_connection_limits(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon]
) -> None:
    listen = {"smtp": f"127.0.0.1:{free_port()}", "max_connections_per_client": 1}
    config = write_config(listen=listen)
    daemon = start_daemon(config)
    with held([]) as idle:
        sock, line = greeting(daemon.smtp_port)
        idle.append(sock)
        assert line.startswith(b"220")
        refused, line = greeting(daemon.smtp_port)
        assert line.startswith(b"421")
        refused.close()
        write_config(listen={**listen, "max_connections_per_client": 2})
        read_until(daemon.process, "configuration reloaded", daemon.log, timeout=20)
        daemon.drain()
        sock, line = greeting(daemon.smtp_port)
        idle.append(sock)
        assert line.startswith(b"220")


def test_an_idle_connection_is_dropped_after_the_idle_timeout(
    run_daemon: Callable[..., tuple[Daemon, Path]],
) -> None:
    """With room for one connection, an idle one holds it only until the timeout (1 s)."""
    daemon, _ = run_daemon(listen={"max_connections": 1, "idle_timeout": 1})
    idle, line = greeting(daemon.smtp_port)
    assert line.startswith(b"220")
    refused, line = greeting(daemon.smtp_port, "127.0.0.2")
    assert line.startswith(b"421")
    refused.close()
    started = time.monotonic()
    assert closed_by_server(idle)
    assert 0.8 < time.monotonic() - started < 8
    idle.close()
    send(daemon.smtp_port, mail(subject="After the idle one left"), source="127.0.0.2")


# 5. Huge header fields

MEASURE = """\
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from huge_headers import huge_cc_mail
from postdesk.parsers import parse
from postdesk.parsers.model import ParseContext
def peak_kb():
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(x for x in status if x.startswith("VmHWM:")).split()[1])
raw = huge_cc_mail(int(sys.argv[2]))
before = peak_kb()
best = float("inf")
for _ in range(3):
    started = time.perf_counter()
    msg = parse(raw, ParseContext(own_addresses=frozenset({"support@localhost"})))
    best = min(best, time.perf_counter() - started)
after = peak_kb()
cuts = sum(" field of " in d for d in msg.defects)
print(best, after / 1024, (after - before) / 1024, len(msg.cc), cuts)
"""


def measure_parse(count: int) -> tuple[float, float, float, int, int]:
    """Best parse time of three, the peak memory (MB) of the process and what parsing added
    to it, the Cc kept and the cuts recorded; in a fresh interpreter, so that the peak is
    this mail's alone. The peak is the kernel's VmHWM, which starts afresh at exec:
    ru_maxrss would also count the memory of the test process that forked it."""
    bench = str(Path(__file__).parents[2] / "bench")
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, bench, str(count)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    seconds, peak, added, cc, cuts = done.stdout.split()
    return float(seconds), float(peak), float(added), int(cc), int(cuts)


def test_huge_cc_fields_cost_memory_and_time_linear_in_size_at_most() -> None:
    """Before the cut, 10,000 encoded-word names took 3.7 GB and 17 s, and 50,000 ran out
    of 8 GB: the strict address parser grows with the square of the field."""
    small = measure_parse(10_000)
    large = measure_parse(50_000)
    for _, peak, added, cc, cuts in (small, large):
        assert peak < 200, f"peak {peak:.0f} MB"
        assert added < 100, f"parsing added {added:.0f} MB"
        assert cc == 100
        assert cuts == 2  # the field before parsing, then the address list
    # five times the size: linear growth allows about 5x, the old quadratic one 25x
    assert large[0] / small[0] < 10, (small, large)


def test_huge_cc_mail_over_smtp_keeps_the_daemon_small(
    run_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    daemon, config = run_daemon(support_addresses=["support@localhost"])
    raw = huge_cc_mail(10_000)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=60) as client:
        client.sendmail("ann@example.org", ["support@localhost"], raw)
    status = Path(f"/proc/{daemon.process.pid}/status").read_text()
    (peak_line,) = [x for x in status.splitlines() if x.startswith("VmHWM:")]
    assert int(peak_line.split()[1]) < 300 * 1024, peak_line
    ticket = shown(config, 1)
    assert len(ticket["participants"]) <= 21  # the requester and at most 20 copies
    (created,) = [e for e in ticket["events"] if e["type"] == "created"]
    defects = created["data"]["defects"]
    assert any(d.startswith("Cc field of") and "cut to" in d for d in defects), defects
    assert any("only its first 100 addresses read" in d for d in defects), defects
    raw_files = list((tmp_path / "data" / "raw").rglob("*.eml"))
    assert [len(p.read_bytes()) for p in raw_files] == [len(raw)]  # kept whole
    send(daemon.smtp_port, mail(subject="Next customer", to="support@localhost"))
    assert [m["To"] for m in sent_mail(daemon, config, tmp_path)].count("ann@example.org") == 2


# 7. Forged agents and storms of automatic mail

TEAM = ["anna@example.com", "boris@example.com", "carl@example.com", "dora@example.com"]


def team(**notify: Any) -> dict[str, Any]:
    """Four agents in the general queue, all told of every new ticket."""
    return {
        "agents": [{"email": a, "queues": ["general"]} for a in TEAM],
        "notify": {"new_ticket": True, "customer_reply": True, **notify},
        "admin_address": "postmaster@example.com",
    }


def customers(port: int, count: int) -> None:
    """``count`` new tickets, each from a customer of its own."""
    for n in range(count):
        send(port, mail(sender=f"Customer {n} <customer{n}@example.org>", subject=f"Question {n}"))


def to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if str(m["To"]).endswith(address) or str(m["To"]) == address]


def test_thirty_forged_agent_mails_send_the_agent_one_warning(
    run_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    daemon, config = run_daemon(**team())
    send(daemon.smtp_port, mail())
    for n in range(30):
        forged = mail(
            sender="Anna <anna@example.com>",
            subject="Re: [#1] Printer is on fire",
            body=f"#close\nPlease wire the refund to account {n}.",
        )
        send(daemon.smtp_port, forged)
    ticket = shown(config, 1)
    assert ticket["status"] == "new"  # no #close executed
    security = [e for e in ticket["events"] if e["type"] == "security"]
    held_back = [e for e in ticket["events"] if e["type"] == "staff_mail_suppressed"]
    assert len(security) == 30
    assert len(held_back) == 29
    assert all(e["data"]["to"] == "anna@example.com" for e in held_back)
    out = sent_mail(daemon, config, tmp_path)
    warnings = [m for m in to(out, "anna@example.com") if "not accepted" in str(m["Subject"])]
    assert len(warnings) == 1
    customer = to(out, "ann@example.org")
    assert [m["Auto-Submitted"] for m in customer] == ["auto-replied"]  # the ack; no relay
    assert not any("refund" in m.get_content() for m in customer)


def test_staff_notifications_do_not_count_against_customer_acknowledgements(
    run_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    """The finding: agent notifications counted against the acknowledgement breaker, so a
    burst of new tickets stopped acknowledgements while staff mail kept flowing. Four
    notifications go with every acknowledgement here; the breaker allows five an hour."""
    daemon, config = run_daemon(**team(), autoreply={"circuit_breaker_per_hour": 5})
    customers(daemon.smtp_port, 6)
    out = sent_mail(daemon, config, tmp_path)
    acknowledged = [n for n in range(6) if to(out, f"customer{n}@example.org")]
    assert acknowledged == [0, 1, 2, 3, 4]  # the sixth trips the breaker, customer mail only
    for agent in TEAM:
        assert len(to(out, agent)) == 6  # staff mail flows past the customer breaker
    (alert,) = to(out, "postmaster@example.com")
    assert "automatic mail to customers stopped" in str(alert["Subject"])
    sixth = shown(config, 6)
    (suppressed,) = [e for e in sixth["events"] if e["type"] == "autoreply_suppressed"]
    assert "circuit breaker" in suppressed["data"]["reason"]


def test_notifications_to_one_agent_are_capped_per_hour(
    run_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    daemon, config = run_daemon(**team(max_per_agent_per_hour=3))
    customers(daemon.smtp_port, 5)
    for number in (4, 5):
        events = shown(config, number)["events"]
        held_back = [e for e in events if e["type"] == "staff_mail_suppressed"]
        assert sorted(e["data"]["to"] for e in held_back) == TEAM
    out = sent_mail(daemon, config, tmp_path)
    for agent in TEAM:
        subjects = sorted(str(m["Subject"]) for m in to(out, agent))
        assert len(subjects) == 3 and all("new ticket" in s for s in subjects)
    assert all(to(out, f"customer{n}@example.org") for n in range(5))


def test_the_staff_breaker_stops_staff_mail_alerts_the_admin_and_spares_customers(
    run_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    daemon, config = run_daemon(**team(staff_breaker_per_hour=6))
    customers(daemon.smtp_port, 3)
    out = sent_mail(daemon, config, tmp_path)
    notifications = [m for a in TEAM for m in to(out, a)]
    assert len(notifications) == 6  # four for the first ticket, two for the second
    (alert,) = to(out, "postmaster@example.com")
    assert "staff mail stopped" in str(alert["Subject"])
    assert all(to(out, f"customer{n}@example.org") for n in range(3))
    third = shown(config, 3)
    reasons = {e["data"]["reason"] for e in third["events"] if e["type"] == "staff_mail_suppressed"}
    assert len(reasons) == 1 and next(iter(reasons)).startswith("staff circuit breaker")


def parse_cc(cc: str) -> tuple[list[tuple[str, str]], list[str]]:
    raw = f"From: ann@example.org\r\nTo: support@example.com\r\nCc: {cc}\r\n\r\nhello\r\n"
    parsed = mime.read(raw.encode(), None, 1024)
    return mime.addresses(parsed.message, "cc", parsed.defects), parsed.defects


def test_an_address_list_is_cut_between_addresses_never_inside_a_quoted_name() -> None:
    cc = ", ".join(f'"Doe, John {n}" <j{n}@example.net>' for n in range(150))
    found, defects = parse_cc(cc)
    assert found == [(f"Doe, John {n}", f"j{n}@example.net") for n in range(100)]
    assert defects == [
        f"cc field of {len(cc)} characters: only its first 100 addresses read "
        "(the raw message keeps them all)"
    ]
    # 119 commas, but only 59 of them between addresses: nothing is cut
    found, defects = parse_cc(", ".join(f'"Doe, John {n}" <j{n}@example.net>' for n in range(60)))
    assert len(found) == 60 and defects == []


def test_one_endless_header_line_is_cut_before_parsing() -> None:
    name = "=?utf-8?q?" + "=D0=96" * 20_000 + "?="
    found, defects = parse_cc(f"{name} <victim@example.net>")
    assert found == []  # the address was beyond the cut: nothing half-read is believed
    size = len(f"Cc: {name} <victim@example.net>")
    cut = f"Cc field of {size} bytes cut to {mime.MAX_FIELD_CHARS} before parsing"
    assert any(d.startswith(cut) for d in defects), defects
