"""Who did something: a person (through the browser or a token), a command or a worker task."""

from dataclasses import dataclass, replace

from django_guid import get_guid

from config.addresses import client_address


@dataclass(frozen=True)
class Actor:
    kind: str  # user | token | command | task | system
    label: str
    user: object | None = None
    token: object | None = None
    request_id: str = ""
    client_ip: str | None = None

    @classmethod
    def from_request(cls, request, *, token=None) -> "Actor":
        user = request.user
        if token is not None:
            kind, label = "token", f"{user.email} (token {token.prefix})"
        else:
            kind, label = "user", user.email
        return cls(
            kind=kind,
            label=label,
            user=user,
            token=token,
            request_id=get_guid() or "",
            client_ip=client_address(request),
        )

    @classmethod
    def command(cls, name: str) -> "Actor":
        return cls(kind="command", label=f"manage.py {name}")

    @classmethod
    def task(cls, name: str, task_id: str = "") -> "Actor":
        return cls(kind="task", label=f"task {name}", request_id=task_id)

    @classmethod
    def system(cls, label: str, client_ip: str | None = None) -> "Actor":
        """The service itself, acting on what a request did (e.g. a lockout), in that request."""
        return cls(kind="system", label=label, request_id=get_guid() or "", client_ip=client_ip)

    @classmethod
    def job(cls, attempt) -> "Actor":
        """The actor of one attempt of the job runner (config/jobs): the worker running it, or
        beat's sweep that found it lost."""
        return cls.task(attempt.by, attempt.task_id)

    @classmethod
    def admin(cls, request) -> "Actor":
        actor = cls.from_request(request)
        return replace(actor, label=f"{actor.label} (admin)")
