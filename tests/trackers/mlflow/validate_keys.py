"""Checks keys (a JSON list in argv[1]) with mlflow's own validators; prints ALL VALID or the errors."""
import json
import sys

from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    _validate_metric_name,
    _validate_param_name,
    _validate_tag_name,
)

errors = []
for key in json.loads(sys.argv[1]):
    try:
        _validate_metric_name(key)
        _validate_param_name(key)
        _validate_tag_name(key)
        if len(key) > MAX_ENTITY_KEY_LENGTH:
            raise ValueError(f"longer than {MAX_ENTITY_KEY_LENGTH}")
    except Exception as e:  # noqa: BLE001
        errors.append(f"{key!r}: {e}")
print("\n".join(errors) if errors else "ALL VALID")
