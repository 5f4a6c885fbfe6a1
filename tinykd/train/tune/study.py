"""The search's state: an Optuna study in a storage (an SQLite file in the run folder by default, or a
PostgreSQL server several machines share), and what happens to trials whose worker died.

A worker stamps each trial with its host and process id and keeps a heartbeat in the storage. A trial
left RUNNING by a dead worker is marked failed and enqueued again with the same student: at once when the
worker was on this machine and its process is gone, else by any worker once the heartbeat is older than
GRACE_SECONDS. Each trial is retried at most MAX_RETRY times.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from pathlib import Path

from tinykd.core.artifacts import RunLayout
from tinykd.core.errors import TinykdError

log = logging.getLogger(__name__)

DIRECTIONS = ("maximize", "minimize", "minimize")
"""INT8 validation accuracy, instructions per inference, C backend RAM."""
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
MAX_RETRY = 2
STORAGE_ATTEMPTS = 3
SQLITE_TIMEOUT_SECONDS = 60
"""How long a worker waits for another's write to the SQLite file."""


def default_storage(layout: RunLayout) -> str:
    return f"sqlite:///{(layout.tune / 'study.db').resolve()}"


def shown(url: str) -> str:
    """A storage URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://..."


def with_driver(url: str) -> str:
    """postgresql:// (or postgres://) with psycopg 3, the driver tinykd installs, whatever SQLAlchemy's
    default for the scheme is."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


def _open_storage(url: str):
    import optuna

    quiet_optuna()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}}
    else:
        engine = {"pool_pre_ping": True}
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                with_driver(url), engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
        except ModuleNotFoundError:
            raise
        except Exception:  # workers starting together race to create the tables: the next try sees them
            if attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(1.0 + attempt)


def storage(url: str):
    """The RDB storage at `url`, with heartbeats and the retry of dead workers' trials."""
    try:
        return _open_storage(url)
    except ModuleNotFoundError as exc:
        raise TinykdError(f"--storage {shown(url)}: its database driver is not installed ({exc.name}); "
                          "PostgreSQL needs psycopg (installed with tinykd: pip install 'psycopg[binary]')") from None
    except Exception as exc:  # SQLAlchemy's argument and connection errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinykdError(f"--storage {shown(url)}: cannot open the study storage ({reason})") from None


def open_study(url: str, name: str, identity: dict, sampler=None):
    """The study `name` in the storage at `url`, created on first use. `identity` (board, teachers) is
    recorded in it; a study made for another board or teacher is refused."""
    import optuna

    study = optuna.create_study(storage=storage(url), study_name=name, directions=list(DIRECTIONS),
                                sampler=sampler, load_if_exists=True)
    if [d.name.lower() for d in study.directions] != list(DIRECTIONS):
        raise TinykdError(f"study {name!r} in {shown(url)} is not a tinykd tune study; use another --study")
    recorded = study.user_attrs
    for key, value in identity.items():
        if key not in recorded:
            study.set_user_attr(key, value)
        elif recorded[key] != value:
            raise TinykdError(f"study {name!r} in {shown(url)} was made with {key} {recorded[key]!r}, not "
                              f"{value!r}; use another --study (or --name) for a new search")
    return study


def quiet_optuna() -> None:
    """Optuna's own log lines and its notes on experimental features (heartbeats) off the terminal:
    tinykd reports the trials."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def stamp(trial) -> None:
    """Record which worker runs the trial, so its death can be noticed."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())


def _alive(pid: int) -> bool:
    """Whether a process of this machine still runs (a zombie, dead but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def retry(study, frozen, layout: RunLayout) -> None:
    """Mark a trial failed (if it is not yet), enqueue the same student again and drop its incomplete folder."""
    import optuna
    from optuna.trial import TrialState

    if frozen.state == TrialState.RUNNING:
        study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.FAIL)
        frozen = study._storage.get_trial(frozen._trial_id)
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, frozen)
    shutil.rmtree(layout.trial(frozen.number), ignore_errors=True)


def recover_dead_trials(study, layout: RunLayout) -> list[int]:
    """Trials left RUNNING by a worker of this machine whose process is gone: failed and enqueued again.
    Returns their numbers."""
    from optuna.trial import TrialState

    host, dead = socket.gethostname(), []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = frozen.user_attrs.get("pid")
        if frozen.user_attrs.get("host") == host and pid is not None and not _alive(pid):
            retry(study, frozen, layout)
            dead.append(frozen.number)
    if dead:
        log.info(f"trial(s) {', '.join(map(str, dead))} of a worker that died: run again")
    return dead
