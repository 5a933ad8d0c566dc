#!/usr/bin/python3
"""validate-json.py SCHEMA FILE...: checks each JSON file against a JSON
Schema (draft 2020-12) with python3-jsonschema. Prints each error with its
path; exit 0 when all are valid, 1 when one is not, 2 when one cannot be read."""
import json
import sys

import jsonschema


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(argv[1]) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        print(f"{argv[1]}: {e}", file=sys.stderr)
        return 2
    validator = jsonschema.Draft202012Validator(schema)
    bad = 0
    for path in argv[2:]:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        for err in validator.iter_errors(doc):
            print(f"{path}: {err.json_path}: {err.message}")
            bad = 1
    return bad


sys.exit(main(sys.argv))
