"""What the lists' indexes cost the writes that touch them, at a million messages.

    .venv/bin/python bench/list_indexes.py [--backend sqlite|postgresql|both] [--messages 1000000]
                                           [--rounds 3]

On a copy of the database ``bench/lists.py --reuse`` seeded (run that first), in process, with
the indexes of each variant in place: the messages' indexes before issue 10 (``before``: one
on (user_id, created_at)), all of the lists' indexes (``all``, with the console's account-wide
``ix_messages_account`` of issue 14), and all but one, for each of them. For each it times
what the send and delivery paths write, as Pigeon writes it:

- ``single``: 200 sends of one message, each committed alone (``sending.service.accept``);
- ``bulk``: 10 sends of 1,000 messages, each one transaction;
- ``sent``: those 10,000 recorded as taken by the carrier (status, sent_at, carrier and its
  reference; ``db.bulk.update``, 500 a statement as the engine's rounds do);
- ``delivered``: their receipts applied (status and final_at).

``--trigram`` adds a candidate that Pigeon does not have, to say what it would cost: an index
of the text for the text search (an FTS5 trigram table kept by a trigger on SQLite, a pg_trgm
GIN index on PostgreSQL).

The variants are measured in turn, ``--rounds`` times, and the median of the rounds is shown;
an index's cost is what removing it saves against ``all``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import log  # noqa: E402

SINGLES, BULKS = 300, 20
FORGET = ("DELETE FROM outbound_queue WHERE message_id IN (SELECT id FROM messages WHERE body LIKE 'index cost %')",
          "DELETE FROM messages WHERE body LIKE 'index cost %'")
BEFORE = "CREATE INDEX ix_messages_user_created ON messages (user_id, created_at)"
WRITTEN = ("ix_messages_account", "ix_messages_list_campaign", "ix_messages_list_data_field", "ix_messages_list_sent")
"""The partial indexes the send and delivery paths write to (a send: those of its campaign and
data field; a carrier's answer: sent); the others hold inbound or read messages only."""
TRIGRAM = {  # a candidate: an index of the text, for the text search (what it would cost)
    "sqlite": (["CREATE VIRTUAL TABLE messages_text USING fts5(body, content='messages', content_rowid='rowid', "
                "tokenize='trigram')",
                "INSERT INTO messages_text(messages_text) VALUES ('rebuild')",
                "CREATE TRIGGER messages_text_insert AFTER INSERT ON messages BEGIN "
                "INSERT INTO messages_text(rowid, body) VALUES (new.rowid, new.body); END"],
               ["DROP TRIGGER messages_text_insert", "DROP TABLE messages_text"]),
    "postgresql": (["CREATE EXTENSION IF NOT EXISTS pg_trgm",
                    "CREATE INDEX ix_messages_body_trigrams ON messages USING gin (body gin_trgm_ops)"],
                   ["DROP INDEX ix_messages_body_trigrams"]),
}


class Copy:
    """A scratch copy of the seeded database."""

    def __init__(self, kind: str, args: argparse.Namespace):
        self.kind, self.args = kind, args
        self.name = f"lists_{args.messages}"

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            self.dir = Path(tempfile.mkdtemp(prefix="pigeon-list-indexes-"))
            source = self.args.dir / f"{self.name}.db"
            if not source.exists():
                raise SystemExit(f"no {source}: run bench/lists.py --reuse --backend sqlite first")
            shutil.copy(source, self.dir / "copy.db")
            return f"sqlite:///{self.dir / 'copy.db'}"
        import psycopg

        with psycopg.connect(f"{self.args.pg_base}/postgres", autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "pigeon_list_indexes" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "pigeon_list_indexes" TEMPLATE "pigeon_{self.name}"')
        return f"{self.args.pg_base}/pigeon_list_indexes"

    def __exit__(self, *exc: object) -> None:
        if self.kind == "sqlite":
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            import psycopg

            with psycopg.connect(f"{self.args.pg_base}/postgres", autocommit=True) as conn:
                conn.execute('DROP DATABASE IF EXISTS "pigeon_list_indexes" WITH (FORCE)')


def list_indexes(db) -> dict[str, str]:  # noqa: ANN001
    """The lists' indexes on messages, and how to build each again."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        if db.is_sqlite:
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                     "AND tbl_name = 'messages' AND (name LIKE 'ix_messages_list%' "
                                     "OR name = 'ix_messages_account')")).all()
        else:
            rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'messages' "
                                     "AND (indexname LIKE 'ix_messages_list%' OR indexname = 'ix_messages_account')")).all()
    return dict(sorted(rows))


def ddl(db, *statements: str) -> None:  # noqa: ANN001
    from sqlalchemy import text

    with db.engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
        conn.commit()
        if not db.is_sqlite:
            conn.execute(text("ANALYZE messages"))
            conn.commit()


def vacuum(db) -> None:  # noqa: ANN001
    from sqlalchemy import text

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE messages"))


def writes(db, principal, sender) -> dict[str, float]:  # noqa: ANN001
    """The four timings of one variant."""
    from pigeon.db import bulk, utcnow
    from pigeon.sending.service import accept

    def prepared(n: int, tag: str) -> list:  # half with a campaign, 40% with a data field, as bench/lists.py seeds
        return [sender.prepare(f"+2782{i % 10**7:07d}", f"index cost {tag} {i}", campaign="cost" if i % 2 else None,
                               data_field=f"{tag}-{i}" if i % 5 < 2 else None) for i in range(n)]

    singles = []
    for batch in [prepared(1, f"s{i}") for i in range(SINGLES)]:
        t = time.perf_counter()
        with db.write() as session:
            accept(session, principal, batch, utcnow())
        singles.append(time.perf_counter() - t)
    batches = [prepared(1000, f"b{i}") for i in range(BULKS)]
    t = time.perf_counter()
    for batch in batches:
        with db.write() as session:
            accept(session, principal, batch, utcnow())
    bulk_rate = BULKS * 1000 / (time.perf_counter() - t)
    ids = [m.id for batch in batches for m in batch]
    now = utcnow()
    t = time.perf_counter()
    for i in range(0, len(ids), 500):
        with db.write() as session:
            bulk.update(session, "messages", "id",
                        (("status", "text"), ("sent_at", "timestamp"), ("carrier", "text"), ("carrier_ref", "text")),
                        [(mid, "SENT", now, "simulator", mid[-12:]) for mid in ids[i:i + 500]])
    sent_rate = len(ids) / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(0, len(ids), 500):
        with db.write() as session:
            bulk.update(session, "messages", "id", (("status", "text"), ("final_at", "timestamp")),
                        [(mid, "DELIVERED", now) for mid in ids[i:i + 500]])
    delivered_rate = len(ids) / (time.perf_counter() - t)
    return {"single_ms": statistics.median(singles) * 1e3, "bulk": bulk_rate, "sent": sent_rate,
            "delivered": delivered_rate}


def run(kind: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from pigeon.accounts.service import Principal
    from pigeon.config import Settings
    from pigeon.db import Database
    from pigeon.sending.service import Sender

    with Copy(kind, args) as url:
        db = Database(url)
        indexes = list_indexes(db)
        partial = [name for name in indexes if name != "ix_messages_list"]
        variants = {"all": [], "before": list(indexes), "ix_messages_list alone": partial} | {
            f"all but {name}": [name] for name in WRITTEN if name in indexes}
        if args.trigram:
            variants["all + a trigram index of the text"] = []
        with db.read() as session:
            from pigeon.accounts.models import User

            big = session.get(User, 1)
            principal = Principal(big.id, big.account_id, big.email, True)
        sender = Sender(Settings(_env_file=None))
        found: dict[str, list[dict]] = {name: [] for name in variants}
        writes(db, principal, sender)  # warm: the caches, the statements
        ddl(db, *FORGET)
        order = list(variants.items())
        for round_ in range(args.rounds):
            for name, dropped in order[round_ % len(order):] + order[:round_ % len(order)]:  # each round starts elsewhere
                extra = TRIGRAM[kind] if name.startswith("all +") else ([], [])
                ddl(db, *(f"DROP INDEX {index}" for index in dropped), *([BEFORE] if name == "before" else []),
                    *extra[0])
                found[name].append(writes(db, principal, sender))
                ddl(db, *FORGET,
                    *(["DROP INDEX ix_messages_user_created"] if name == "before" else []), *extra[1],
                    *(indexes[index] for index in dropped))
                if not db.is_sqlite:
                    vacuum(db)
                log(f"{kind} round {round_ + 1}: {name}: " + ", ".join(f"{k} {v:,.1f}" for k, v in found[name][-1].items()))
        db.dispose()
    return {name: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]} for name, rounds in found.items()}


def table(kind: str, result: dict[str, dict[str, float]]) -> str:
    base = result["all"]
    lines = [f"{kind}: median of the rounds", "",
             "| indexes on messages | one send, committed | bulk (1,000 a commit) | recorded SENT | receipts applied |",
             "|---|---|---|---|---|"]
    for name, r in result.items():
        cells = [f"{r['single_ms']:.2f} ms"] + [f"{r[k]:,.0f}/s" for k in ("bulk", "sent", "delivered")]
        if name != "all":
            cells = [f"{cells[0]} ({r['single_ms'] - base['single_ms']:+.2f})"] + [
                f"{c} ({(r[k] / base[k] - 1) * 100:+.0f}%)" for c, k in zip(cells[1:], ("bulk", "sent", "delivered"))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--trigram", action="store_true",
                    help="also measure a trigram index of the text (FTS5 on SQLite, pg_trgm on PostgreSQL)")
    ap.add_argument("--dir", type=Path, default=HERE / "results" / "lists")
    ap.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    args = ap.parse_args()
    for key in [k for k in os.environ if k.startswith("PIGEON_")]:
        del os.environ[key]
    os.chdir(tempfile.gettempdir())
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = {kind: run(kind, args) for kind in kinds}
    print(f"The writes of the send and delivery paths at {args.messages:,} messages, by the lists' indexes "
          f"present; {dt.date.today()}. In brackets: against all of them.\n")
    print("\n\n".join(table(kind, result) for kind, result in results.items()))


if __name__ == "__main__":
    main()
