#!/usr/bin/env python3
"""Django's side of sessio's live interoperability tests.

Runs the project in django_app/ with Django's test Client, so that the real
SessionMiddleware and AuthenticationMiddleware handle every request. Settings come from
the environment (see django_app/settings.py); the database is migrated at start.

Two ways to call it:

  django_side.py serve          one JSON command per line on stdin, one JSON reply per
                                line on stdout (the Rust tests keep one process per test)
  django_side.py OP < cmd.json  one command (its JSON on stdin, `op` taken from argv)

Commands (every reply has "ok": true, or "ok": false and "error"):

  {"op": "request", "method": "GET"|"POST", "path": "/show", "cookie": "<sessionid>"|null,
   "json": {...}, "now": 1700000000}
      -> {"status", "set_cookie": [header values], "cookie": "<new sessionid>"|null,
          "deleted": bool, "vary": str|null, "body": <the view's JSON>|null}
  {"op": "user", "username": "alice", "create": bool}
      -> {"user": {"id", "password"}|null}  (created with the known password if asked)
  {"op": "session_row", "key": "..."}        -> {"row": {"session_data", "expire_date"}|null}
  {"op": "encode", "data": {...}, "now": T}  -> {"value": SessionStore().encode(data)}
  {"op": "drop_db"}                          -> drops the database made by SESSIO_DJANGO_CREATE_DB
  {"op": "quit"}

With SESSIO_DJANGO_CREATE_DB=1 the database named in DATABASE_URL (PostgreSQL or MySQL)
is created first, through the server's database SESSIO_DJANGO_ADMIN_DB (default `test`).
"""

import contextlib
import datetime
import json
import os
import sys
import traceback
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")

COOKIE = "sessionid"


@contextlib.contextmanager
def frozen(now):
    """Freezes Django's clocks at `now` (Unix seconds): time.time() for signing
    timestamps and cookie expiry, timezone.now() for expire_date and set_expiry."""
    if now is None:
        yield
        return
    dt = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    with mock.patch("time.time", return_value=float(now)), mock.patch(
        "django.utils.timezone.now", return_value=dt
    ):
        yield


def admin_connection():
    """A connection to the server's admin database, to create or drop the test one."""
    from urllib.parse import unquote, urlparse

    u = urlparse(os.environ["DATABASE_URL"])
    admin_db = os.environ.get("SESSIO_DJANGO_ADMIN_DB", "test")
    name = u.path.lstrip("/")
    if u.scheme in ("postgres", "postgresql"):
        import psycopg

        conn = psycopg.connect(
            host=u.hostname,
            port=u.port or 5432,
            user=unquote(u.username or ""),
            password=unquote(u.password or ""),
            dbname=admin_db,
            autocommit=True,
            connect_timeout=5,
        )
        return conn, name, "postgres"
    if u.scheme in ("mysql", "mariadb"):
        import pymysql

        conn = pymysql.connect(
            host=u.hostname,
            port=u.port or 3306,
            user=unquote(u.username or ""),
            password=unquote(u.password or ""),
            database=admin_db,
            autocommit=True,
            connect_timeout=5,
        )
        return conn, name, "mysql"
    raise ValueError("SESSIO_DJANGO_CREATE_DB needs a postgres:// or mysql:// DATABASE_URL")


def create_db():
    conn, name, kind = admin_connection()
    with conn, conn.cursor() as c:
        if kind == "postgres":
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
        else:
            c.execute(f"DROP DATABASE IF EXISTS `{name}`")
            c.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


def drop_db():
    from django.db import connections

    connections.close_all()
    conn, name, kind = admin_connection()
    with conn, conn.cursor() as c:
        if kind == "postgres":
            # FORCE: sessio's pool may still hold connections to it.
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            c.execute(f"DROP DATABASE IF EXISTS `{name}`")


def start():
    """Creates the database if asked, sets Django up and migrates (sessions, auth,
    contenttypes). Returns Django's version."""
    if os.environ.get("SESSIO_DJANGO_CREATE_DB") == "1":
        create_db()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return django.get_version()


def do_request(cmd):
    from django.test import Client

    client = Client()
    if cmd.get("cookie") is not None:
        client.cookies[COOKIE] = cmd["cookie"]
    method = cmd.get("method", "GET").upper()
    with frozen(cmd.get("now")):
        if method == "POST":
            res = client.post(
                cmd["path"], data=json.dumps(cmd.get("json") or {}), content_type="application/json"
            )
        else:
            res = client.get(cmd["path"])
    # The header values exactly as Django's WSGI handler sends them.
    set_cookie = [m.OutputString() for m in res.cookies.values()]
    morsel = res.cookies.get(COOKIE)
    deleted = morsel is not None and str(morsel["max-age"]) == "0"
    body = None
    if res.get("Content-Type", "").startswith("application/json"):
        body = json.loads(res.content)
    return {
        "status": res.status_code,
        "set_cookie": set_cookie,
        "cookie": None if morsel is None or deleted else morsel.value,
        "deleted": deleted,
        "vary": res.get("Vary"),
        "body": body,
    }


def handle(cmd):
    op = cmd.get("op")
    if op == "request":
        return do_request(cmd)
    if op == "user":
        from django.contrib.auth import get_user_model

        users = get_user_model()
        u = users.objects.filter(username=cmd["username"]).first()
        if u is None and cmd.get("create"):
            from django_app.views import PASSWORD

            u = users.objects.create_user(cmd["username"], password=PASSWORD)
        return {"user": None if u is None else {"id": str(u.pk), "password": u.password}}
    if op == "session_row":
        from django.contrib.sessions.models import Session

        row = Session.objects.filter(session_key=cmd["key"]).first()
        if row is None:
            return {"row": None}
        return {
            "row": {
                "session_data": row.session_data,
                "expire_date": row.expire_date.isoformat(),
            }
        }
    if op == "encode":
        from importlib import import_module

        from django.conf import settings

        store = import_module(settings.SESSION_ENGINE).SessionStore()
        with frozen(cmd.get("now")):
            return {"value": store.encode(cmd["data"])}
    if op == "drop_db":
        drop_db()
        return {}
    raise ValueError(f"unknown op {op!r}")


def reply(obj, out):
    out.write(json.dumps(obj) + "\n")
    out.flush()


def main():
    # Django's own output (warnings, logging) must not mix with the JSON replies.
    out = sys.stdout
    sys.stdout = sys.stderr
    if len(sys.argv) != 2:
        reply({"ok": False, "error": "usage: django_side.py serve | django_side.py OP < cmd.json"}, out)
        return 2
    try:
        version = start()
    except Exception as e:
        reply({"ok": False, "error": f"start-up failed: {type(e).__name__}: {e}"}, out)
        return 1
    if sys.argv[1] != "serve":
        cmd = json.load(sys.stdin)
        cmd["op"] = sys.argv[1]
        try:
            reply({"ok": True, "django": version, **handle(cmd)}, out)
            return 0
        except Exception as e:
            reply({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}, out)
            return 1
    reply({"ok": True, "ready": True, "django": version}, out)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            if cmd.get("op") == "quit":
                break
            reply({"ok": True, **handle(cmd)}, out)
        except Exception as e:
            reply({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
