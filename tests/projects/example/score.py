"""Example project, a step that scores with a registered model handed in as a directory."""

import sys

import mlflow.pyfunc
from mlflow.models import Model

path = sys.argv[1]
example = Model.load(path).load_input_example(path)
print(f"scored {list(mlflow.pyfunc.load_model(path).predict(example))}", flush=True)
