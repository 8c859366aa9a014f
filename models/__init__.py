"""Model code: time split, LightGBM risk and urgency models, calibration, storage, champion gate."""
