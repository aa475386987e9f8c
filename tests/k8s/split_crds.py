#!/usr/bin/env python3
"""Splits rendered manifests for validation: built-in kinds for kubernetes-validate, custom
resources checked here against our own schemas.

kubernetes-validate ships the Kubernetes API schemas only; for a custom resource it prints
"Couldn't find schema" and passes it. So every custom resource the tree uses has a JSON
schema in tests/k8s/schemas/<group>_<version>_<Kind>.json (today: K3s's HelmChart and, in
the Traefik variant k8s/traefik/, K3s's HelmChartConfig and Traefik's Middleware) and is
validated here instead, values included (a HelmChart's or HelmChartConfig's valuesContent
must parse as a YAML mapping). scripts/check-k8s
treats any "Couldn't find schema" from kubernetes-validate as a failure, so a new custom
resource without a schema here cannot slip through.

Usage: split_crds.py RENDERED.yaml BUILTIN_OUT.yaml
Exit 1 if a custom resource does not validate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import yaml

SCHEMAS = Path(__file__).parent / "schemas"


def schema_for(obj: dict) -> Path | None:
    group_version = obj.get("apiVersion", "").replace("/", "_")
    path = SCHEMAS / f"{group_version}_{obj.get('kind')}.json"
    return path if path.is_file() else None


def extra_checks(obj: dict) -> list[str]:
    if obj["kind"] in ("HelmChart", "HelmChartConfig"):
        try:
            values = yaml.safe_load(obj["spec"].get("valuesContent", ""))
        except yaml.YAMLError as e:
            return [f"valuesContent is not YAML: {e}"]
        if not isinstance(values, dict):
            return ["valuesContent is not a YAML mapping"]
    return []


def main() -> int:
    rendered, builtin_out = sys.argv[1], sys.argv[2]
    docs = [d for d in yaml.safe_load_all(Path(rendered).read_text()) if d]
    builtin, failures, checked = [], 0, 0
    for obj in docs:
        schema = schema_for(obj)
        if schema is None:
            builtin.append(obj)
            continue
        checked += 1
        label = f"{obj['kind']} {obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}"
        validator = jsonschema.Draft202012Validator(json.loads(schema.read_text()))
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                    for e in validator.iter_errors(obj)] + extra_checks(obj)
        if problems:
            failures += 1
            print(f"ERROR {label} against {schema.name}:")
            for p in problems:
                print(f"    {p}")
        else:
            print(f"INFO {label} passed against {schema.relative_to(SCHEMAS.parents[2])}")
    Path(builtin_out).write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    print(f"custom resources: {checked} checked against our schemas, {failures} failed; "
          f"{len(builtin)} built-in objects left for kubernetes-validate")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
