"""Settings from the environment, so that the Rust tests can point Django at the same
secret key, session engine and database as sessio.

  SECRET_KEY       shared with sessio (required)
  SECRET_KEY_FALLBACKS  old keys, comma-separated (optional)
  SESSION_ENGINE   django.contrib.sessions.backends.signed_cookies or .db (the default)
  DATABASE_URL     sqlite:///abs/path.sqlite3 (sessio's spelling),
                   postgres://user:password@host:port/name, mysql://user:password@host:port/name
"""

import os
from urllib.parse import unquote, urlparse

SECRET_KEY = os.environ["SECRET_KEY"]
# Old keys that still verify (comma-separated), for the key-rotation scenario.
SECRET_KEY_FALLBACKS = [k for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k]
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "django_app.urls"
SESSION_ENGINE = os.environ.get("SESSION_ENGINE", "django.contrib.sessions.backends.db")
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None


def database(url):
    """Django's DATABASES entry for a sessio-style database URL."""
    if url.startswith("sqlite:"):
        # sqlite:///abs/path and sqlite://rel/path, as sessio reads them.
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url.split("://", 1)[1]}
    u = urlparse(url)
    if u.scheme in ("postgres", "postgresql"):
        engine = "django.db.backends.postgresql"
    elif u.scheme in ("mysql", "mariadb"):
        engine = "django.db.backends.mysql"
        # PyMySQL stands in for mysqlclient (no C build needed). Django checks the
        # mysqlclient version it expects (1.4.3 for 5.2, 2.2.1 for 6.x), so claim a newer one.
        import pymysql

        pymysql.version_info = (2, 2, 7, "final", 0)
        pymysql.install_as_MySQLdb()
    else:
        raise ValueError(f"unsupported DATABASE_URL scheme {u.scheme!r}")
    entry = {
        "ENGINE": engine,
        "NAME": u.path.lstrip("/"),
        "USER": unquote(u.username or ""),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "",
        "PORT": str(u.port or ""),
    }
    if engine.endswith("mysql"):
        entry["OPTIONS"] = {"charset": "utf8mb4"}
    return entry


DATABASES = {"default": database(os.environ.get("DATABASE_URL", "sqlite:///:memory:"))}
