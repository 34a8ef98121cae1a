"""Energy calibration of the Si-W ECAL: layer-sum baseline and NN regressors (MLP, CNN)."""
