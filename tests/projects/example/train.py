"""Example project: trains a small classifier and logs it into the run the server made."""

import argparse
import sys

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, required=True)
parser.add_argument("--rows", type=int, required=True)
args = parser.parse_args()

rng = np.random.default_rng(0)
x = rng.normal(size=(args.rows, 3))
y = (x[:, 0] + x[:, 1] > 0).astype(int)
with mlflow.start_run() as run:  # MLFLOW_RUN_ID names the run
    model = LogisticRegression(C=1 / args.alpha).fit(x, y)
    mlflow.log_params({"alpha": args.alpha, "rows": args.rows})
    mlflow.log_metric("accuracy", float(model.score(x, y)))
    mlflow.log_dict({"accuracy": float(model.score(x, y))}, "summary/metrics.json")
    mlflow.sklearn.log_model(model, name="model", input_example=x[:3])
    print(f"trained in run {run.info.run_id} with {sys.prefix}", flush=True)
