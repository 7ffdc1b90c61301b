from django.urls import path

from . import views

urlpatterns = [
    path("set", views.set_data),
    path("show", views.show),
    path("login", views.login_view),
    path("whoami", views.whoami),
    path("logout", views.logout_view),
    path("untouched", views.untouched),
]
