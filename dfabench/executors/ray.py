"""The Ray executor: ``dfabench run ... --executor ray [--ray-address ADDR] [--replicas R] [--gpus-per-replica G]``.

- **One actor per model replica.** Each actor creates the model once (with the run's model arguments),
  prepares it on the benchmark and reports its identity; every replica must report the same
  fingerprint (the one a local run computes: the response cache is shared across executors).
- **The driver dispatches batches** (at most :data:`IN_FLIGHT` per actor), looks each up in the response
  cache first, and commits the answers as they stream back: the driver is the cache's only writer, so a
  run resumes from whatever was answered, on Ray or locally.
- **An actor that dies** (its process killed, out of memory, its node gone) has its batches rescheduled on
  the others; the run ends with one clear line only when no replica is left, and what was answered stays
  in the cache. **A replica that fails to start** (missing weights, out of memory) is reported, and the run
  goes on when at least one started.
- The benchmark folder must be readable at the same path on every node (a shared filesystem): actors decode
  the images themselves. Environment variables named ``DFABENCH_*``, ``HF_*`` and ``TRANSFORMERS_*`` are
  passed to the actors.

Ray is an optional extra (``pip install 'dfabench[ray]'``), imported only here and only when used.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from dfabench.answers import Item
from dfabench.errors import DfabenchError
from dfabench.executors.batch import Outcomes, call_model, decode_items, describe_model, found_outcomes
from dfabench.redact import redact

#: batches an actor holds at a time (one answering, one waiting: the actor never idles between batches)
IN_FLIGHT = 2
#: seconds a replica may take to create and prepare its model (DFABENCH_RAY_START_TIMEOUT overrides)
START_TIMEOUT_S = float(os.environ.get("DFABENCH_RAY_START_TIMEOUT") or 1800)
#: environment variables the actors get from the driver
FORWARDED_PREFIXES = ("DFABENCH_", "HF_", "TRANSFORMERS_", "HUGGINGFACE_")


def import_ray():
    try:
        import ray
    except ImportError:
        raise DfabenchError("--executor ray needs Ray: pip install 'dfabench[ray]' (or pip install ray)") from None
    return ray


class ModelReplica:
    """The actor class (wrapped by ``ray.remote`` when the executor starts): one model, created once."""

    def __init__(self, model: str, args: dict[str, Any], bench: str):
        from dfabench.data.manifest import load_benchmark
        from dfabench.plugins import get_manager

        entry = get_manager().models.get(model)
        self.model = entry.create(**args)
        try:
            self.model.prepare(load_benchmark(bench))
            self.info = describe_model(entry, args, self.model)
        except BaseException:
            self.model.close()
            raise

    def describe(self) -> dict[str, Any]:
        return {**self.info, "pid": os.getpid(), "node": socket.gethostname()}

    def answer(self, task, capability: str, settings, todo: list[Item], root: str) -> Outcomes:
        return call_model(self.model, task, capability, settings, todo, decode_items(todo, root), root)

    def close(self) -> None:
        self.model.close()


def check_reachable(address: str) -> None:
    """Refuse, in seconds rather than after Ray's long retries, a ``host:port`` nothing answers on."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", a cluster file: Ray itself says what is wrong
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as exc:
        raise DfabenchError(f"--ray-address {redact(address)}: cannot reach a Ray cluster there ({exc}); "
                            "start one with `ray start --head` or leave --ray-address out for a local one") from None


class RayExecutor:
    """Model replicas as Ray actors; see the module docstring."""

    kind = "ray"

    def __init__(self, model: str, args: dict[str, Any], bench: str, *, replicas: int = 1,
                 gpus_per_replica: float = 0, cpus_per_replica: float = 1, ray_address: str | None = None,
                 stream=None):
        if replicas < 1:
            raise DfabenchError(f"--replicas must be at least 1, not {replicas}")
        if gpus_per_replica < 0 or cpus_per_replica < 0:
            raise DfabenchError("--gpus-per-replica and --cpus-per-replica cannot be negative")
        self.model, self.args, self.bench = model, args, bench
        self.replicas, self.gpus, self.cpus = replicas, gpus_per_replica, cpus_per_replica
        self.address = ray_address
        self.stream = stream or sys.stderr
        self.actors: list[Any] = []
        self.alive: list[int] = []
        self.started_here = False
        self.info: dict[str, Any] = {}
        self.failed_to_start: list[str] = []
        self.died: list[str] = []
        self.rescheduled = 0

    # ---- start

    def _init_ray(self):
        ray = import_ray()
        if self.address:
            check_reachable(self.address)
        if ray.is_initialized():  # this process joined a cluster already (a notebook, a test): use it
            return ray
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIXES)}
        if self.address:
            try:
                ray.init(address=self.address, runtime_env={"env_vars": env}, logging_level="WARNING",
                         log_to_driver=True)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ...: one line
                raise DfabenchError(f"--ray-address {redact(self.address)}: cannot connect to the Ray cluster "
                                    f"({type(exc).__name__}: {redact(exc)})") from None
        else:
            # a local Ray with the CPUs of this machine, stopped again when the run ends
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level="WARNING",
                     runtime_env={"env_vars": env}, log_to_driver=True)
            self.started_here = True
        return ray

    def start(self, benchmark) -> dict[str, Any]:
        ray = self._init_ray()
        resources = ray.cluster_resources()
        if self.gpus and resources.get("GPU", 0) < self.gpus:
            raise DfabenchError(f"--gpus-per-replica {self.gpus}: the Ray cluster has {resources.get('GPU', 0):g} "
                                "GPUs")
        fits = self.replicas
        if self.cpus:
            fits = min(fits, int(resources.get("CPU", 0) // self.cpus))
        if self.gpus:
            fits = min(fits, int(resources.get("GPU", 0) // self.gpus))
        if fits < 1:
            raise DfabenchError(f"the Ray cluster cannot hold one replica ({self.cpus:g} CPUs, {self.gpus:g} GPUs "
                                f"each; it has {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs)")
        if fits < self.replicas:
            self.stream.write(f"ray: the cluster holds {fits} of the {self.replicas} replicas asked "
                              f"({self.cpus:g} CPUs, {self.gpus:g} GPUs each); starting {fits}\n")
        remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0)(ModelReplica)
        self.actors = [remote.remote(self.model, self.args, self.bench) for _ in range(fits)]
        described = {i: self.actors[i].describe.remote() for i in range(fits)}
        infos: dict[int, dict[str, Any]] = {}
        for index, ref in described.items():
            try:
                infos[index] = ray.get(ref, timeout=START_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - the replica is reported, the others go on
                reason = _reason(exc)
                self.failed_to_start.append(f"replica {index + 1}: {reason}")
                self.stream.write(f"ray: replica {index + 1} of {fits} failed to start: {reason}\n")
                ray.kill(self.actors[index])
        if not infos:
            raise DfabenchError(f"no model replica started on Ray ({self.failed_to_start[0]})")
        fingerprints = {info["record"]["fingerprint"] for info in infos.values()}
        if len(fingerprints) > 1:
            raise DfabenchError("the replicas report different model identities (weights or library versions "
                                "differ between nodes): " + ", ".join(sorted(f[:12] for f in fingerprints)))
        self.alive = sorted(infos)
        first = infos[self.alive[0]]
        self.info = {k: first[k] for k in ("record", "capabilities", "default_batch_size", "deterministic")}
        if len(self.alive) > 1 or self.failed_to_start:
            self.stream.write(f"ray: {len(self.alive)} replica(s) answering\n")
        return self.info

    # ---- answer

    def answer(self, task, capability: str, settings, batches: Iterable[tuple[list[Item], dict[str, Any]]],
               root: str) -> Iterator[tuple[list[Item], Outcomes]]:
        """Dispatch the batches to the replicas; yields each answered batch as it comes back (not in order)."""
        ray = import_ray()
        from ray.exceptions import RayActorError

        task_ref = ray.put(task)
        source = iter(batches)
        exhausted = False
        waiting: deque[tuple[list[Item], Outcomes, list[Item]]] = deque()
        in_flight: dict[Any, tuple[int, list[Item], Outcomes, list[Item]]] = {}
        load = {index: 0 for index in self.alive}
        while True:
            while not exhausted and len(waiting) < IN_FLIGHT * max(1, len(self.alive)):
                pair = next(source, None)
                if pair is None:
                    exhausted = True
                    break
                batch, found = pair
                known, todo = found_outcomes(task, batch, found, root)
                if todo:
                    waiting.append((batch, known, todo))
                else:
                    yield batch, known
            for index in sorted(self.alive, key=lambda i: load[i]):
                while waiting and load[index] < IN_FLIGHT:
                    batch, known, todo = waiting.popleft()
                    ref = self.actors[index].answer.remote(task_ref, capability, settings, todo, root)
                    in_flight[ref] = (index, batch, known, todo)
                    load[index] += 1
            if not in_flight:
                if exhausted and not waiting:
                    return
                if not self.alive:
                    raise DfabenchError(self._none_left())
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                index, batch, known, todo = in_flight.pop(ref)
                load[index] -= 1
                try:
                    known.update(ray.get(ref))
                except RayActorError as exc:
                    if index in self.alive:
                        self.alive.remove(index)
                        self.died.append(f"replica {index + 1}: {_reason(exc)}")
                        self.stream.write(f"\nray: replica {index + 1} died ({_reason(exc)}); its batches go to "
                                          f"the {len(self.alive)} left\n")
                    self.rescheduled += 1
                    waiting.appendleft((batch, known, todo))
                    if not self.alive:
                        raise DfabenchError(self._none_left()) from None
                    continue
                except Exception as exc:  # noqa: BLE001 - a bug in the actor: these samples fail, visibly
                    reason = f"ray: {_reason(exc)}"
                    known.update({item.sample.id: {"error": reason, "payload": None, "model_s": 0.0} for item in todo})
                yield batch, known

    def _none_left(self) -> str:
        return (f"every model replica on Ray died ({'; '.join(self.died[-3:]) or 'no reason given'}); the answers "
                "so far are in the run folder's cache: run the same command again to resume")

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "replicas": self.replicas,
                               "started": len(self.alive) + len(self.died),
                               "gpus_per_replica": self.gpus, "cpus_per_replica": self.cpus}
        if self.failed_to_start:
            out["failed_to_start"] = self.failed_to_start
        if self.died:
            out["died"] = self.died
            out["rescheduled_batches"] = self.rescheduled
        return out

    def close(self) -> None:
        if not self.actors:
            if self.started_here:
                import_ray().shutdown()
            return
        ray = import_ray()
        for index in list(self.alive):
            try:
                ray.get(self.actors[index].close.remote(), timeout=60)
            except Exception:  # noqa: BLE001, S110 - closing a replica that is gone
                pass
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001, S110
                pass
        self.actors, self.alive = [], []
        if self.started_here:
            ray.shutdown()


_EXCEPTION_LINE = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*)([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)): ?(.*)$")


def _reason(exc: BaseException) -> str:
    """One redacted line of a Ray error: the Python exception the actor raised (Ray's text wraps it in
    header and traceback lines), its message alone for dfabench's own one-line errors."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        exc = cause
        if isinstance(cause, DfabenchError):
            return redact(cause).splitlines()[0][:300]
    lines = [line.strip() for line in redact(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line)
        if match and not match.group(2).startswith(("RayActorError", "ActorDiedError", "RayTaskError")):
            name, message = match.group(2), match.group(3)
            return (message if name in ("DfabenchError", "InputError") else f"{name}: {message}")[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]
