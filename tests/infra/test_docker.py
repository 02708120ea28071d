"""The Dockerfile, checked statically (Docker does not run on the development machines):
what it copies exists, what it runs exists, and it runs as a non-root user."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex

from .cfn import ROOT, resources


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _one(keyword: str) -> str:
    (value,) = [rest for k, rest in _instructions() if k == keyword]
    return value


def _ignored(path: str) -> bool:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) for p in patterns
    )


def test_base_image_is_python_311_slim() -> None:
    args = [rest for k, rest in _instructions() if k == "ARG"]
    assert "BASE_IMAGE=python:3.11-slim" in args
    assert _one("FROM") == "${BASE_IMAGE}"


def test_copy_sources_exist_and_are_not_ignored() -> None:
    copies = [shlex.split(rest) for k, rest in _instructions() if k == "COPY"]
    assert copies
    for *sources, _ in copies:
        for source in sources:
            assert not source.startswith("--"), "no COPY --from/--chown needed"
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"
    copied = {s for *sources, _ in copies for s in sources}
    assert {"pyproject.toml", "messenger_widgets", "notebooks", "voila.json"} <= copied


def test_cmd_serves_an_existing_notebook_on_8866() -> None:
    cmd = json.loads(_one("CMD"))
    assert cmd == [
        "voila",
        "notebooks/messenger.ipynb",
        "--no-browser",
        "--Voila.ip=0.0.0.0",
        "--port=8866",
        "--show_tracebacks=False",
    ]
    notebook = ROOT / cmd[1]
    assert notebook.is_file(), f"{cmd[1]} does not exist"
    assert json.loads(notebook.read_text())["cells"], "the notebook has no cells"
    assert _one("EXPOSE") == "8866"
    assert _one("WORKDIR") == "/app"  # voila.json is read from the working directory


def test_runs_as_a_non_root_user() -> None:
    user = _one("USER")
    assert user not in ("root", "0", "")
    runs = " ".join(rest for k, rest in _instructions() if k == "RUN")
    assert re.search(rf"useradd\b.*\b{re.escape(user)}\b", runs)
    keywords = [k for k, _ in _instructions()]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


def test_healthcheck_uses_the_load_balancer_path() -> None:
    (group,) = resources("web", "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["HealthCheckPath"] in _one("HEALTHCHECK")


def test_no_secret_or_local_state_enters_the_image() -> None:
    for path in (".env", "notebooks/.env", ".venv", ".git", ".messenger", "x.sqlite3", "tests"):
        assert _ignored(path), path
    assert not any(k == "ENV" and "SECRET" in rest for k, rest in _instructions())
