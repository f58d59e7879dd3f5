from django.contrib.auth import views as auth_views
from django.urls import path

from tenancy import views
from tenancy.forms import LoginForm

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("org/select/", views.org_select, name="org-select"),
    path("", views.home, name="home"),
]
