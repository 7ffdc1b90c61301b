#!/usr/bin/env bash
# Installs real Django into virtualenvs for the live interoperability tests
# (crates/sessio/tests/django_live.rs): the 5.2 LTS and the newest 6.x, each with
# psycopg (PostgreSQL) and PyMySQL (MySQL/MariaDB, pure Python). Idempotent and quiet:
# a venv whose Django and drivers already import is left alone.
#
#   bash interop/setup-django.sh              # venvs in target/django-venvs/{5.2,6}
#   SESSIO_DJANGO_VENVS=/dir bash interop/setup-django.sh
set -euo pipefail
cd "$(dirname "$0")/.."

root="${SESSIO_DJANGO_VENVS:-$PWD/target/django-venvs}"
mkdir -p "$root"

# The first interpreter of the list that really runs and is recent enough. `command -v`
# alone is not enough: a pyenv shim exists for every version pyenv knows, and fails to
# run when that version is not the selected one.
find_python() {
  local min="$1"; shift
  local p
  for p in "$@"; do
    if "$p" -c "import sys, venv; sys.exit(sys.version_info[:2] < ($min))" >/dev/null 2>&1; then
      echo "$p"; return 0
    fi
  done
  return 1
}

pyenv_root="${PYENV_ROOT:-${HOME:-/root}/.pyenv}"
# Django 5.2 on Python 3.11 (the machine's python3). Django 6 needs Python 3.12 or newer,
# which this machine has only under pyenv.
py311=$(find_python "3, 11" python3.11 python3) || {
  echo "setup-django: no Python 3.11+ found" >&2; exit 1; }
py312=$(find_python "3, 12" python3.13 python3.12 \
  "$pyenv_root"/versions/3.13*/bin/python3 "$pyenv_root"/versions/3.12*/bin/python3) || {
  echo "setup-django: Django 6 needs Python 3.12+, and none was found (PATH, $pyenv_root/versions)" >&2
  exit 1; }

# setup NAME PYTHON REQUIREMENT DJANGO_VERSION_PREFIX
setup() {
  local name="$1" python="$2" req="$3" want="$4"
  local venv="$root/$name"
  local check="import django, psycopg, pymysql; import sys; sys.exit(not django.__version__.startswith('$want'))"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    return 0
  fi
  echo "setup-django: installing $req into $venv ($("$python" --version 2>&1))"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "$req" "psycopg[binary]" "PyMySQL"
  "$venv/bin/python" -c "$check" || {
    echo "setup-django: $venv does not import Django $want after the install" >&2; exit 1; }
}

setup 5.2 "$py311" "Django>=5.2,<5.3" "5.2."
setup 6 "$py312" "Django>=6,<7" "6."
for v in 5.2 6; do
  echo "setup-django: $v -> Django $("$root/$v/bin/python" -c 'import django; print(django.__version__)')"
done
