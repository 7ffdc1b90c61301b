#!/usr/bin/env python3
"""Where the time of a SQLite `clear-expired` sweep goes, without sessio and without load.

Builds Django's `django_session` table with ROWS expired rows of random 32-character keys
(as `sessio-bench --scale clear-expired` does), then deletes them the way sessio's SQLite
engine does: `DELETE ... WHERE rowid IN (SELECT rowid ... WHERE expire_date < ? LIMIT ?)`,
one transaction per batch, WAL mode, synchronous=NORMAL. It prints the total time, the
time spent in COMMIT, the longest batch, the time spent checkpointing and the largest WAL.

    python3 bench/sqlite-sweep.py                          # SQLite's auto-checkpoint (1000 pages)
    python3 bench/sqlite-sweep.py --autocheckpoint 16384 --checkpointer 0.1   # as sessio
    python3 bench/sqlite-sweep.py --autocheckpoint 0 --checkpointer 0.1       # no inline checkpoints

`--checkpointer SECONDS` runs `wal_checkpoint(PASSIVE)` on its own connection and thread
every SECONDS, as the SQLite engine's checkpointer thread does. The database lives in
`--dir` (default: a temporary directory); the template with ROWS rows is built once there
and copied for each run.
"""

import argparse
import os
import shutil
import sqlite3
import tempfile
import threading
import time

SCHEMA = [
    'CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, '
    '"session_data" text NOT NULL, "expire_date" datetime NOT NULL)',
    'CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date")',
]
SWEEP = (
    "DELETE FROM django_session WHERE rowid IN "
    "(SELECT rowid FROM django_session WHERE expire_date < ? LIMIT ?)"
)


def build(path, rows, data_bytes):
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    for sql in SCHEMA:
        c.execute(sql)
    c.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO django_session SELECT lower(hex(randomblob(16))), ?, "
        "'2000-01-01 00:00:00' FROM n",
        (rows, "x" * data_bytes),
    )
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--data-bytes", type=int, default=180)
    p.add_argument("--autocheckpoint", type=int, default=None,
                   help="wal_autocheckpoint of the sweeping connection (SQLite's default: 1000)")
    p.add_argument("--checkpointer", type=float, default=None,
                   help="a PASSIVE checkpoint every this many seconds, on another thread")
    p.add_argument("--cache-kib", type=int, default=32_768,
                   help="cache_size of the sweeping connection in KiB (sessio: 32768)")
    p.add_argument("--dir", default=None)
    a = p.parse_args()

    work = a.dir or tempfile.mkdtemp(prefix="sqlite-sweep-")
    template = os.path.join(work, f"template-{a.rows}-{a.data_bytes}.sqlite3")
    if not os.path.exists(template):
        build(template, a.rows, a.data_bytes)
    db = os.path.join(work, "run.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.copy(template, db)

    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute(f"PRAGMA cache_size=-{a.cache_kib}")
    c.execute("PRAGMA journal_size_limit=67108864")
    if a.autocheckpoint is not None:
        c.execute(f"PRAGMA wal_autocheckpoint={a.autocheckpoint}")

    stop = threading.Event()
    checkpoints = {"seconds": 0.0, "count": 0}

    def checkpointer():
        k = sqlite3.connect(db, isolation_level=None)
        k.execute("PRAGMA synchronous=NORMAL")
        while not stop.wait(a.checkpointer):
            t = time.perf_counter()
            k.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            checkpoints["seconds"] += time.perf_counter() - t
            checkpoints["count"] += 1

    thread = None
    if a.checkpointer:
        thread = threading.Thread(target=checkpointer, daemon=True)
        thread.start()

    started = time.perf_counter()
    commit = longest = 0.0
    deleted = max_wal = 0
    while True:
        t = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        n = c.execute(SWEEP, ("2100-01-01", a.batch)).rowcount
        tc = time.perf_counter()
        c.execute("COMMIT")
        done = time.perf_counter()
        commit += done - tc
        longest = max(longest, done - t)
        deleted += n
        max_wal = max(max_wal, os.path.getsize(db + "-wal"))
        if n < a.batch:
            break
    total = time.perf_counter() - started
    stop.set()
    if thread:
        thread.join()
    print(
        f"{deleted} rows in {total:.2f} s ({a.batch} a batch): COMMIT {commit:.2f} s, "
        f"longest batch {longest * 1000:.0f} ms, checkpointer {checkpoints['seconds']:.2f} s "
        f"in {checkpoints['count']}, largest WAL {max_wal / 1e6:.0f} MB"
    )
    if not a.dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
