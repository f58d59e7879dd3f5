"""Where untrusted code runs: project entry points, environment builds, Git fetches (and, in
the next step, model loading). One interface (spec.Spec -> spec.Process -> spec.Result) and
its backends: bwrap (default on Linux), docker, kubernetes, none (explicit only).
docs/sandbox.md is the threat model and says which test proves each guarantee."""

import functools
import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.sandbox.spec import Backend, SandboxUnavailable

logger = logging.getLogger(__name__)
BACKENDS = ("bwrap", "docker", "kubernetes", "none")

__all__ = ["BACKENDS", "SandboxUnavailable", "backend"]


def backend(name: str = "") -> Backend:
    """The configured backend (LEDGERFLOW_SANDBOX), or the one named."""
    name = name or settings.LEDGERFLOW_SANDBOX
    if name not in BACKENDS:
        raise ImproperlyConfigured(f"LEDGERFLOW_SANDBOX must be one of {', '.join(BACKENDS)}, "
                                   f"not {name!r}.")
    return _backend(name, settings.LEDGERFLOW_BWRAP)


@functools.cache
def _backend(name: str, bwrap: str) -> Backend:
    if name == "bwrap":
        from config.sandbox.bwrap import BwrapBackend

        return BwrapBackend(binary=bwrap, uid_base=settings.LEDGERFLOW_SANDBOX_UID_BASE,
                            uid_count=settings.LEDGERFLOW_SANDBOX_UID_COUNT)
    if name == "docker":
        from config.sandbox.docker import DockerBackend

        return DockerBackend()
    if name == "kubernetes":
        from config.sandbox.kubernetes import KubernetesBackend

        return KubernetesBackend()
    from config.sandbox.unconfined import UnconfinedBackend

    logger.warning("LEDGERFLOW_SANDBOX=none: project code and environment builds run with "
                   "this worker's own rights. Never use this in production.")
    return UnconfinedBackend()
