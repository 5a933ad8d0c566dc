#!/usr/bin/python3
"""ci-commands.py FILE...: reads CI files as YAML (python3-yaml) and prints,
one JSON array per line, the words of every twinstage command they run:
GitHub Actions steps' `run:` and GitLab jobs' `script:`, `before_script:`
and `after_script:`. Exit 2 when a file is not YAML or runs no twinstage."""
import json
import shlex
import sys

import yaml


def scripts(node):
    """Every shell script a CI file's tree holds, in order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                yield value
            elif key in ("script", "before_script", "after_script"):
                for line in value if isinstance(value, list) else [value]:
                    if isinstance(line, str):
                        yield line
            else:
                yield from scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from scripts(item)


def main(argv):
    for path in argv[1:]:
        try:
            with open(path) as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        found = 0
        for script in scripts(doc):
            for line in script.splitlines():
                words = shlex.split(line, comments=True)
                if words and words[0] == "twinstage":
                    print(json.dumps(words))
                    found += 1
        if not found:
            print(f"{path}: runs no twinstage command", file=sys.stderr)
            return 2
    return 0


sys.exit(main(sys.argv))
