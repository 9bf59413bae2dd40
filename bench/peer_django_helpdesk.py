"""Mail ingest throughput of postdesk against django-helpdesk, on the same corpus and machine.

    python bench/peer_django_helpdesk.py [--messages 1000] [--rounds 3] [--database URL]
                                         [--venv DIR | --fresh-venv]

Generates --messages + 1 messages with bench/workload.py and, in each of --rounds rounds,
runs postdesk, django-helpdesk on SQLite in WAL and django-helpdesk on its stock SQLite
settings over them (the two peers in alternating order from round to round), and prints
each one's messages/s and peak RSS and the round's two ratios; then the median of each
ratio. On a machine whose speed drifts from minute to minute the sides of one round run
close together, and the median of a few rounds is steadier than one ratio. postdesk:
`run_once` from ingest_throughput.py, one `postdesk ingest` process over the files on fresh
SQLite (or --database): parse, thread, rules, an acknowledgement queued per new ticket and
delivered to a Maildir at the end, every raw message durable before its chunk's commit.

django-helpdesk is never a project dependency: it is pip-installed from PyPI into its own
virtualenv, made with this interpreter's `-m venv`, by default in
~/.cache/postdesk-bench/django-helpdesk-venv and reused while it imports (delete it to
upgrade; --fresh-venv builds a throwaway one in the temporary folder). A small Django
project is written into the temporary folder: SQLite there, once with postdesk's
journal_mode=WAL and synchronous=NORMAL, once as Django leaves it (a rollback journal and
an fsync per commit, and django-helpdesk commits every save); the apps its install docs list
(bootstrap4form aside, which 2.x neither uses nor installs); Django's file e-mail backend;
HELPDESK_ALWAYS_SAVE_INCOMING_EMAIL_MESSAGE, so that it keeps every raw message as postdesk
does. A setup process migrates, loads the stock e-mail templates (which turns on its mail
to submitters), creates one queue of email_box_type "local" and imports the first message.
The timed process runs `helpdesk.email.process_email`, as the `get_email` command does, over
a copy of the other files: per message a ticket, or a follow-up when In-Reply-To names a
stored one, the HTML part, the PDF and the raw message as attachments, and a mail to the
submitter ("new ticket", or "ticket updated" for a reply). Its directory listing is patched
into name order, the order postdesk gets the files in, or replies could come first.

Both timings are alike: the first message goes through in an earlier process, the timed
process's start-up is counted (for django-helpdesk the interpreter and django.setup(), not
migrate) and the peak RSS is that process's. The ratio is taken from these; the rate of
process_email alone, without start-up, is printed too and flatters django-helpdesk a little.
Tickets, follow-ups, mails and files left unimported are counted afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from email.parser import BytesHeaderParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest_throughput import run_once
from scratch import run_measured
from workload import write

CACHED_VENV = Path.home() / ".cache" / "postdesk-bench" / "django-helpdesk-venv"

PEER_SQLITE = {"WAL": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", "stock": ""}
"""The peer's two SQLite set-ups: as postdesk's (WAL), and as Django leaves it."""

SETTINGS = """\
from pathlib import Path

BASE = Path(__file__).resolve().parent
SECRET_KEY = "benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "django_cleanup.apps.CleanupConfig",
    "helpdesk",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE / "db.sqlite3",
        "OPTIONS": {"init_command": PRAGMAS},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
SITE_ID = 1
STATIC_URL = "static/"
MEDIA_ROOT = BASE / "media"
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = BASE / "sent"
DEFAULT_FROM_EMAIL = "support@example.com"
HELPDESK_TEAMS_MODE_ENABLED = False
HELPDESK_ALWAYS_SAVE_INCOMING_EMAIL_MESSAGE = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"file": {"class": "logging.FileHandler", "filename": BASE / "warnings.log"}},
    "root": {"handlers": ["file"], "level": "WARNING"},
}
"""

URLS = """\
from django.urls import include, path

urlpatterns = [path("helpdesk/", include("helpdesk.urls"))]
"""

PEER = """\
\"\"\"Inside the django-helpdesk virtualenv: `setup WARMUP_DIR` or `run MAIL_DIR RESULT_JSON`.\"\"\"
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
import django

django.setup()
from django.conf import settings
from django.core.management import call_command
from helpdesk.email import process_email
from helpdesk.models import FollowUp, FollowUpAttachment, Queue, Ticket

unsorted_listdir = os.listdir


def listdir(path="."):
    return sorted(unsorted_listdir(path))


os.listdir = listdir


def import_dir(folder):
    Queue.objects.filter(slug="support").update(email_box_local_dir=str(folder))
    process_email()


def mails(path):
    # One file per connection, appended to when a file name (time, id) recurs.
    return path.read_bytes().count(b"\\n" + b"-" * 79 + b"\\n")


def counts():
    sent = Path(settings.EMAIL_FILE_PATH)
    return {
        "tickets": Ticket.objects.count(),
        "followups": FollowUp.objects.count(),
        "attachments": FollowUpAttachment.objects.count(),
        "mails": sum(mails(path) for path in sent.glob("*")),
    }


def setup(warmup):
    call_command("migrate", verbosity=0)
    call_command("loaddata", "emailtemplate", verbosity=0)
    Queue.objects.create(
        title="Support",
        slug="support",
        email_address="support@example.com",
        allow_email_submission=True,
        email_box_type="local",
        email_box_interval=0,
        logging_type="warn",
    )
    import_dir(warmup)
    versions = {name: version(name) for name in ("django-helpdesk", "Django")}
    print(json.dumps({"versions": versions, "warmup": counts()}))


def run(mail, result):
    before = counts()
    started = time.perf_counter()
    import_dir(mail)
    seconds = time.perf_counter() - started
    after = counts()
    imported = {key: after[key] - before[key] for key in after}
    left = len(os.listdir(mail))
    Path(result).write_text(json.dumps({"seconds": seconds, "left": left, **imported}))


if sys.argv[1] == "setup":
    setup(sys.argv[2])
else:
    run(sys.argv[2], sys.argv[3])
"""


def peer_python(venv: Path) -> Path:
    """The venv's interpreter, created and given django-helpdesk unless it imports already."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import helpdesk"]).returncode == 0:
        return python
    print(f"installing django-helpdesk into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = [python, "-m", "pip", "install", "--quiet", "django-helpdesk"]
    done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pip install django-helpdesk failed:\n{done.stderr}")
    return python


def project(folder: Path, paths: list[Path], pragmas: str) -> None:
    """The Django project, with paths[0] in warmup/ and copies of the others in mail/."""
    settings = f"PRAGMAS = {pragmas!r}\n{SETTINGS}"
    for name, text in {"settings.py": settings, "urls.py": URLS, "peer.py": PEER}.items():
        (folder / name).write_text(text)
    for name, files in {"warmup": paths[:1], "mail": paths[1:]}.items():
        (folder / name).mkdir()
        for path in files:
            shutil.copy(path, folder / name / path.name)


def run_peer(python: Path, paths: list[Path], folder: Path, pragmas: str) -> dict:
    """Set up untimed, then one measured import; its counts, seconds, wall time and peak."""
    project(folder, paths, pragmas)
    peer = str(folder / "peer.py")
    setup = [str(python), peer, "setup", str(folder / "warmup")]
    done = subprocess.run(setup, capture_output=True, text=True, cwd=folder)
    if done.returncode != 0:
        raise SystemExit(f"django-helpdesk setup failed:\n{done.stderr}")
    result = folder / "result.json"
    wall, peak = run_measured([str(python), peer, "run", str(folder / "mail"), str(result)])
    log = folder / "warnings.log"
    warnings = log.read_text().splitlines() if log.exists() else []
    return {
        **json.loads(done.stdout),
        **json.loads(result.read_text()),
        "wall": wall,
        "peak": peak,
        "warnings": warnings,
    }


def replies(paths: list[Path]) -> int:
    """How many of the messages answer an earlier one, so should not open a ticket."""
    parser = BytesHeaderParser()
    return sum(1 for path in paths if parser.parsebytes(path.read_bytes())["In-Reply-To"])


def report_round(
    number: int, setup: str, count: int, postdesk: tuple[float, float], peer: dict
) -> float:
    """One side of a round; returns its ratio (both sides' whole processes)."""
    rate, peak = postdesk
    wall_rate, inner_rate = count / peer["wall"], count / peer["seconds"]
    print(
        f"round {number}: postdesk {rate:.0f} messages/s (peak RSS {peak:.0f} MB), "
        f"django-helpdesk {setup} {wall_rate:.0f} (peak RSS {peer['peak']:.0f} MB; "
        f"process_email alone {inner_rate:.0f}): ratio {rate / wall_rate:.2f}"
    )
    return rate / wall_rate


def report_import(count: int, answers: int, peer: dict) -> None:
    """What django-helpdesk made of the corpus against what it should."""
    print(
        f"  django-helpdesk imported {peer['tickets']} tickets (of {count - answers} expected), "
        f"{peer['followups']} follow-ups (of {count}), {peer['attachments']} attachments, "
        f"{peer['mails']} mails sent, {peer['left']} files left unimported, "
        f"{len(peer['warnings'])} warning lines"
    )
    for line in peer["warnings"][:5]:
        print(f"    {line[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", help="SQLAlchemy URL of a PostgreSQL server for postdesk")
    venv = parser.add_mutually_exclusive_group()
    venv.add_argument("--venv", type=Path, default=CACHED_VENV, help="reused if it works")
    venv.add_argument("--fresh-venv", action="store_true", help="a throwaway one instead")
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {setup: [] for setup in PEER_SQLITE}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        python = peer_python(root / "venv" if args.fresh_venv else args.venv)
        paths = write(root / "corpus", args.messages + 1)
        answers = replies(paths[1:])
        print(f"corpus: {args.messages} messages ({answers} replies) after 1 untimed")
        for number in range(1, args.rounds + 1):
            postdesk = run_once(paths, args.database)
            setups = list(PEER_SQLITE) if number % 2 else list(reversed(PEER_SQLITE))
            for setup in setups:
                folder = root / f"helpdesk-{number}-{setup}"
                folder.mkdir()
                peer = run_peer(python, paths, folder, PEER_SQLITE[setup])
                if number == 1 and setup == setups[0]:
                    versions = peer["versions"]
                    kind = "PostgreSQL" if args.database else "SQLite"
                    print(
                        f"django-helpdesk {versions['django-helpdesk']} (Django "
                        f"{versions['Django']}) on SQLite; postdesk on {kind}"
                    )
                ratios[setup].append(report_round(number, setup, args.messages, postdesk, peer))
                report_import(args.messages, answers, peer)
    for setup, found in ratios.items():
        print(
            f"ratio postdesk/django-helpdesk ({setup} SQLite): median "
            f"{statistics.median(found):.2f} of {args.rounds} rounds "
            f"(min {min(found):.2f}, max {max(found):.2f})"
        )


if __name__ == "__main__":
    main()
