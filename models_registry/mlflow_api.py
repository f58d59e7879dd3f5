"""registered-models/* and model-versions/* RPCs (mlflow/protos/model_registry.proto).

Adapters only: read the request, call selectors/services, shape MLflow's JSON.
"""

from django.db.models import Exists, Max, OuterRef, Prefetch, Q
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils

from models_registry import selectors, services
from models_registry.models import (
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
)
from tenancy.roles import Capability
from tracking import search
from tracking.mlflow_api import serialize
from tracking.mlflow_api.errors import MlflowError, missing
from tracking.mlflow_api.request import MlflowRequest
from tracking.mlflow_api.views import Context, rpc

WRITE = Capability.WRITE
REGISTRY_MOUNT = "registry"
# MLflow's limits: registered models 1000 a page; versions 200,000 (the client asks 10,000).
MODELS_MAX_RESULTS = 1000
VERSIONS_MAX_RESULTS = 200_000


# --- JSON shapes ---------------------------------------------------------------------------------

def version_json(v: ModelVersion) -> dict:
    body = {
        "name": v.registered_model.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "user_id": v.user_id,
        "current_stage": v.current_stage,
        "description": v.description,
        "source": v.source,
        "run_id": v.run.run_uuid if v.run_id else "",
        "status": v.status,
        "status_message": v.status_message,
        "tags": [{"key": t.key, "value": t.value} for t in v.tags.all()],
        "run_link": v.run_link,
        "aliases": [a.alias for a in v.aliases.all()],
    }
    if v.model_id:
        body["model_id"] = v.model_id
    return {k: val for k, val in body.items() if val not in ("", [], None)}


def _latest_versions(model: RegisteredModel, stages: list[str] | None = None) -> list:
    """The newest version in each stage (MLflow's latest_versions)."""
    live = model.versions.filter(deleted=False)
    if stages:
        live = live.filter(current_stage__in=stages)
    newest = live.values("current_stage").annotate(v=Max("version")).values_list("v", flat=True)
    return list(selectors.with_details(live.filter(version__in=list(newest)))
                .order_by("version"))


def model_json(model: RegisteredModel, *, with_latest: bool = True) -> dict:
    body = {
        "name": model.name,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "user_id": model.user_id,
        "description": model.description,
        "tags": [{"key": t.key, "value": t.value} for t in model.tags.all()],
        "aliases": [{"alias": a.alias, "version": str(a.model_version.version)}
                    for a in sorted(model.aliases.all(), key=lambda a: a.alias)],
    }
    if with_latest:
        body["latest_versions"] = [version_json(v) for v in _latest_versions(model)]
    return {k: val for k, val in body.items() if val not in ("", [], None)}


def _model(ctx: Context, req: MlflowRequest, field: str = "name") -> RegisteredModel:
    return selectors.registered_model_get(org=ctx.org, name=req.str(field))


def _version(ctx: Context, req: MlflowRequest) -> ModelVersion:
    name = req.str("name")
    raw = req.data.get("version")
    if raw is None or raw == "":
        raise missing("version")
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise MlflowError(f"Parameter 'version' must be an integer, got '{raw}'.") from None
    return selectors.model_version_get(org=ctx.org, name=name, version=number)


def _detailed(version: ModelVersion) -> ModelVersion:
    return selectors.with_details(ModelVersion.objects.filter(pk=version.pk)).get()


# --- registered models --------------------------------------------------------------------------

@rpc("POST", "registered-models/create", WRITE)
def create_model(ctx: Context, req: MlflowRequest):
    model = services.registered_model_create(
        org=ctx.org, name=req.str("name"), actor=ctx.actor(),
        description=req.str("description", ""), tags=dict(req.key_values("tags")))
    return {"registered_model": model_json(model)}


@rpc("GET", "registered-models/get")
def get_model(ctx: Context, req: MlflowRequest):
    return {"registered_model": model_json(_model(ctx, req))}


@rpc("POST", "registered-models/rename", WRITE)
def rename_model(ctx: Context, req: MlflowRequest):
    model = services.registered_model_rename(model=_model(ctx, req), actor=ctx.actor(),
                                             new_name=req.str("new_name"))
    return {"registered_model": model_json(model)}


@rpc("PATCH", "registered-models/update", WRITE)
def update_model(ctx: Context, req: MlflowRequest):
    model = services.registered_model_update(model=_model(ctx, req), actor=ctx.actor(),
                                             description=req.str("description", ""))
    return {"registered_model": model_json(model)}


@rpc("DELETE", "registered-models/delete", WRITE)
def delete_model(ctx: Context, req: MlflowRequest):
    services.registered_model_delete(model=_model(ctx, req), actor=ctx.actor())
    return {}


@rpc("POST", "registered-models/set-tag", WRITE)
def set_model_tag(ctx: Context, req: MlflowRequest):
    services.registered_model_tag(model=_model(ctx, req), key=req.str("key"),
                                  value=req.str("value", ""), actor=ctx.actor())
    return {}


@rpc("DELETE", "registered-models/delete-tag", WRITE)
def delete_model_tag(ctx: Context, req: MlflowRequest):
    services.registered_model_tag(model=_model(ctx, req), key=req.str("key"), value=None,
                                  actor=ctx.actor())
    return {}


@rpc("POST", "registered-models/get-latest-versions")
@rpc("GET", "registered-models/get-latest-versions")
def latest_versions(ctx: Context, req: MlflowRequest):
    stages = [services.STAGES.get(str(s).lower(), str(s)) for s in req.list("stages", [])]
    unknown = [s for s in stages if s not in Stage.values]
    if unknown:
        raise MlflowError(f"Invalid Model Version stage: {unknown[0]}. Value must be one of "
                          f"{', '.join(Stage.values)}.")
    versions = _latest_versions(_model(ctx, req), stages or None)
    return {"model_versions": [version_json(v) for v in versions]} if versions else {}


@rpc("POST", "registered-models/alias", WRITE)
def set_alias(ctx: Context, req: MlflowRequest):
    version = _version(ctx, req)
    services.alias_set(version=version, alias=req.str("alias"), actor=ctx.actor())
    return {}


@rpc("DELETE", "registered-models/alias", WRITE)
def delete_alias(ctx: Context, req: MlflowRequest):
    services.alias_delete(model=_model(ctx, req), alias=req.str("alias"), actor=ctx.actor())
    return {}


@rpc("GET", "registered-models/alias")
def get_by_alias(ctx: Context, req: MlflowRequest):
    version = selectors.model_version_by_alias(org=ctx.org, name=req.str("name"),
                                               alias=req.str("alias"))
    return {"model_version": version_json(_detailed(version))}


def _parsed(parser, filter_string: str) -> list[dict]:
    try:
        return parser.parse_search_filter(filter_string) if filter_string else []
    except MlflowException as exc:
        raise MlflowError(exc.message) from None


def _string_term(field: str, comparator: str, value) -> Q:
    lookups = {"=": "exact", "LIKE": "like", "ILIKE": "ilike", "IN": "in", "NOT IN": "in"}
    if comparator == "!=":
        return ~Q(**{field: value})
    if comparator not in lookups:
        raise MlflowError(f"Invalid comparator '{comparator}' for '{field}'.")
    q = Q(**{f"{field}__{lookups[comparator]}": value})
    return ~q if comparator == "NOT IN" else q


def _tag_term(tag_model, owner: str, key: str, comparator: str, value) -> Q:
    """EXISTS (a tag of this key whose value matches). As in MLflow, an owner without the tag
    matches no comparison, except the prompt marker the client adds to every search
    (`tags.mlflow.prompt.is_prompt != 'true'`), which models without it pass."""
    if comparator not in ("=", "!=", "LIKE", "ILIKE"):
        raise MlflowError(f"Invalid comparator '{comparator}' for a tag.")
    tags = tag_model.objects.filter(**{owner: OuterRef("pk")}, key=key)
    if key == IS_PROMPT_TAG_KEY and (comparator, value) in (("!=", "true"), ("=", "false")):
        return ~Exists(tags.filter(value="true"))
    return Q(Exists(tags.filter(_string_term("value", comparator, value))))


def _order(parse, order_by: list, default: list[str], fields: dict) -> list[str]:
    ordering = []
    for clause in order_by:
        try:
            _kind, key, ascending = parse(clause)
        except MlflowException as exc:
            raise MlflowError(exc.message) from None
        ordering.append(("" if ascending else "-") + fields[key])
    return ordering + [o for o in default if o.lstrip("-") not in
                       {x.lstrip("-") for x in ordering}]


@rpc("GET", "registered-models/search")
def search_models(ctx: Context, req: MlflowRequest):
    models = RegisteredModel.objects.filter(org=ctx.org, deleted=False)
    for clause in _parsed(SearchModelUtils, req.str("filter", "")):
        kind, key, comparator, value = (clause["type"], clause["key"],
                                        clause["comparator"].upper(), clause["value"])
        if kind == "attribute" and key == "name":
            models = models.filter(_string_term("name", comparator, value))
        elif kind == "tag":
            models = models.filter(_tag_term(RegisteredModelTag, "registered_model", key,
                                                    comparator, value))
        else:
            raise MlflowError(f"Invalid attribute key '{key}' specified. Valid keys are "
                              "'['name']'")
    ordering = _order(SearchModelUtils.parse_order_by_for_search_registered_models,
                      req.list("order_by", []), ["name"],
                      {"name": "name", "creation_timestamp": "creation_timestamp",
                       "last_updated_timestamp": "last_updated_timestamp",
                       "timestamp": "creation_timestamp"})
    models = models.prefetch_related(  # what model_json shows, in two queries for the page
        "tags", Prefetch("aliases", queryset=ModelAlias.objects.select_related("model_version")))
    page, token = search.paginate(models.order_by(*ordering),
                                  page_token=req.str("page_token", ""),
                                  max_results=req.int("max_results", 100),
                                  most=MODELS_MAX_RESULTS)
    return serialize.page("registered_models", [model_json(m) for m in page], token)


# --- model versions -----------------------------------------------------------------------------

@rpc("POST", "model-versions/create", WRITE)
def create_version(ctx: Context, req: MlflowRequest):
    version = services.model_version_create(
        model=_model(ctx, req), source=req.str("source"), actor=ctx.actor(),
        run_id=req.str("run_id", ""), model_id=req.str("model_id", ""),
        run_link=req.str("run_link", ""), description=req.str("description", ""),
        tags=dict(req.key_values("tags")))
    return {"model_version": version_json(_detailed(version))}


@rpc("GET", "model-versions/get")
def get_version(ctx: Context, req: MlflowRequest):
    return {"model_version": version_json(_detailed(_version(ctx, req)))}


@rpc("PATCH", "model-versions/update", WRITE)
def update_version(ctx: Context, req: MlflowRequest):
    version = services.model_version_update(version=_version(ctx, req), actor=ctx.actor(),
                                            description=req.str("description", ""))
    return {"model_version": version_json(_detailed(version))}


@rpc("DELETE", "model-versions/delete", WRITE)
def delete_version(ctx: Context, req: MlflowRequest):
    services.model_version_delete(version=_version(ctx, req), actor=ctx.actor())
    return {}


@rpc("POST", "model-versions/transition-stage", WRITE)
def transition_stage(ctx: Context, req: MlflowRequest):
    version = services.model_version_transition_stage(
        version=_version(ctx, req), stage=req.str("stage"), actor=ctx.actor(),
        archive_existing_versions=req.bool("archive_existing_versions", False))
    return {"model_version": version_json(_detailed(version))}


@rpc("POST", "model-versions/set-tag", WRITE)
def set_version_tag(ctx: Context, req: MlflowRequest):
    services.model_version_tag(version=_version(ctx, req), key=req.str("key"),
                               value=req.str("value", ""), actor=ctx.actor())
    return {}


@rpc("DELETE", "model-versions/delete-tag", WRITE)
def delete_version_tag(ctx: Context, req: MlflowRequest):
    services.model_version_tag(version=_version(ctx, req), key=req.str("key"), value=None,
                               actor=ctx.actor())
    return {}


def download_uri(version: ModelVersion) -> str:
    """A READY version downloads from its immutable package; others (as in MLflow) from the
    source they were registered from."""
    if version.package_path:
        return f"mlflow-artifacts:/{REGISTRY_MOUNT}/{version.uuid}"
    return version.source


@rpc("GET", "model-versions/get-download-uri")
def get_download_uri(ctx: Context, req: MlflowRequest):
    return {"artifact_uri": download_uri(_version(ctx, req))}


VERSION_FIELDS = {"name": "registered_model__name", "run_id": "run__run_uuid",
                  "source_path": "source", "version_number": "version"}


@rpc("GET", "model-versions/search")
def search_versions(ctx: Context, req: MlflowRequest):
    versions = selectors.versions_live(ctx.org)
    for clause in _parsed(SearchModelVersionUtils, req.str("filter", "")):
        kind, key, comparator, value = (clause["type"], clause["key"],
                                        clause["comparator"].upper(), clause["value"])
        if kind == "attribute" and key == "version_number":
            versions = versions.filter(search._compare("version", comparator, int(value)))
        elif kind == "attribute" and key in VERSION_FIELDS:
            versions = versions.filter(_string_term(VERSION_FIELDS[key], comparator, value))
        elif kind == "tag":
            versions = versions.filter(_tag_term(ModelVersionTag, "model_version", key,
                                                        comparator, value))
        else:
            raise MlflowError(f"Invalid filter '{req.str('filter')}': unsupported key '{key}'.")
    ordering = _order(SearchModelVersionUtils.parse_order_by_for_search_model_versions,
                      req.list("order_by", []), ["-last_updated_timestamp", "registered_model__name",
                                                 "-version"],
                      {"name": "registered_model__name", "version_number": "version",
                       "creation_timestamp": "creation_timestamp",
                       "last_updated_timestamp": "last_updated_timestamp"})
    page, token = search.paginate(selectors.with_details(versions).order_by(*ordering),
                                  page_token=req.str("page_token", ""),
                                  max_results=req.int("max_results", 10_000),
                                  most=VERSIONS_MAX_RESULTS)
    return serialize.page("model_versions", [version_json(v) for v in page], token)
