from django.urls import path

from tenancy import apis

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("members/", apis.MemberListApi.as_view(), name="member-list"),
    path("members/<int:member_id>/", apis.MemberDetailApi.as_view(), name="member-detail"),
    path("service-accounts/", apis.ServiceAccountListApi.as_view(), name="service-account-list"),
    path("tokens/", apis.TokenListApi.as_view(), name="token-list"),
    path("tokens/<int:token_id>/", apis.TokenDetailApi.as_view(), name="token-detail"),
]
