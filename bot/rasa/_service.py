"""Rasa as a separate service: its own Python 3.10 environment, training, and the two processes.

Why a separate environment, cached outside the clone: Rasa 3.6 needs Python < 3.11 and pins
(TensorFlow 2.12, SQLAlchemy 1.4, pydantic 1) that cannot share Hamroh's environment, and it is big
(~2 GB), so it is built once per machine under ``~/.cache/hamroh/rasa-<key>``, the key being a hash
of ``nlu/rasa/requirements.txt`` and the Python version: a changed pin builds a new environment,
nothing else does. A build happens in a temporary directory renamed into place only when complete
(processes are started with ``<env>/bin/python -m ...``, which survives the rename), under a file
lock so two builds never race. Trained models are cached the same way, by the fingerprint of the
generated project files.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

import nlu.rasa
from bot.net import free_port
from nlu.rasa import RasaProject

__all__ = [
    "ACTIONS_DIR",
    "REQUIREMENTS",
    "RasaServers",
    "RasaUnavailable",
    "cache_root",
    "ensure_env",
    "env_dir",
    "find_python",
    "free_port",
    "run_servers",
    "train",
    "wait_forever",
]

PACKAGE_DIR = Path(nlu.rasa.__file__).resolve().parent
REQUIREMENTS = PACKAGE_DIR / "requirements.txt"
#: the action server is started here, so ``--actions actions`` imports ``nlu/rasa/actions``
ACTIONS_DIR = PACKAGE_DIR
_COMPLETE = ".hamroh-complete"
Log = Callable[[str], None]


class RasaUnavailable(RuntimeError):
    """Rasa cannot be set up or started here; the message says why and what to do."""


def _quiet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(key, None)  # Hamroh's environment must not leak into Rasa's
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
                "PYTHONWARNINGS": "ignore", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def cache_root() -> Path:
    if os.environ.get("HAMROH_CACHE_DIR"):
        return Path(os.environ["HAMROH_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hamroh"


def _version(python: Path | str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def find_python() -> Path | None:
    """A working Python 3.10 (Rasa 3.6 supports 3.8-3.10): ``$HAMROH_RASA_PYTHON``, ``python3.10``
    on PATH, or a pyenv install."""
    candidates: list[str] = []
    if os.environ.get("HAMROH_RASA_PYTHON"):
        candidates.append(os.environ["HAMROH_RASA_PYTHON"])
    for name in ("python3.10",):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv}/versions/3.10*/bin/python3.10"), reverse=True)
    for candidate in candidates:
        version = _version(candidate)
        if version is not None and (3, 8) <= version <= (3, 10):
            return Path(candidate)
    return None


def env_dir(python: Path) -> Path:
    version = _version(python)
    if version is None:
        raise RasaUnavailable(f"{python} does not run")
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + f"\npython{version[0]}.{version[1]}".encode()).hexdigest()
    return cache_root() / f"rasa-{key[:12]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_env(python: Path | None = None, *, log: Log = print, timeout: float = 1800) -> Path:
    """Rasa's environment, built if missing; returns its directory."""
    python = python or find_python()
    if python is None:
        raise RasaUnavailable("Python 3.10 not found (Rasa 3.6 needs Python < 3.11): install it "
                              "(e.g. pyenv install 3.10) or set HAMROH_RASA_PYTHON")
    target = env_dir(python)
    if (target / _COMPLETE).exists():
        return target
    with _locked(target.with_name(target.name + ".lock")):
        if (target / _COMPLETE).exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        log(f"building Rasa's environment with {python} in {target} (once per machine; a few minutes) ...")
        start = time.monotonic()
        try:
            subprocess.run([str(python), "-m", "venv", str(tmp)], check=True, timeout=300)
            pip = [str(tmp / "bin/python"), "-m", "pip", "--disable-pip-version-check", "-q"]
            proc = subprocess.run([*pip, "install", "-r", str(REQUIREMENTS)], timeout=timeout, env=_quiet_env(),
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
                raise subprocess.CalledProcessError(proc.returncode, "pip install", output=tail)
            subprocess.run([str(tmp / "bin/python"), "-c", "import rasa, rasa_sdk"], check=True, timeout=300,
                           env=_quiet_env())
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            detail = getattr(exc, "output", None) or ""
            raise RasaUnavailable(f"building Rasa's environment failed: {exc}\n{detail}".rstrip()) from exc
        (tmp / _COMPLETE).write_text(REQUIREMENTS.read_text())
        os.replace(tmp, target)
        log(f"Rasa's environment is ready ({time.monotonic() - start:.0f} s)")
    return target


def train(env: Path, project: RasaProject, *, log: Log = print, timeout: float = 1800,
          name: str = "hamroh") -> Path:
    """A trained model for ``project``: from the cache when its files are unchanged, else trained."""
    models = cache_root() / "rasa-models"
    model = models / f"{name}-{env.name}-{project.fingerprint}.tar.gz"
    if model.exists():
        return model
    with _locked(models / f".{model.name}.lock"):
        if model.exists():
            return model
        log(f"training the Rasa model ({project.examples} examples; a few minutes on two cores) ...")
        start = time.monotonic()
        out = Path(tempfile.mkdtemp(prefix="train-", dir=models))
        try:
            try:
                proc = subprocess.run(
                    [str(env / "bin/python"), "-m", "rasa", "train", "--config", "config.yml", "--domain",
                     "domain.yml", "--data", "data", "--out", str(out), "--fixed-model-name", "model", "--quiet"],
                    cwd=project.directory, env=_quiet_env(), timeout=timeout, capture_output=True, text=True)
            except subprocess.TimeoutExpired as exc:
                raise RasaUnavailable(f"rasa train did not finish within {timeout:.0f} s") from exc
            built = out / "model.tar.gz"
            if proc.returncode != 0 or not built.exists():
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
                raise RasaUnavailable(f"rasa train failed (exit {proc.returncode}):\n{tail}")
            os.replace(built, model)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        log(f"Rasa model trained in {time.monotonic() - start:.0f} s: {model}")
    return model


@dataclass(frozen=True)
class RasaServers:
    rasa_url: str
    actions_url: str
    logs: Path


def _stop(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_file: Path, timeout: float,
                ready: Callable[[httpx.Response], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            response = httpx.get(url, timeout=2)
            if ready(response):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:]) if log_file.exists() else ""
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout:.0f} s"
    raise RasaUnavailable(f"{url} {state}; last lines of {log_file}:\n{tail}")


@contextlib.contextmanager
def run_servers(env: Path, model: Path, project: RasaProject, *, hamroh_url: str, token: str,
                rasa_port: int | None = None, actions_port: int | None = None, logs: Path | None = None,
                timeout: float = 300, actions: bool = True) -> Iterator[RasaServers]:
    """Start the action server and Rasa (REST channel and HTTP API) on loopback; stop both on exit.

    Each process gets its own process group, so stopping it also stops anything it spawned.
    """
    from nlu.rasa import credentials_yaml, endpoints_yaml

    rasa_port = rasa_port or free_port()
    actions_port = actions_port or free_port()
    logs = logs or Path(tempfile.mkdtemp(prefix="hamroh-rasa-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="hamroh-rasa-run-"))
    endpoints = run_dir / "endpoints.yml"
    endpoints.write_text(endpoints_yaml(f"http://127.0.0.1:{actions_port}/webhook") if actions else "{}\n")
    credentials = run_dir / "credentials.yml"
    credentials.write_text(credentials_yaml())
    python = str(env / "bin/python")
    procs: list[subprocess.Popen[bytes]] = []
    handles = []
    try:
        if actions:
            out = open(logs / "actions.log", "wb")  # noqa: SIM115 - closed in finally
            handles.append(out)
            procs.append(subprocess.Popen(
                [python, "-m", "rasa_sdk", "--actions", "actions", "--port", str(actions_port)],
                cwd=ACTIONS_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=_quiet_env({"SANIC_HOST": "127.0.0.1", "HAMROH_URL": hamroh_url, "HAMROH_ACTIONS_TOKEN": token})))
        out = open(logs / "rasa.log", "wb")  # noqa: SIM115 - closed in finally
        handles.append(out)
        rasa = subprocess.Popen(
            [python, "-m", "rasa", "run", "--model", str(model), "--endpoints", str(endpoints),
             "--credentials", str(credentials), "--interface", "127.0.0.1", "--port", str(rasa_port),
             "--enable-api"],
            cwd=run_dir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=_quiet_env())
        procs.append(rasa)
        if actions:
            _wait_ready(f"http://127.0.0.1:{actions_port}/health", procs[0], logs / "actions.log", timeout,
                        lambda r: r.status_code == 200)
        _wait_ready(f"http://127.0.0.1:{rasa_port}/status", rasa, logs / "rasa.log", timeout,
                    lambda r: r.status_code == 200 and bool(r.json().get("model_id")))
        yield RasaServers(f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{actions_port}", logs)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for handle in handles:
            handle.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def wait_forever(servers: RasaServers, *, log: Log = print) -> None:
    log(f"Rasa: {servers.rasa_url} (REST channel: {servers.rasa_url}/webhooks/rest/webhook)")
    log(f"action server: {servers.actions_url}    logs: {servers.logs}    Ctrl-C stops both")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print(file=sys.stderr)
