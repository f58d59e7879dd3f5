"""`manage.py demo_seed`: the demo organization `make run` shows, seeded idempotently.

Its members, one per persona (owner, data scientist, compliance officer, auditor), each with a
random password and an API token; a credit-scoring experiment with runs worth comparing, each
logging its model as MLflow 3's `log_model` does (a logged model with the run's params, its
files in the model's own location, its final metrics linked to it); the `credit-risk` model
registered from the best of them (`models:/<model id>`, packaged by the worker, like any
registration, so `make run` does not wait for the runner environment) with the alias
`production`, protected so that moving it needs a compliance officer's approval; the model in
the risk inventory (owned by the data scientist, validated and approved by the compliance
officer, as SR 11-7 wants validation independent of the owner); the organization's compliance
profile and the model's feature catalogue (examples/).

Raw tokens and passwords are never stored in the database: they live in a 0600 file in the data
dir (`demo-credentials.txt`, a shell file to paste or `source`), so every `make run` prints the
same working logins; `manage.py demo_credentials` prints it again. Every write goes through the
services, so each is audited (DESIGN.md invariant 1).
"""

import io
import json
import logging
import os
import re
import secrets
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from models_registry import services as registry
from models_registry.inventory import inventory_entry_create, validation_record
from models_registry.models import (
    InventoryEntry,
    ModelAlias,
    ModelValidation,
    ProtectedAlias,
    RegisteredModel,
    RiskTier,
    ValidationOutcome,
)
from reports.models import ComplianceProfile, FeatureDescription
from reports.services import compliance_profile_set, feature_description_set
from tenancy.authentication import AuthenticationError, authenticate_token_header
from tenancy.management.commands._base import ServiceCommand
from tenancy.models import ApiToken, Membership, Organization, User
from tenancy.roles import Role
from tenancy.services import (
    membership_add,
    organization_create,
    token_create,
    token_revoke,
    user_loopback_only_set,
    user_password_set,
)
from tracking.artifacts import artifact_path_of_uri, artifact_upload
from tracking.models import Experiment, LoggedModel, LoggedModelStatus, RunStatus
from tracking.services.common import now_ms
from tracking.services.experiments import experiment_create
from tracking.services.inputs import run_log_outputs
from tracking.services.logged_models import logged_model_create, logged_model_finalize
from tracking.services.runs import run_create, run_log_batch, run_update

DEMO_ORG, DEMO_NAME = "demo", "Demo Bank"
EXAMPLES = settings.BASE_DIR / "examples"
CREDENTIALS_FILE = "demo-credentials.txt"
TOKEN_NAME = "make run demo"
EXPERIMENT, MODEL, ALIAS = "credit-scoring", "credit-risk", "production"
FEATURES = ("income", "debt", "age", "late_payments")


@dataclass(frozen=True)
class Persona:
    key: str  # TOKEN_<key> in the banner
    email: str
    role: str
    name: str


PERSONAS = (
    Persona("OWNER", "owner@demo.example", Role.OWNER, "Olivia Owner"),  # Django admin too
    Persona("DS", "ds@demo.example", Role.DATA_SCIENTIST, "Dana Scientist"),
    Persona("CO", "co@demo.example", Role.COMPLIANCE_OFFICER, "Colin Officer"),
    Persona("AUDITOR", "auditor@demo.example", Role.AUDITOR, "Avery Auditor"),
)


def credentials_path() -> Path:
    return settings.DATA_DIR / CREDENTIALS_FILE


class Command(ServiceCommand):
    help = ("Seed the demo organization (idempotent): a member per persona with a password and "
            "a token, runs, a registered credit-scoring model, the compliance profile and "
            "feature catalogue. Prints the credentials; the last line is the file keeping them.")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=DEMO_ORG).first() or organization_create(
            slug=DEMO_ORG, name=DEMO_NAME, actor=self.actor())
        known = _credentials_read()
        logins = {p.key: self._member(org, p, known.get(f"PASSWORD_{p.key}")) for p in PERSONAS}
        tokens = {p.key: self._token(org, p, known.get(f"TOKEN_{p.key}")) for p in PERSONAS}
        # The demo owner may use Django admin; staff flags are global, not tenant data.
        User.objects.filter(email=PERSONAS[0].email).update(is_staff=True, is_superuser=True)
        self._content(org)
        legend, exports = _credentials(org, logins, tokens)
        _credentials_write("".join(f"# {line}\n" for line in [
            f"Ledgerflow's demo, as `make run` printed it: `source {credentials_path()}`.",
            *legend]) + "".join(f"{line}\n" for line in exports))
        self.stdout.write(f"Organization: {org.slug} ({org.name})")
        for line in [*legend[:len(PERSONAS) + 1], "", *exports]:
            self.stdout.write(line)
        self.stdout.write(str(credentials_path()))

    # --- members and their credentials ---------------------------------------------------------

    def _member(self, org, persona: Persona, password: str | None) -> str | None:
        """The persona's password: the one on file, a new one where none is, None where its
        user changed it."""
        membership = Membership.objects.filter(org=org, user__email=persona.email) \
            .select_related("user").first()
        if membership is None:
            password = secrets.token_urlsafe(12)
            membership_add(org=org, email=persona.email, role=persona.role, password=password,
                           name=persona.name, actor=self.actor(), loopback_only=True)
            return password
        if not membership.user.loopback_only:  # an older seed's persona
            user_loopback_only_set(org=org, user=membership.user, actor=self.actor())
        if password == "":
            return None  # changed by its user since: theirs to know, not ours to reset
        elif password is None:
            # A member whose password is on no file (an older seed's, or the file is gone).
            password = secrets.token_urlsafe(12)
            user_password_set(org=org, user=membership.user, password=password,
                              actor=self.actor())
        elif not membership.user.check_password(password):
            return None
        return password

    def _token(self, org, persona: Persona, raw: str | None) -> str:
        """The persona's token on file while it still works for them, else a new one."""
        if raw is None and persona.key == "DS":
            raw = _legacy_token()
        try:
            user, access = authenticate_token_header(f"Bearer {raw}") if raw else (None, None)
        except AuthenticationError:
            user = None
        if user is not None and user.email == persona.email and access.org.pk == org.pk \
                and not access.token.read_only:
            return raw
        member = User.objects.get(email=persona.email)
        # Tokens of earlier seeds whose raw value is lost with the file must not live on.
        for stale in ApiToken.objects.filter(org=org, user=member, name=TOKEN_NAME,
                                             revoked_at__isnull=True):
            token_revoke(token=stale, actor=self.actor())
        _, raw = token_create(org=org, user=member, name=TOKEN_NAME, actor=self.actor())
        return raw

    # --- what the personas find ----------------------------------------------------------------

    def _content(self, org) -> None:
        if not ComplianceProfile.objects.filter(org=org).exists():
            compliance_profile_set(org=org, actor=self.actor(),
                                   data=json.loads((EXAMPLES / "profile.json").read_text()))
        model = RegisteredModel.objects.filter(org=org, name=MODEL, deleted=False).first()
        if model is None:
            model = self._model(org)
        self._catalogue(model)
        if not ModelAlias.objects.filter(registered_model=model, alias=ALIAS).exists():
            version = model.versions.filter(deleted=False).order_by("version").first()
            if version is not None:
                registry.alias_set(version=version, alias=ALIAS, actor=self.actor())
        if not ProtectedAlias.objects.filter(org=org, alias=ALIAS).exists():
            registry.protected_alias_add(org=org, alias=ALIAS, actor=self.actor())
        self._inventory(model)

    def _inventory(self, model) -> None:
        """The model in the risk inventory, reviewed today, with an approving validation."""
        owner, validator = PERSONAS[1].email, PERSONAS[2].email
        if not InventoryEntry.objects.filter(registered_model=model).exists():
            inventory_entry_create(
                model=model, owner=owner, risk_tier=RiskTier.HIGH, review_frequency_months=12,
                intended_use="Probability of default of consumer credit applicants, for the "
                             "credit decision (demo).",
                limitations="Trained on 450 synthetic applicants; not for business loans.",
                last_reviewed_on=timezone.localdate(), actor=self.actor())
        if not ModelValidation.objects.filter(registered_model=model).exists():
            validation_record(model=model, actor=self.actor(), validated_by=validator,
                              validated_on=timezone.localdate(), outcome=ValidationOutcome.APPROVED,
                              scope="Conceptual soundness, discrimination (AUC) on the held-out "
                                    "applicants, input checks.",
                              findings="AUC on held-out applicants as logged in its run.")

    def _catalogue(self, model) -> None:
        described = set(FeatureDescription.objects.filter(registered_model=model)
                        .values_list("feature", flat=True))
        catalogue = json.loads((EXAMPLES / "features.json").read_text())
        for feature, data in catalogue.items():
            if feature not in described:
                feature_description_set(registered_model=model, feature=feature,
                                        actor=self.actor(), data=data)

    def _model(self, org) -> RegisteredModel:
        """Runs of a logistic regression worth comparing, each logging its model; the best
        one's logged model registered (the worker packages it, as any registration)."""
        experiment = Experiment.objects.filter(org=org, name=EXPERIMENT).first() or \
            experiment_create(org=org, name=EXPERIMENT, actor=self.actor())
        x, y = _training_data()
        results = [self._run(experiment, x, y, c) for c in (0.001, 0.01, 0.1, 1.0)]
        run, logged = max(results, key=lambda result: result[2])[:2]
        model = registry.registered_model_create(
            org=org, name=MODEL, actor=self.actor(),
            description="Probability that a consumer credit is not repaid (demo).")
        # what mlflow.register_model("models:/<model id>", ...) sends
        registry.model_version_create(model=model, source=f"models:/{logged.model_id}",
                                      run_id=run.run_uuid, model_id=logged.model_id,
                                      actor=self.actor(),
                                      description="Logistic regression, best AUC of the demo runs")
        return model

    def _run(self, experiment, x, y, c: float):
        """One training run: its parameters, a learning curve (validation AUC as the training
        set grows, step by step), its model logged and final metrics linked to that model;
        returns (run, logged model, AUC)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

        run = run_create(experiment=experiment, actor=self.actor(), run_name=f"logreg-C{c:g}",
                         tags={"purpose": "demo: compare regularization strengths"})
        train, valid = slice(0, 450), slice(450, None)
        metrics, now = [], now_ms()
        for step in range(1, 10):
            partial = LogisticRegression(C=c, max_iter=1000).fit(x[:step * 50], y[:step * 50])
            auc = roc_auc_score(y[valid], partial.predict_proba(x[valid])[:, 1])
            metrics.append({"key": "val_auc", "value": auc, "timestamp": now, "step": step})
        params = {k: str(v) for k, v in {
            "C": c, "penalty": "l2", "solver": "lbfgs", "train_rows": 450,
            "features": ",".join(FEATURES)}.items()}
        batch = {"metrics": metrics, "params": [{"key": k, "value": v}
                                                for k, v in params.items()], "tags": []}
        run_log_batch(run=run, actor=self.actor(), payload=batch, **batch)
        model = LogisticRegression(C=c, max_iter=1000).fit(x[train], y[train])
        logged = self._log_model(run, model, x, params)
        scores = model.predict_proba(x[valid])[:, 1]
        final = {"auc": roc_auc_score(y[valid], scores), "log_loss": log_loss(y[valid], scores),
                 "accuracy": accuracy_score(y[valid], scores >= 0.5)}
        # mlflow.log_metrics(final, model_id=...): points of the run, linked to its model
        batch = {"metrics": [{"key": k, "value": v, "timestamp": now, "step": 0,
                              "model_id": logged.model_id} for k, v in final.items()],
                 "params": [], "tags": []}
        run_log_batch(run=run, actor=self.actor(), payload=batch, **batch)
        run_update(run=run, actor=self.actor(), status=RunStatus.FINISHED, end_time=now_ms())
        return run, logged, final["auc"]

    def _log_model(self, run, model, x, params: dict) -> LoggedModel:
        """What mlflow.sklearn.log_model does in MLflow 3: a logged model of the run (with the
        run's params) named as the run's output, its files uploaded to the model's own
        location (not the run's artifacts), then marked ready."""
        from importlib.metadata import version

        import mlflow
        import mlflow.sklearn
        from mlflow.models import Model

        logged = logged_model_create(experiment=run.experiment, actor=self.actor(),
                                     name="model", source_run=run, params=params)
        run_log_outputs(run=run, actor=self.actor(),
                        models=[{"model_id": logged.model_id, "step": 0}])
        requirements = [f"mlflow=={mlflow.__version__}", *(
            f"{name}=={version(name)}"
            for name in ("scikit-learn", "skops", "cloudpickle", "pandas", "numpy"))]
        with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
            # MLflow's hints (integer output column, pip's version) would scroll the banner.
            warnings.simplefilter("ignore")
            logging.getLogger("mlflow").setLevel(logging.ERROR)
            local = Path(scratch) / "model"
            described = Model(artifact_path=logged.artifact_uri, model_uuid=logged.model_id,
                              run_id=run.run_uuid, model_id=logged.model_id)
            mlflow.sklearn.save_model(model, str(local), input_example=x.head(5),
                                      pip_requirements=requirements, mlflow_model=described)
            prefix = artifact_path_of_uri(logged.artifact_uri)
            for path in sorted(local.rglob("*")):
                if path.is_file():
                    data = path.read_bytes()
                    artifact_upload(org=run.org, path=f"{prefix}/{path.relative_to(local)}",
                                    stream=io.BytesIO(data), length=len(data),
                                    actor=self.actor())
        return logged_model_finalize(model=logged, status=LoggedModelStatus.READY,
                                     actor=self.actor())


def _training_data(rows: int = 600, seed: int = 7):
    """Applicants with a known outcome: default is likelier with debt and late payments,
    rarer with income (the same shape as the registry tests' data)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "income": rng.normal(50.0, 15.0, rows).round(1),
        "debt": rng.normal(20.0, 8.0, rows).clip(0).round(1),
        "age": rng.integers(18, 80, rows).astype(float),
        "late_payments": rng.poisson(1.0, rows).astype(float),
    })
    logit = 0.08 * x["debt"] - 0.05 * x["income"] + 0.6 * x["late_payments"] + 0.5
    return x, (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)


# --- the credentials file ----------------------------------------------------------------------

_LINE = re.compile(r"^export (?P<name>(?:TOKEN|PASSWORD)_[A-Z]+)=(?P<value>\S+)"
                   r"|^# (?P<changed>PASSWORD_[A-Z]+): changed", re.M)


def _credentials_read() -> dict[str, str]:
    """TOKEN_<key> and PASSWORD_<key> from the file; "" for a password its user changed."""
    path = credentials_path()
    found = _LINE.finditer(path.read_text()) if path.exists() else ()
    return {m["changed"] or m["name"]: "" if m["changed"] else m["value"] for m in found}


def _legacy_token() -> str | None:
    """The data scientist's token an older seed kept in `demo-token`, taken over once."""
    path = settings.DATA_DIR / "demo-token"
    if not path.exists():
        return None
    raw = path.read_text().strip()
    path.unlink()
    return raw or None


def _credentials(org, logins: dict, tokens: dict) -> tuple[list[str], list[str]]:
    """(who is who, the lines to paste): no comment among the latter, as an interactive zsh
    takes `#` for a command."""
    url = settings.LEDGERFLOW_PUBLIC_URL.rstrip("/")
    legend = [f"Whose is whose in {org.name} (log in at {url}/login/ with email and password):"]
    for p in PERSONAS:
        password = f"PASSWORD_{p.key}" if logins[p.key] else "(password changed since)"
        legend.append(f"  {p.role.label.lower():<19} {p.email:<21} TOKEN_{p.key:<8} {password}"
                      + ("  (Django admin too)" if p.role == Role.OWNER else ""))
    exports = [f"export LEDGERFLOW_URL={url}"]
    exports += [f"export TOKEN_{p.key}={tokens[p.key]}" for p in PERSONAS]
    exports += [f"export PASSWORD_{p.key}={logins[p.key]}" for p in PERSONAS if logins[p.key]]
    exports.append("export MLFLOW_TRACKING_URI=$LEDGERFLOW_URL MLFLOW_TRACKING_TOKEN=$TOKEN_DS")
    changed = [f"PASSWORD_{p.key}: changed by its user" for p in PERSONAS if not logins[p.key]]
    return legend + changed, exports


def _credentials_write(text: str) -> None:
    """Replace the file whole, readable by its owner only (it holds every demo secret)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(aside, path)
