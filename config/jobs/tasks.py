"""The runner's Celery tasks: one per declared kind of job, named after it (so the metrics and
logs say which work ran) and sent to its queue, and beat's sweep on the default queue."""

from celery import shared_task

from config.jobs import runner
from config.jobs.kinds import declared


def _task_for(name: str):
    def run(self, job: int) -> str:
        return runner.execute(job, task_id=self.request.id or "")

    run.__name__ = run.__qualname__ = "run_" + name.replace(".", "_")
    return shared_task(name=name, bind=True)(run)


def register_kinds() -> None:
    """A task for each kind declared by the apps' ready(), which run before this one's."""
    for kind in declared():
        _task_for(kind.name)


@shared_task(name="jobs.sweep")
def sweep_jobs() -> dict:
    return runner.sweep()
