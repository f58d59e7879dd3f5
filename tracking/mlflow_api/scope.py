"""What a project run's token may do (tenancy ApiToken.run_uuid; DESIGN.md invariant 8).

An allow-list of what code started by `mlflow run` needs, RPC by RPC (RULES), each rule checking
the objects the call names:
- its run, and the runs created under it (`mlflow.parentRunId` chain, same experiment, at most
  MAX_DEPTH hops): read and write them, and the logged models whose source run they are;
- its experiment: read it, search runs in it, create child runs in it;
- the runs and model versions it was given as inputs (ApiToken.scope_reads): read them.
Anything else is 403 PERMISSION_DENIED before a handler runs, so nothing changes. A token whose
run has ended (FINISHED, FAILED, KILLED), was deleted or is gone is 401 UNAUTHENTICATED on every
route, as an expired token is; the run's state is read before the call, so the client's own
update-run(status=FINISHED) still passes.

Cost: one query for the token's run on each of its calls (the common call names that run and
needs no other); other objects are looked up only when a call names them. Registry objects are
matched by name and version, or through `_versions_reached`, the one place reading the registry.
"""

import uuid
from dataclasses import dataclass, field

from config.exceptions import ApplicationError
from tracking.artifacts import artifact_path_clean, artifact_path_of_uri
from tracking.mlflow_api.errors import MlflowError
from tracking.models import LifecycleStage, LoggedModel, RunStatus, RunTag
from tracking.selectors import run_get

PARENT_TAG = "mlflow.parentRunId"
MAX_DEPTH = 10  # parentRunId hops from a run up to the token's run
ENDED = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED})


@dataclass
class _Reach:
    """What the model versions given as inputs lead to: their packages (`registry/<uuid>`),
    the artifact paths they were registered from, their logged models and source runs."""

    packages: set = field(default_factory=set)
    prefixes: list = field(default_factory=list)
    models: set = field(default_factory=set)
    runs: set = field(default_factory=set)


class RunScope:
    """One request of a run token: its run as it was before the call, and what it reaches."""

    def __init__(self, access):
        self.org, self.uuid = access.org, access.run_scope
        reads = access.token.scope_reads or {}
        self.input_runs = frozenset(reads.get("runs") or ())
        self.input_versions = frozenset((name, int(v)) for name, v in
                                        reads.get("model_versions") or ())
        try:
            self.run = run_get(org=self.org, run_id=self.uuid)
        except ApplicationError:
            self.run = None
        state = "gone" if self.run is None else self.run.status if self.run.status in ENDED \
            else "deleted" if self.run.lifecycle_stage != LifecycleStage.ACTIVE else None
        if state is not None:
            raise MlflowError(f"This token belonged to project run {self.uuid}, which has ended "
                              f"({state}); it is no longer valid.", "UNAUTHENTICATED")
        self.experiment = self.run.experiment
        self._writable, self._models, self._reach = {self.uuid}, {}, None
        self.body = b""  # the raw request body, for the rules that look at it

    def denied(self, what: str) -> MlflowError:
        return MlflowError(f"This token belongs to project run {self.uuid}: it may use only "
                           "that run, the runs created under it, its experiment and the inputs "
                           f"it was given; {what} is outside that.", "PERMISSION_DENIED")

    # --- runs ----------------------------------------------------------------------------------

    def writes_run(self, run_id) -> bool:
        if run_id == self.uuid:
            return True
        if not isinstance(run_id, str):  # a list or object where an id belongs: never
            return False
        if run_id in self._writable:
            return True
        if not self._descends(run_id):
            return False
        self._writable.add(run_id)
        return True

    def _descends(self, run_id: str) -> bool:
        """Whether `run_id`'s parentRunId chain reaches the token's run, every run on it in
        the token run's experiment (a tag naming the run from elsewhere does not count)."""
        current, seen = run_id, set()
        for _ in range(MAX_DEPTH):
            seen.add(current)
            parent = RunTag.objects.filter(
                org=self.org, run__run_uuid=current, run__experiment_id=self.experiment.pk,
                key=PARENT_TAG).values_list("value", flat=True).first()
            if parent is None or parent in seen:
                return False
            if parent in self._writable:
                return True
            current = parent
        return False

    def reads_run(self, run_id) -> bool:
        return isinstance(run_id, str) and (run_id in self.input_runs or self.writes_run(run_id))

    def gets_run(self, run_id) -> bool:
        """get-run also of a given model version's source run (a `runs:/` source resolves so)."""
        return self.reads_run(run_id) or (isinstance(run_id, str)
                                          and run_id in self._versions_reached().runs)

    # --- logged models -------------------------------------------------------------------------

    def _model(self, model_id) -> tuple[str, str] | None:
        """(source run id, artifact root) of a logged model of the organization."""
        if not isinstance(model_id, str):
            return None
        if model_id not in self._models:
            found = LoggedModel.objects.filter(org=self.org, model_id=model_id).values_list(
                "source_run__run_uuid", "artifact_uri").first()
            self._models[model_id] = found
        return self._models[model_id]

    def writes_model(self, model_id) -> bool:
        found = self._model(model_id)
        return found is not None and found[0] is not None and self.writes_run(found[0])

    def reads_model(self, model_id) -> bool:
        found = self._model(model_id)
        return found is not None and (model_id in self._versions_reached().models or (
            found[0] is not None and self.reads_run(found[0])))

    # --- model versions (inputs only) ----------------------------------------------------------

    def reads_version(self, name, version) -> bool:
        try:
            return (name, int(version)) in self.input_versions
        except (TypeError, ValueError):
            return False

    def _versions_reached(self) -> _Reach:
        if self._reach is None:
            self._reach = _versions_reached(self.org, self.input_versions)
        return self._reach

    # --- artifacts -----------------------------------------------------------------------------

    def artifact(self, raw_path: str, *, write: bool) -> bool:
        """`raw_path` (org-relative, as the artifact proxy gets it) lies below the artifact root
        of a run or logged model the token may write (or, reading, read), or of a given model
        version."""
        path = artifact_path_clean(raw_path)
        parts = path.split("/")
        if len(parts) < 2:
            return False
        if parts[0] == "registry":  # read-only packages, by version uuid
            return not write and _uuid(parts[1]) in self._versions_reached().packages
        if parts[1] == "models":
            model_id = parts[2] if len(parts) > 2 else None
            allowed = self.writes_model(model_id) if write else self.reads_model(model_id)
            if allowed and _below(path, artifact_path_of_uri(self._model(model_id)[1])):
                return True
        elif self.writes_run(parts[1]) if write else self.reads_run(parts[1]):
            run = self.run if parts[1] == self.uuid else run_get(org=self.org, run_id=parts[1])
            if _below(path, artifact_path_of_uri(run.artifact_uri)):
                return True
        return not write and any(_below(path, p) for p in self._versions_reached().prefixes)


def _below(path: str, root: str) -> bool:
    return bool(root) and (path == root or path.startswith(root + "/"))


def _uuid(text: str):
    try:
        return uuid.UUID(text)  # as the registry mount parses it (any case, with or without -)
    except ValueError:
        return None


def _versions_reached(org, versions: frozenset) -> _Reach:
    reach = _Reach()
    if not versions:
        return reach
    # The registry sits above tracking: imported here, and only for a token given versions.
    from django.db.models import Q

    from models_registry.models import ModelVersion

    wanted = Q()
    for name, number in versions:
        wanted |= Q(registered_model__name=name, version=number)
    for package, model_id, source_path, run_id in ModelVersion.objects.filter(
            wanted, org=org, deleted=False, registered_model__deleted=False).values_list(
                "uuid", "model_id", "source_path", "run__run_uuid"):
        reach.packages.add(package)
        if source_path:
            reach.prefixes.append(source_path)
        if model_id:
            reach.models.add(model_id)
        if run_id:
            reach.runs.add(run_id)
    return reach


# --- the allow-list ------------------------------------------------------------------------------

def _run_ids(data: dict) -> list:
    """The run a call names: run_id, or run_uuid (the old name). Handlers take either, so every
    one given must pass; none (or a non-string) passes nothing."""
    ids = [data[k] for k in ("run_id", "run_uuid") if data.get(k) not in (None, "")]
    return ids if ids and all(isinstance(i, str) for i in ids) else []


def _as_list(value) -> list:
    if isinstance(value, str):
        return [value]
    return value if isinstance(value, list) else []


def _reads_runs(s: RunScope, d: dict) -> bool:
    ids = _run_ids(d)
    return bool(ids) and all(map(s.reads_run, ids))


def _gets_run(s: RunScope, d: dict) -> bool:
    ids = _run_ids(d)
    return bool(ids) and all(map(s.gets_run, ids))


def _writes_run(s: RunScope, d: dict) -> bool:
    ids = _run_ids(d)
    return bool(ids) and all(map(s.writes_run, ids))


def _logs_to_run(s: RunScope, d: dict) -> bool:
    """log-batch / log-metric: the run, and any model a metric is logged against (MLflow links
    the metrics of a loaded model to it) one the token reads. The byte search keeps the check
    off the hot path: a batch naming no model costs no Python call per point."""
    if not _writes_run(s, d):
        return False
    if b"model_id" not in s.body:
        return True
    points = [d] + [m for m in _as_list(d.get("metrics")) if isinstance(m, dict)]
    return all(s.reads_model(p["model_id"]) for p in points if p.get("model_id"))


def _outputs(s: RunScope, d: dict) -> bool:
    models = _as_list(d.get("models"))
    return _writes_run(s, d) and all(isinstance(m, dict) and s.writes_model(m.get("model_id"))
                                     for m in models)


def _creates_child(s: RunScope, d: dict) -> bool:
    """create-run in the token's experiment, tagged as a child of a run the token writes."""
    parents = [t.get("value") for t in _as_list(d.get("tags"))
               if isinstance(t, dict) and t.get("key") == PARENT_TAG]
    experiment = d.get("experiment_id") or "0"  # what the handler defaults to
    return experiment == s.experiment.public_id and bool(parents) \
        and all(map(s.writes_run, parents))


def _searches_experiment(s: RunScope, d: dict) -> bool:
    ids = _as_list(d.get("experiment_ids"))
    return bool(ids) and all(str(e) == s.experiment.public_id for e in ids)


def _creates_model(s: RunScope, d: dict) -> bool:
    return d.get("experiment_id") == s.experiment.public_id \
        and s.writes_run(d.get("source_run_id"))


def _reads_history_bulk(s: RunScope, d: dict) -> bool:
    ids = _as_list(d.get("run_ids"))
    return bool(ids) and all(map(s.reads_run, ids))


RULES = {
    ("GET", "server-info"): lambda s, d: True,
    ("GET", "experiments/get"): lambda s, d: d.get("experiment_id") == s.experiment.public_id,
    ("GET", "experiments/get-by-name"): lambda s, d: d.get("experiment_name") == s.experiment.name,
    ("POST", "runs/search"): _searches_experiment,
    ("POST", "runs/create"): _creates_child,
    ("GET", "runs/get"): _gets_run,
    ("GET", "artifacts/list"): _reads_runs,
    ("GET", "metrics/get-history"): _reads_runs,
    ("GET", "metrics/get-history-bulk-interval"): _reads_history_bulk,
    ("POST", "runs/update"): _writes_run,
    ("POST", "runs/log-batch"): _logs_to_run,
    ("POST", "runs/log-metric"): _logs_to_run,
    ("POST", "runs/log-parameter"): _writes_run,
    ("POST", "runs/set-tag"): _writes_run,
    ("POST", "runs/delete-tag"): _writes_run,
    ("POST", "runs/log-inputs"): _writes_run,
    ("POST", "runs/outputs"): _outputs,
    ("POST", "logged-models"): _creates_model,
    ("GET", "logged-models/{model_id}"): lambda s, d: s.reads_model(d.get("model_id")),
    ("GET", "logged-models/{model_id}/artifacts/directories"):
        lambda s, d: s.reads_model(d.get("model_id")),
    ("PATCH", "logged-models/{model_id}"): lambda s, d: s.writes_model(d.get("model_id")),
    ("PATCH", "logged-models/{model_id}/tags"): lambda s, d: s.writes_model(d.get("model_id")),
    ("DELETE", "logged-models/{model_id}/tags/{tag_key}"):
        lambda s, d: s.writes_model(d.get("model_id")),
    ("POST", "logged-models/{model_id}/params"): lambda s, d: s.writes_model(d.get("model_id")),
    ("GET", "model-versions/get"): lambda s, d: s.reads_version(d.get("name"), d.get("version")),
    ("GET", "model-versions/get-download-uri"):
        lambda s, d: s.reads_version(d.get("name"), d.get("version")),
    ("GET", "registered-models/get"):
        lambda s, d: any(name == d.get("name") for name, _ in s.input_versions),
}


def check_rpc(run_scope: RunScope, method: str, route: str, data: dict, body: bytes = b"") -> None:
    """Raise 403 unless `METHOD route` (as registered, "logged-models/{model_id}") with these
    fields is on the allow-list for this token."""
    rule = RULES.get((method, route))
    run_scope.body = body
    if rule is None or not rule(run_scope, data):
        raise run_scope.denied(f"{method} {route} with these arguments")


def check_artifact(run_scope: RunScope, method: str, path: str) -> None:
    """Raise 403 unless the artifact proxy call (GET reads, PUT and DELETE write) stays in
    what the token reaches."""
    if not run_scope.artifact(path, write=method != "GET"):
        raise run_scope.denied(f"the artifact path '{path}'")
