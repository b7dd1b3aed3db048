#!/usr/bin/env python3
"""Converts the RFC 7208 test suite (YAML, several documents) into
rfc7208-tests.json, which SPFSuiteTests.swift reads (the package has no YAML
parser). Run once when the suite changes:

    python3 convert.py /path/to/rfc7208-tests.yml > rfc7208-tests.json

Needs PyYAML. Keeps the data as the suite gives it; the Swift loader applies
the suite's conventions (SPF-typed records also served as TXT, TIMEOUT, NONE,
CNAME). Text is kept as octets: each character of a TXT string stands for
one octet (code point = octet value), as the YAML's \\xNN escapes mean.
"""
import json
import sys

import yaml


def octets(text):
    assert all(ord(c) < 256 for c in text), text
    return text


def record(entry):
    if entry == "TIMEOUT":
        return {"type": "TIMEOUT"}
    (kind, value), = entry.items()
    if kind in ("SPF", "TXT"):
        if value == "NONE":
            return {"type": kind, "none": True}
        strings = value if isinstance(value, list) else [value]
        return {"type": kind, "strings": [octets(s) for s in strings]}
    if kind == "MX":
        return {"type": "MX", "preference": value[0], "exchange": value[1]}
    assert kind in ("A", "AAAA", "PTR", "CNAME"), kind
    return {"type": kind, "value": value}


def main(path):
    with open(path, encoding="latin-1") as f:
        text = f.read()
    scenarios = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        tests = []
        for name, t in doc["tests"].items():
            result = t["result"]
            tests.append({
                "name": name,
                "spec": str(t.get("spec", "")),
                "helo": t["helo"],
                "host": t["host"],
                "mailfrom": t["mailfrom"],
                "results": result if isinstance(result, list) else [result],
                "explanation": t.get("explanation"),
            })
        zones = {name: [record(e) for e in entries] for name, entries in doc["zonedata"].items()}
        scenarios.append({"description": doc["description"], "tests": tests, "zonedata": zones})
    json.dump({"source": "rfc7208-tests.yml (openspf test suite, release 2014.04)",
               "scenarios": scenarios}, sys.stdout, indent=1, ensure_ascii=True, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
