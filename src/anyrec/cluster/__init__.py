"""Running split work locally or on Ray (see :mod:`anyrec.cluster.runner`)."""

from anyrec.cluster.runner import LOCAL, LocalRunner, RayRunner, Runner, ray_runner

__all__ = ["LOCAL", "LocalRunner", "RayRunner", "Runner", "ray_runner"]
