"""Flavour tagging of ttbar jets (study ``btag``): input table and labels, IP3D-like and
secondary-vertex baselines, DL1-like MLP/xgboost, Deep Sets and the GN1-style network with
auxiliary track-origin and same-vertex tasks, ONNX export. See ``docs/btag.md``."""
