"""The environment a project runs in: what its MLproject declares, or the runner environment
(`--env-manager local`). Built by config.sandbox.environments, in the sandbox."""

from pathlib import Path

from config.sandbox.environments import (
    Environment,
    EnvironmentFailure,
    conda_env,
    python_env,
    runner,
)

__all__ = ["Environment", "EnvironmentFailure", "environment_for"]


def environment_for(env_manager: str, project, root: Path) -> Environment:
    """What the project declares, or `local` when asked for (MLflow's --env-manager)."""
    if env_manager == "local" or project.env_type == "local":
        return runner()
    if project.env_type == "docker_env":
        return Environment(image=project.docker_image)
    if env_manager == "conda" or project.env_type == "conda_env":
        return conda_env(root / project.env_file)
    return python_env(root / project.env_file)
