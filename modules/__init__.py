"""The four DTRB stages, one module each: transformation, feature_extraction,
sequence_modeling and prediction. ``model.Model`` wires them together."""
