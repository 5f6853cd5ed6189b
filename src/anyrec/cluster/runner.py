"""Where work that can be split runs: in this process, or on a Ray cluster.

Two shapes of work, one interface, so the local path and the Ray path are the same code:

- :meth:`Runner.map_actors`: a function that is expensive to build (a text encoder) applied to
  many items; on Ray each actor of a pool builds it once and Ray Data's ``map_batches`` feeds
  the items (catalog embedding).
- :meth:`Runner.map_tasks`: a function applied to many items with one large shared object (a
  fitted model and the evaluation matrices); on Ray the object is put in the object store once
  and the items are cut into contiguous shards, one task each (evaluation sharded by users).

Both return the results in the order of the items, so whatever is computed from them (metrics,
vectors) is identical to the local result.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from anyrec.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
Progress = Callable[[int, int], None] | None


class Fittable(Protocol):
    """What a runner asks of a model (declared on :class:`anyrec.models.base.Recommender`, a layer above)."""

    @property
    def data_parallel(self) -> bool: ...

    worker: tuple[int, int]
    progress: Callable[[str, int, int], None] | None
    report_: Any

    def fit(self, ds: Any, validate: Callable[[Any], float] | None = None,
            progress: Callable[[str, int, int], None] | None = None) -> Any: ...


class Runner(Protocol):
    name: str

    def map_actors(
        self, make: Callable[[], Callable[[Any], Any]], items: Sequence[Any], progress: Progress = None
    ) -> list[Any]:
        """``[make()(x) for x in items]``, ``make`` called once per worker."""
        ...

    def map_tasks(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], progress: Progress = None
    ) -> list[Any]:
        """``[fn(shared, x) for x in items]``, ``shared`` shipped once."""
        ...

    def fit(
        self,
        model: Fittable,
        train: Any,
        validate: Callable[[Any], float] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Any:
        """``model`` fitted on ``train`` (early stopping on ``validate``, state to ``progress``); data-parallel where
        it can be."""
        ...


class LocalRunner:
    """Everything in this process, in order."""

    name = "local"

    def map_actors(
        self, make: Callable[[], Callable[[T], R]], items: Sequence[T], progress: Progress = None
    ) -> list[R]:
        f = make()
        out = []
        for i, x in enumerate(items):
            out.append(f(x))
            if progress is not None:
                progress(i + 1, len(items))
        return out

    def map_tasks(self, fn: Callable[[S, T], R], shared: S, items: Sequence[T], progress: Progress = None) -> list[R]:
        out = []
        for i, x in enumerate(items):
            out.append(fn(shared, x))
            if progress is not None:
                progress(i + 1, len(items))
        return out

    def fit(
        self,
        model: Fittable,
        train: Any,
        validate: Callable[[Any], float] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Any:
        return model.fit(train, validate=validate, progress=progress)


LOCAL = LocalRunner()


class _Actor:
    """A Ray Data actor: builds the function once, applies it to each row's item."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]]) -> None:
        self.f = make()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import pickle

        import numpy as np

        out = [pickle.dumps(self.f(pickle.loads(x))) for x in batch["item"]]
        return {"i": batch["i"], "out": np.array(out, dtype=object)}


def _run_shard(fn: Callable[[Any, Any], Any], shared: Any, items: list[Any]) -> list[Any]:
    return [fn(shared, x) for x in items]


class RayRunner:
    """Work spread over a Ray cluster (``workers`` actors or shards; default: the cluster's CPUs)."""

    name = "ray"

    def __init__(self, workers: int = 0, cpus_per_worker: float = 1.0) -> None:
        import ray

        self._ray = ray
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
        self.cpus_per_worker = cpus_per_worker

    def map_actors(
        self, make: Callable[[], Callable[[Any], Any]], items: Sequence[Any], progress: Progress = None
    ) -> list[Any]:
        import pickle

        import ray.data

        if not items:
            return []
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the caller's progress reports; Ray Data's own lines would interleave
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        rows = [{"i": i, "item": pickle.dumps(x)} for i, x in enumerate(items)]
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), self.workers * 4))
        pool = ray.data.ActorPoolStrategy(size=min(self.workers, len(rows)))
        mapped = ds.map_batches(
            _Actor,
            fn_constructor_args=(make,),
            batch_size=1,
            compute=pool,
            num_cpus=self.cpus_per_worker,
            batch_format="numpy",
        )
        out: list[Any] = [None] * len(items)
        done = 0
        for batch in mapped.iter_batches(batch_size=1, batch_format="numpy"):
            for i, blob in zip(batch["i"], batch["out"]):
                out[int(i)] = pickle.loads(blob)
                done += 1
            if progress is not None:
                progress(done, len(items))
        return out

    def map_tasks(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], progress: Progress = None
    ) -> list[Any]:
        ray = self._ray
        if not items:
            return []
        n = min(len(items), self.workers * 2)  # two shards per worker: a slow shard does not hold up the end
        bounds = [round(len(items) * j / n) for j in range(n + 1)]
        shards = [list(items[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        ref = ray.put(shared)
        task = ray.remote(num_cpus=self.cpus_per_worker)(_run_shard)
        pending = {task.remote(fn, ref, s): j for j, s in enumerate(shards)}
        results: list[list[Any]] = [[] for _ in shards]
        done = 0
        waiting = list(pending)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            j = pending[ready[0]]
            results[j] = ray.get(ready[0])
            done += len(shards[j])
            if progress is not None:
                progress(done, len(items))
        return [r for shard in results for r in shard]

    def fit(
        self,
        model: Fittable,
        train: Any,
        validate: Callable[[Any], float] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Any:
        """Fit a data-parallel model (one with ``data_parallel = True``) with Ray Train's
        ``TorchTrainer``: ``workers`` processes, each on a share of every epoch, gradients averaged
        (gloo on CPUs); early stopping on ``validate`` as in a local fit. Returns the fitted model."""
        if not model.data_parallel:
            return LOCAL.fit(model, train, validate, progress)
        import tempfile

        import ray
        from ray import cloudpickle
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        blob = cloudpickle.dumps((model, train, validate))
        progress = progress or model.progress
        relay = ray.remote(num_cpus=0)(_Relay).remote() if progress is not None else None  # no CPU: not a training slot
        with tempfile.TemporaryDirectory(prefix="anyrec-ray-train-") as storage, _relayed(relay, progress):
            trainer = TorchTrainer(
                _train_loop,
                train_loop_config={"blob": blob, "relay": relay},
                scaling_config=ScalingConfig(
                    num_workers=self.workers, use_gpu=False, resources_per_worker={"CPU": self.cpus_per_worker}
                ),
                run_config=RunConfig(storage_path=storage, name="anyrec-fit"),
            )
            result = trainer.fit()
            if result.checkpoint is None:
                raise RuntimeError(f"Ray Train returned no model: {result.error}")
            with result.checkpoint.as_directory() as folder, open(os.path.join(folder, "model.pkl"), "rb") as fh:
                fitted = cloudpickle.loads(fh.read())
        fitted.progress = progress
        return fitted


def _train_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: fit the model on its share of the data; rank 0 hands the fitted model back."""
    import tempfile

    import ray
    import ray.train
    from ray import cloudpickle

    model, train, validate = cloudpickle.loads(config["blob"])
    ctx = ray.train.get_context()
    model.worker = (ctx.get_world_rank(), ctx.get_world_size())
    relay = config.get("relay")
    report = None
    if relay is not None and ctx.get_world_rank() == 0:  # one worker's epochs stand for all: they move in step

        def report(label: str, done: int, total: int) -> None:
            relay.update.remote(label, done, total)

    model.fit(train, validate=validate, progress=report)
    checkpoint = None
    if ctx.get_world_rank() == 0:
        if relay is not None:
            ray.get(relay.ping.remote())  # one caller's actor calls run in order: every update is in before the end
        model.progress = None
        model.worker = (0, 1)
        folder = tempfile.mkdtemp(prefix="anyrec-fit-")
        with open(os.path.join(folder, "model.pkl"), "wb") as fh:
            fh.write(cloudpickle.dumps(model))
        checkpoint = ray.train.Checkpoint.from_directory(folder)
    ray.train.report({"epochs": len(model.report_.epochs)}, checkpoint=checkpoint)


class _Relay:
    """Holds the training workers' progress reports until the driver drains them (at most ``keep``:
    past that the oldest go, and are counted)."""

    def __init__(self, keep: int = 10_000) -> None:
        self.reports: deque[tuple[str, int, int]] = deque(maxlen=keep)
        self.dropped = 0

    def update(self, label: str, done: int, total: int) -> None:
        if len(self.reports) == self.reports.maxlen:
            self.dropped += 1
        self.reports.append((label, done, total))

    def ping(self) -> None:
        return None

    def drain(self) -> tuple[list[tuple[str, int, int]], int]:
        reports, dropped = list(self.reports), self.dropped
        self.reports.clear()
        self.dropped = 0
        return reports, dropped


@contextmanager
def _relayed(relay: Any, progress: Callable[[str, int, int], None] | None, every: float = 1.0) -> Iterator[None]:
    """While the block runs, pass the relay's reports to ``progress`` (the driver's bar and log), every
    one in order, drained every ``every`` seconds and once more at the end: a fit shorter than
    ``every`` still shows its epochs."""
    if relay is None or progress is None:
        yield
        return
    import ray

    stop = threading.Event()

    def poll() -> None:
        while True:
            finished = stop.wait(every)
            reports, dropped = ray.get(relay.drain.remote())
            if dropped:
                log.info(
                    "%d earlier progress reports of the Ray workers were not kept (the relay holds the latest %d)",
                    dropped,
                    len(reports),
                )
            for report in reports:
                progress(*report)
            if finished:
                return

    thread = threading.Thread(target=poll, name="anyrec-ray-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        ray.kill(relay)


@contextmanager
def ray_runner(address: str | None, workers: int = 0) -> Iterator[RayRunner]:
    """Connect to Ray (``address``: ``local`` starts a cluster on this machine, anything else is
    handed to ``ray.init``: ``auto``, ``ray://head:10001``, ``head:6379``) and yield a runner.

    A cluster this call started is shut down at the end; an existing one is only disconnected.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the ray package: pip install 'anyrec[ray]' (ray[data,train])") from None
    started = time.perf_counter()
    if ray.is_initialized():
        yield RayRunner(workers)
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address in (None, "", "local"):
        kwargs["num_cpus"] = workers or os.cpu_count() or 1
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ConfigError(f"--ray {address}: could not connect to a Ray cluster: {e}") from None
    log.info(
        "ray: %s, %s CPUs, up in %.1f s",
        address or "local",
        ray.cluster_resources().get("CPU"),
        time.perf_counter() - started,
    )
    try:
        yield RayRunner(workers)
    finally:
        ray.shutdown()
