"""Boosted decision trees (XGBoost) on the high-level jet features of
:mod:`hepchain.reco.jettag.features`, early-stopped on the validation jets."""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb


def fit_bdt(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
            settings: dict[str, Any], seed: int) -> xgb.XGBClassifier:
    """XGBoost classifier with ``settings`` (``n_estimators``, ``max_depth``,
    ``learning_rate``, ``early_stopping_rounds``); ``predict_proba`` gives class scores."""
    model = xgb.XGBClassifier(n_estimators=int(settings["n_estimators"]),
                              max_depth=int(settings["max_depth"]),
                              learning_rate=float(settings["learning_rate"]),
                              early_stopping_rounds=int(settings["early_stopping_rounds"]),
                              n_jobs=1, random_state=seed, tree_method="hist")
    model.fit(x_train, y_train, eval_set=[(x_val, y_val)], verbose=False)
    return model
