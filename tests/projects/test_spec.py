"""MLproject parsing: MLflow's semantics, with errors that name the field."""

import shlex

import pytest
from mlflow.projects import _project_spec as mlflow_spec

from config.exceptions import ApplicationError
from projects.spec import load_project

MLPROJECT = """
name: credit-model
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      max_iter: {type: int, default: 100}
      data: path
      label: {type: string, default: "it's default"}
    command: "python train.py --alpha {alpha} --max-iter {max_iter} --data {data} --label {label}"
  validate:
    parameters:
      model_uri: uri
    command: "python validate.py {model_uri}"
"""


@pytest.fixture
def project_dir(tmp_path):
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\ndependencies: [scikit-learn]\n")
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "job.sh").write_text("echo hi\n")
    return tmp_path


@pytest.mark.parametrize("given", [
    {"data": "/data/train.csv"},
    {"data": "/data/my file.csv", "alpha": "0.1", "label": "a; rm -rf /"},
    {"data": "x", "extra": "y z", "--evil": "$(id)"},
])
def test_commands_are_built_exactly_as_mlflow_builds_them(project_dir, given):
    ours = load_project(project_dir)
    theirs = mlflow_spec.load_project(str(project_dir))
    assert ours.name == theirs.name == "credit-model"
    assert ours.env_type == "python_env" and ours.env_file == "python_env.yaml"
    expected = theirs.get_entry_point("main").compute_command(given, storage_dir=None)
    assert ours.entry_point("main").command_for(given) == expected
    # and what the shell sees is the values themselves, one word each
    words = shlex.split(ours.entry_point("main").command_for(given))
    assert words[words.index("--data") + 1] == given["data"]


def test_scripts_run_by_convention_without_an_mlproject(tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "job.sh").write_text("echo 1\n")
    project = load_project(tmp_path)
    assert project.env_type == "local" and project.entry_points == {}
    assert project.entry_point("train.py", tmp_path).command_for({"n": "1"}) == \
        "python train.py --n 1"
    assert project.entry_point("job.sh", tmp_path).command == "bash job.sh"
    for missing in ("nope.py", "../outside.py", "data.csv"):
        with pytest.raises(ApplicationError) as refused:
            project.entry_point(missing, tmp_path)
        assert "entry_point" in refused.value.fields


@pytest.mark.parametrize(("given", "field", "phrase"), [
    ({}, "parameters.data", "'data'"),
    ({"data": "x", "alpha": "high"}, "parameters.alpha", "float"),
    ({"data": "x", "alpha": "nan"}, "parameters.alpha", "finite"),
    ({"data": "x", "max_iter": "1.5"}, "parameters.max_iter", "int"),
])
def test_bad_parameter_values_name_the_parameter(project_dir, given, field, phrase):
    with pytest.raises(ApplicationError) as refused:
        load_project(project_dir).entry_point("main").command_for(given)
    assert field in refused.value.fields and phrase in refused.value.message


def test_a_uri_parameter_needs_a_scheme(project_dir):
    validate = load_project(project_dir).entry_point("validate")
    assert validate.command_for({"model_uri": "models:/credit/1"}) == \
        "python validate.py models:/credit/1"
    with pytest.raises(ApplicationError, match="URI"):
        validate.command_for({"model_uri": "credit"})


@pytest.mark.parametrize(("text", "field"), [
    ("name: [1]\n", "name"),
    ("entry_points: [main]\n", "entry_points"),
    ("entry_points:\n  main: {parameters: {}}\n", "entry_points.main.command"),
    ("entry_points:\n  main: {command: 'python {x}'}\n", "entry_points.main.command"),
    ("entry_points:\n  main: {command: 'python {', parameters: {}}\n", "entry_points.main.command"),
    ("entry_points:\n  main:\n    command: go\n    parameters: {a: {type: bool}}\n",
     "entry_points.main.parameters.a.type"),
    ("entry_points:\n  main:\n    command: go\n    parameters: {a: {type: int, default: x}}\n",
     "entry_points.main.parameters.a.default"),
    ("entry_points:\n  main:\n    command: go\n    parameters: {a: {typo: int}}\n",
     "entry_points.main.parameters.a"),
    ("python_env: missing.yaml\n", "python_env"),
    ("python_env: ../../etc/passwd\n", "python_env"),
    ("python_env: python_env.yaml\nconda_env: conda.yaml\n", "conda_env"),
    ("docker_env: {}\n", "docker_env.image"),
    ("entry_points: {main: {command: go}\n", "MLproject"),
])
def test_invalid_descriptors_name_the_field(tmp_path, text, field):
    (tmp_path / "MLproject").write_text(text)
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\n")
    (tmp_path / "conda.yaml").write_text("name: x\n")
    with pytest.raises(ApplicationError) as refused:
        load_project(tmp_path)
    assert field in refused.value.fields, (refused.value.message, refused.value.fields)


def test_environments_follow_mlflows_defaults(tmp_path):
    (tmp_path / "MLproject").write_text("name: p\nentry_points: {main: {command: go}}\n")
    assert load_project(tmp_path).env_type == "local"
    (tmp_path / "conda.yaml").write_text("name: x\n")
    assert (load_project(tmp_path).env_type, load_project(tmp_path).env_file) == \
        ("conda_env", "conda.yaml")
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\n")
    assert load_project(tmp_path).env_type == "python_env"
    (tmp_path / "MLproject").write_text("name: p\ndocker_env: {image: 'python:3.11'}\n")
    project = load_project(tmp_path)
    assert (project.env_type, project.docker_image) == ("docker_env", "python:3.11")
