"""The deployment files: Kubernetes manifests, docker-compose.yml and the Dockerfile.

No Docker daemon or cluster runs here, so the manifests are checked against the official
Kubernetes JSON schemas (kubernetes-validate bundles them), the compose file against the
Compose Specification schema (check-jsonschema bundles it), and the facts that tie the
files together are asserted one by one. The Dockerfile is mirrored rather than parsed: the
last test builds the wheel from what the Dockerfile copies, installs it with the
Dockerfile's extras into a fresh venv and serves from outside the source tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from bot.routes import parse_routes
from bot.settings import PREFIX, Settings
from tests.process import free_port

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "manifests" / "kubernetes"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
MANIFESTS = ["deployment.yaml", "service.yaml", "secret.example.yaml", "migrate-job.yaml"]
# The oldest Kubernetes the manifests promise to work on, and the newest schemas we have.
K8S_VERSIONS = ["1.29", kubernetes_validate.latest_version()]


def _docs(name: str) -> list[dict[str, Any]]:
    text = (K8S / name).read_text(encoding="utf-8")
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _one(kind: str) -> dict[str, Any]:
    found = [d for p in sorted(K8S.glob("*.yaml")) for d in _docs(p.name) if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in {K8S}, found {len(found)}"
    return found[0]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "signoff's pods run one container"
    return dict(containers[0])


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``, against ``env``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        assert not op.endswith("?"), f"compose would stop: {arg}"
        return arg if op.endswith("-") else ""

    return re.sub(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}", one, value)


def _seconds(duration: str) -> float:
    """A compose duration (``30s``, ``1m30s``) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?", duration)
    assert parts and any(parts.groups()), f"not a compose duration: {duration!r}"
    h, m, s = (int(g or 0) for g in parts.groups())
    return h * 3600 + m * 60 + s


def _shutdown_grace(env: dict[str, str]) -> float:
    """SIGNOFF_SHUTDOWN_GRACE_SECONDS as set in ``env``, else signoff's default."""
    name = f"{PREFIX}SHUTDOWN_GRACE_SECONDS"
    if name in env:
        return float(env[name])
    field = Settings.model_fields.get("shutdown_grace_seconds")
    assert field is not None, f"{name} is not a signoff setting"
    return float(field.default)


def _dockerfile_extras() -> list[str]:
    found = re.findall(r"^ARG EXTRAS=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert len(found) == 1, "the Dockerfile declares its extras once, as ARG EXTRAS=..."
    return str(found[0]).split(",")


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


# --- Kubernetes ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*MANIFESTS, "configmap.yaml"])
def test_kubernetes_manifests_validate_against_the_official_schemas(name: str) -> None:
    docs = _docs(name)
    assert docs, f"{name} holds no document"
    for doc in docs:
        for version in K8S_VERSIONS:
            # strict: an unknown (e.g. misspelt) field is an error, not silently dropped
            kubernetes_validate.validate(doc, version, strict=True)


def test_probes_point_at_healthz_and_readyz_on_the_container_port() -> None:
    container = _container(_one("Deployment"))
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    env = _env(container)
    assert env["SIGNOFF_HOST"] == "0.0.0.0", "in a pod signoff must listen on every interface"
    listen = int(env.get("SIGNOFF_PORT", Settings.model_fields["port"].default))
    assert list(ports.values()) == [listen]

    def target(probe: str) -> tuple[str, int]:
        get = container[probe]["httpGet"]
        port = get["port"]
        return get["path"], ports[port] if isinstance(port, str) else port

    assert target("livenessProbe") == ("/healthz", listen)
    assert target("readinessProbe") == ("/readyz", listen)
    if "startupProbe" in container:
        assert target("startupProbe") == ("/healthz", listen)


def test_service_selects_the_deployment_pods_on_the_container_port() -> None:
    deployment, service = _one("Deployment"), _one("Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector and selector.items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    container_ports = {p.get("name"): p["containerPort"] for p in _container(deployment)["ports"]}
    for port in service["spec"]["ports"]:
        target = port["targetPort"]
        assert target in (container_ports if isinstance(target, str) else container_ports.values())


def _secret_refs(node: Any) -> Iterator[tuple[str, str | None]]:
    """Every (secret name, key or None) a document refers to, wherever it sits."""
    if isinstance(node, dict):
        if "secretKeyRef" in node:
            yield node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]
        if "secretRef" in node:
            yield node["secretRef"]["name"], None
        if isinstance(node.get("secret"), dict):
            yield node["secret"]["secretName"], None
        for value in node.values():
            yield from _secret_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _secret_refs(value)


def test_every_secret_reference_names_the_example_secret() -> None:
    secret = _one("Secret")
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    assert "SIGNOFF_DATABASE_URL" in keys
    refs = [r for w in (_one("Deployment"), _one("Job")) for r in _secret_refs(w)]
    assert refs, "the workloads read no secret"
    for name, key in refs:
        assert name == secret["metadata"]["name"]
        assert key is None or key in keys, f"secret key {key} is not in secret.example.yaml"
    for workload in (_one("Deployment"), _one("Job")):
        assert any(r[0] == secret["metadata"]["name"] for r in _secret_refs(workload))


def _command(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def test_the_job_migrates_with_the_image_the_deployment_serves() -> None:
    server, job = _container(_one("Deployment")), _container(_one("Job"))
    assert _command(job) == ["signoff", "db", "upgrade"]
    assert _command(server) in ([], ["signoff", "serve"])
    assert _one("Job")["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    # one image everywhere, tagged with the version the manifests ship with
    images = {server["image"], job["image"], _compose()["services"]["signoff"]["image"]}
    assert images == {f"signoff:{_project()['version']}"}


def test_the_pod_outlives_signoffs_shutdown_grace() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container(_one("Deployment"))
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    pause = 0.0
    if "exec" in pre_stop:
        assert pre_stop["exec"]["command"][0] == "sleep"
        pause = float(pre_stop["exec"]["command"][1])
    grace = _shutdown_grace(_env(container))
    assert pod["terminationGracePeriodSeconds"] > pause + grace


def test_every_setting_the_files_name_is_a_signoff_setting() -> None:
    # signoff refuses to start with an unknown SIGNOFF_* variable: a typo here is an outage
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    named = set(_env(_container(_one("Deployment"))))
    named |= set(_env(_container(_one("Job"))))
    secret = _one("Secret")
    named |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    named |= set(_compose()["services"]["signoff"].get("environment", {}))
    named |= set(re.findall(r"\b(SIGNOFF_[A-Z_]+)=", DOCKERFILE.read_text(encoding="utf-8")))
    unknown = sorted(n for n in named if n.startswith(PREFIX) and n not in known)
    assert not unknown, f"not signoff settings: {unknown}"


def test_the_route_configmap_is_a_valid_route_file_at_signoff_config() -> None:
    configmap = _one("ConfigMap")
    container = _container(_one("Deployment"))
    config = Path(_env(container)["SIGNOFF_CONFIG"])
    pod = _one("Deployment")["spec"]["template"]["spec"]
    volume = next(v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name"))
    assert (
        next(v for v in pod["volumes"] if v["name"] == volume)["configMap"]["name"]
        == (configmap["metadata"]["name"])
    )
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume)
    assert Path(mount["mountPath"]) == config.parent
    table = parse_routes(yaml.safe_load(configmap["data"][config.name]), source="configmap")
    assert table.names()


# --- docker compose --------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification() -> None:
    # check-jsonschema's vendored copy of the Compose Specification's JSON schema
    tool = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_signoff_against_its_healthy_postgres() -> None:
    services = _compose()["services"]
    db = next(
        name for name, s in services.items() if str(s.get("image", "")).startswith("postgres")
    )
    postgres, signoff = services[db], services["signoff"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert signoff["depends_on"][db]["condition"] == "service_healthy"
    env = signoff["environment"]
    assert env["SIGNOFF_HOST"] == "0.0.0.0"
    url = httpx.URL(_interpolate(env["SIGNOFF_DATABASE_URL"], {"POSTGRES_PASSWORD": "pw"}))
    assert url.scheme == "postgresql+asyncpg"
    assert (url.host, url.port or 5432) == (db, 5432)
    assert url.username == postgres["environment"]["POSTGRES_USER"]
    assert url.path.lstrip("/") == postgres["environment"]["POSTGRES_DB"]
    assert url.password == "pw"  # the password postgres is given
    assert "POSTGRES_PASSWORD" in postgres["environment"]["POSTGRES_PASSWORD"]
    assert _seconds(signoff["stop_grace_period"]) > _shutdown_grace(env)
    assert signoff["build"] in (".", {"context": "."})


# --- the Dockerfile, mirrored ----------------------------------------------------------


def test_dockerfile_serves_as_a_non_root_user_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^ENV .*SIGNOFF_HOST=0\.0\.0\.0", text, re.M | re.S)
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*/healthz", text, re.M | re.S)
    assert re.findall(r"^CMD (.+)$", text, re.M)[-1] == '["signoff", "serve"]'
    assert "apt-get install -y --no-install-recommends git" in text  # the git target
    extras = _dockerfile_extras()
    # every runtime extra; dev and bench are for working on signoff, not running it
    assert set(extras) == set(_project()["optional-dependencies"]) - {"dev", "bench"}


def _build_context(dest: Path) -> Path:
    """Copy what the Dockerfile's build stage COPYs from the context into ``dest``."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    build = text.split(" AS build", 1)[1].split("\nFROM ", 1)[0]
    copies = [line.split()[1:] for line in build.splitlines() if line.startswith("COPY ")]
    assert copies, "the build stage copies nothing"
    dest.mkdir()
    for *sources, _ in copies:
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, dest / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, dest / source)
    return dest


def test_dockerignore_lets_in_what_the_build_copies(tmp_path: Path) -> None:
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {p.name for p in _build_context(tmp_path / "context").iterdir()}
    assert "*" in ignore and copied <= allowed, sorted(copied - allowed)


def _clean_env(venv: Path, **settings: str) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE goes too: the install skips byte-compiling, so the first
    # start caches what it imports and later commands start fast.
    drop = ("SIGNOFF_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(drop) and "proxy" not in k.lower()
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **settings}


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _wait_ok(base: str, path: str, *, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"signoff serve exited:\n{log.read_text()}"
        try:
            if httpx.get(f"{base}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a subprocess for readiness, not a timer under test
    pytest.fail(f"{path} did not answer 200 within 60 s:\n{log.read_text()}")


def test_the_wheel_installed_like_the_image_serves_outside_the_source_tree(
    tmp_path: Path,
) -> None:
    # The Dockerfile's build stage: `pip wheel --no-deps` of exactly what it copies.
    context = _build_context(tmp_path / "context")
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(context)], cwd=tmp_path)
    (wheel,) = wheels.glob("signoff-*.whl")
    # every file of the packages (templates, static files, migrations...) is in the wheel
    packaged = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        f.relative_to(context).as_posix()
        for package in ("bot", "adapters", "storage")
        for f in (context / package).rglob("*")
        if f.is_file() and "__pycache__" not in f.parts
    }
    assert sources <= packaged, f"missing from the wheel: {sorted(sources - packaged)}"

    # Its runtime stage: a fresh venv with the wheel and the Dockerfile's extras. (pip runs
    # from the test's venv into the new one and skips byte-compiling, to save ~30 s.)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = str(venv / "bin" / "python")
    extras = ",".join(_dockerfile_extras())
    _run([*pip, "--python", python, "install", "--no-compile", f"{wheel}[{extras}]"], cwd=tmp_path)

    # Run it where nothing from the source tree can be imported.
    home = tmp_path / "srv"
    home.mkdir()
    port = free_port()
    env = _clean_env(
        venv,
        SIGNOFF_HOST="127.0.0.1",
        SIGNOFF_PORT=str(port),
        SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'signoff.db'}",
    )
    where = _run(
        [
            python,
            "-c",
            "import adapters, bot, storage, asyncpg, slack_bolt, discord, openai;"
            "print(bot.__file__, adapters.__file__, storage.__file__)",
        ],
        cwd=home,
        env=env,
    )
    assert all(Path(p).is_relative_to(venv) for p in where.split()), where
    signoff = str(venv / "bin" / "signoff")

    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [signoff, "serve"], cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ok(base, "/healthz", proc=proc, log=log)
        _wait_ok(base, "/readyz", proc=proc, log=log)  # serve migrated the new database

        key = json.loads(_run([signoff, "keys", "create", "ci", "--json"], cwd=home, env=env))
        item = {
            "route": "default",
            "kind": "message",
            "title": "Deploy check from the wheel",
            "content": {"text": "installed outside the source tree"},
        }
        auth = {"Authorization": f"Bearer {key['api_key']}"}
        created = httpx.post(f"{base}/v1/items", json=item, headers=auth, timeout=10)
        assert created.status_code == 201, created.text
        got = httpx.get(f"{base}/v1/items/{created.json()['id']}", headers=auth, timeout=10)
        assert got.json()["state"] == "pending"

        # The web console's templates and static files came with the wheel.
        signin = httpx.get(f"{base}/signin", timeout=10)
        assert signin.status_code == 200 and "Sign in to signoff" in signin.text, signin.text
        assert httpx.get(f"{base}/static/app.css", timeout=10).status_code == 200

        # SIGTERM, as Kubernetes and docker send it: out within the grace they allow.
        grace = _shutdown_grace(_env(_container(_one("Deployment"))))
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {grace} s after SIGTERM:\n{log.read_text()}")
        # uvicorn re-raises the signal once it has shut down, so the exit is by SIGTERM
        assert code in (0, -signal.SIGTERM), log.read_text()
        assert "Application shutdown complete." in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # The migration Job's command, from the installed wheel.
    assert "up to date" in _run([signoff, "db", "upgrade"], cwd=home, env=env)
