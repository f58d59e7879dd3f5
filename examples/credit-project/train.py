"""Trains a credit-risk logistic regression on synthetic applicants (the demo's four features)
and logs it into the run the server made for this project run."""

import argparse
import sys

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, required=True, help="regularization: C = 1/alpha")
parser.add_argument("--rows", type=int, required=True)
args = parser.parse_args()

rng = np.random.default_rng(7)
x = pd.DataFrame({
    "income": rng.normal(50.0, 15.0, args.rows).round(1),
    "debt": rng.normal(20.0, 8.0, args.rows).clip(0).round(1),
    "age": rng.integers(18, 80, args.rows).astype(float),
    "late_payments": rng.poisson(1.0, args.rows).astype(float),
})
logit = 0.08 * x["debt"] - 0.05 * x["income"] + 0.6 * x["late_payments"] + 0.5
y = (rng.random(args.rows) < 1 / (1 + np.exp(-logit))).astype(int)
train, valid = slice(0, args.rows * 3 // 4), slice(args.rows * 3 // 4, None)

with mlflow.start_run() as run:  # MLFLOW_RUN_ID names the run the server made
    model = LogisticRegression(C=1 / args.alpha, max_iter=1000).fit(x[train], y[train])
    scores = model.predict_proba(x[valid])[:, 1]
    metrics = {"auc": float(roc_auc_score(y[valid], scores)),
               "accuracy": float(accuracy_score(y[valid], scores >= 0.5))}
    mlflow.log_params({"alpha": args.alpha, "rows": args.rows})
    mlflow.log_metrics(metrics)
    mlflow.log_dict(metrics, "summary/metrics.json")  # what the `report` entry point reads
    mlflow.sklearn.log_model(model, name="model", input_example=x.head(3))
    print(f"trained in run {run.info.run_id}: AUC {metrics['auc']:.3f}", flush=True)
    print(f"python: {sys.prefix}", flush=True)
