"""Views that the Rust tests call through Django's test Client (so that the real
SessionMiddleware and AuthenticationMiddleware run). Every view answers JSON."""

import datetime
import json

from django.contrib.auth import get_user_model, login, logout
from django.http import HttpResponse, JsonResponse

# A known password, so that both sides can reason about the user's hash.
PASSWORD = "interop-password-1"


def _body(request):
    return json.loads(request.body or b"{}")


def _session(request, **extra):
    s = request.session
    return JsonResponse({"data": dict(s.items()), "key": s.session_key, **extra})


def set_data(request):
    """Stores every key of the JSON body's `data`; `expiry` calls set_expiry (a number of
    seconds, int or float, or an ISO datetime string)."""
    body = _body(request)
    for k, v in body.get("data", {}).items():
        request.session[k] = v
    if "expiry" in body:
        expiry = body["expiry"]
        if isinstance(expiry, str):
            expiry = datetime.datetime.fromisoformat(expiry)
        request.session.set_expiry(expiry)
    return _session(request)


def show(request):
    """The session as Django loaded it (without touching request.user)."""
    return _session(request)


def _user_json(user):
    return {
        "user": user.get_username(),
        "user_id": str(user.pk),
        "password_hash": user.password,
    }


def login_view(request):
    """django.contrib.auth.login for `username`, created with PASSWORD if needed."""
    username = _body(request)["username"]
    users = get_user_model()
    user = users.objects.filter(username=username).first()
    if user is None:
        user = users.objects.create_user(username, password=PASSWORD)
    login(request, user)
    return _session(request, **_user_json(user))


def whoami(request):
    """request.user (AuthenticationMiddleware's get_user, which verifies the session auth
    hash and flushes a session whose hash does not match), then the session."""
    user = request.user
    name = user.get_username() if user.is_authenticated else None
    return _session(request, user=name)


def logout_view(request):
    logout(request)
    return _session(request)


def untouched(request):
    return HttpResponse("untouched")
