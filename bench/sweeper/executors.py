"""Executors: what runs a sweep's runs. The driver (bench/sweeper/design.py's caller) hands each executor the runs still
to do; the executor yields an Outcome per run as it finishes, and the driver alone writes run folders.

    Serial     in this process, one run after another
    Pool       N worker processes on this machine, each pinned to its share of the cores (and one GPU each)
    RayTasks   every run a Ray task, on a local cluster or an existing one; a task whose worker dies is retried

A worker computes a run with the same stages as `bench run` and returns its records and per-item texts
instead of writing them, so the output folder need not be on a filesystem the workers share.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from forgetbench.core.errors import UserError
from forgetbench.runner.request import RunRequest
from forgetbench.runner.stages import run


@dataclass
class Job:
    key: str                         # the run id of the run's first result
    request: RunRequest
    log: Path | None = None          # where the worker's own output (training bars, library logs) goes


@dataclass
class Outcome:
    key: str
    results: list[tuple[str, dict, dict]] = field(default_factory=list)   # (run id, record, its files by path)
    error: str | None = None
    seconds: float = 0.0


@contextlib.contextmanager
def _stderr_to(path: Path | None):
    """Send this process's stderr (file descriptor 2, so child libraries' output too) to `path`."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def execute(job: Job) -> Outcome:
    """Worker side: compute one run (every variant) and return the results; never raises for a failed run."""
    start = time.perf_counter()
    results: list[tuple[str, dict, dict]] = []

    def keep(folder, record, files, *model):
        results.append((Path(folder).name, record, files))

    try:
        with _stderr_to(job.log):
            run(job.request, write=keep)
    except Exception as e:  # noqa: BLE001 - a worker reports every failure to the driver, which carries on
        detail = str(e) if isinstance(e, UserError) else \
            "".join(traceback.format_exception_only(type(e), e)).strip() + "\n" + \
            "".join(traceback.format_tb(e.__traceback__)[-3:]).rstrip()
        return Outcome(job.key, error=detail, seconds=time.perf_counter() - start)
    return Outcome(job.key, results, seconds=time.perf_counter() - start)


class Serial:
    """One run after another in this process."""

    name = "local"
    workers = 1

    def run(self, jobs: list[Job]) -> Iterator[Outcome]:
        for job in jobs:
            yield execute(job)


def shares(n: int, cores: list[int], gpus: list[str]) -> list[tuple[list[int], str | None]]:
    """Worker i's cores (a contiguous share of `cores`; workers share cores when there are more workers than
    cores) and its GPU (one each, round robin), for n workers."""
    out = []
    for i in range(n):
        if n <= len(cores):
            size, extra = divmod(len(cores), n)
            lo = i * size + min(i, extra)
            mine = cores[lo:lo + size + (i < extra)]
        else:
            mine = [cores[i % len(cores)]]
        out.append((mine, gpus[i % len(gpus)] if gpus else None))
    return out


_started = None     # in a pool worker: where it says which run it starts


def _pin(slots, started) -> None:
    """Pool initializer: take a share, pin this worker to it, then set the threads (before torch is imported)."""
    global _started
    from forgetbench.core import threads
    _started = started
    cores, gpu = slots.get()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    threads.configure()


def _pool_execute(job: Job) -> Outcome:
    _started.put(job.key)
    return execute(job)


def visible_gpus() -> list[str]:
    from forgetbench.toolbox.device import cuda_available
    if not cuda_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given:
        return [g.strip() for g in given.split(",") if g.strip()]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


class Pool:
    """`workers` processes on this machine, each pinned to its share of the cores and one GPU. A worker that dies
    breaks the pool: the runs that had not finished go to a fresh pool; those that had started count an attempt
    (one that had not is not charged), and a run is reported failed after `retries` attempts beyond the first."""

    name = "local"

    def __init__(self, workers: int, retries: int = 1):
        self.workers, self.retries = workers, retries

    def run(self, jobs: list[Job]) -> Iterator[Outcome]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        ctx = multiprocessing.get_context("spawn")       # a fresh interpreter: no inherited torch threads
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
        plan = shares(self.workers, cores, visible_gpus())
        attempts = {j.key: 0 for j in jobs}
        pending = list(jobs)
        while pending:
            slots, started = ctx.Queue(), ctx.Queue()
            for share in plan:
                slots.put(share)
            broken = []
            pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_pin, initargs=(slots, started))
            try:
                futures = {pool.submit(_pool_execute, j): j for j in pending}
                for future in as_completed(futures):
                    job = futures[future]
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken.append(job)
            finally:        # also when the driver stops (Ctrl-C): no run starts after it, none keeps running
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
            pending = []
            began = _drain(started)
            charged = [j for j in broken if j.key in began] or broken    # none known: charge all (a bound)
            for job in broken:
                if job not in charged:
                    pending.append(job)
                    continue
                attempts[job.key] += 1
                if attempts[job.key] > self.retries:
                    yield Outcome(job.key, error=f"a worker process died {attempts[job.key]} times running it")
                else:
                    pending.append(job)


def _drain(queue) -> set:
    import queue as queues
    out = set()
    while True:
        try:
            out.add(queue.get(timeout=0.1))
        except queues.Empty:
            return out


def _ray_execute(job: Job) -> Outcome:
    """A Ray task: threads set to the task's CPUs before the run imports torch."""
    import ray
    from forgetbench.core import threads
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    threads.configure(cap=max(1, int(cpus)))
    return execute(job)


class RayTasks:
    """Each run a Ray task: one GPU per run where the cluster has GPUs, else `cpus` CPUs. A task whose worker dies
    is retried up to `retries` times (Ray's max_retries); a run that fails in Python is not (it would again)."""

    name = "ray"

    def __init__(self, address: str | None = None, retries: int = 2, cpus: int = 1):
        self.address, self.retries, self.cpus = address, retries, cpus

    def start(self):
        import ray
        if not ray.is_initialized():
            env = {k: v for k, v in os.environ.items() if k.startswith(("HF_", "TRANSFORMERS_", "FORGETBENCH_"))}
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env}, logging_level="ERROR")
        return ray

    @property
    def workers(self) -> int:
        ray = self.start()
        gpus = int(ray.cluster_resources().get("GPU", 0))
        return gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.cpus)

    def run(self, jobs: list[Job]) -> Iterator[Outcome]:
        ray = self.start()
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(_ray_execute).options(num_cpus=self.cpus, num_gpus=1 if gpus else 0,
                                               max_retries=self.retries, retry_exceptions=False)
        # Ray keeps each worker's output in its own logs (a driver path may not exist on another node)
        refs = {task.remote(replace(j, log=None)): j for j in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            job = refs.pop(done[0])
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as e:
                yield Outcome(job.key, error=f"Ray could not run it (a worker that dies is retried up to "
                              f"{self.retries} times): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def make_executor(choice):
    """The executor a sweep's ExecutorChoice names (forgetbench.sweeper.request)."""
    if choice.kind == "ray":
        return RayTasks(choice.ray_address, retries=choice.retries if choice.retries is not None else 2)
    if choice.jobs == 1:
        return Serial()
    return Pool(choice.jobs, retries=choice.retries if choice.retries is not None else 1)
