"""One training step of a dense MLP: NumPy + fastact functions, fastact.nn.Linear, PyTorch.

The three ways of ``fastact.bench.mlp`` (``benchmarks/bench_mlp.py`` prints
the same comparison with the share outside the matrix products): 3 hidden
layers of 1024, batch 512, float32 (2 layers of 64, batch 32 in CI), relu,
gelu and silu.  Each timed call is one step (forward, backward, SGD update);
the weights keep training from call to call.  ``torch`` is skipped without
PyTorch, the whole scenario on a commit without ``fastact.nn.Linear``.
"""

from __future__ import annotations

import fastact

from .common import CI, TIMER

WAYS = ("unfused", "linear", "torch")
# A memory-bound activation and the two transcendental ones of transformers' MLPs.
ACTIVATIONS = tuple(n for n in ("relu", "gelu", "silu") if n in fastact.activations())


def problem(activation: str):
    """The network of the scenario (NotImplementedError where fastact has no MLP bench)."""
    try:
        from fastact.bench import mlp
    except ImportError:
        raise NotImplementedError("this commit has no fastact.nn.Linear") from None
    if CI:
        return mlp, mlp.Problem(activation, features=16, hidden=(64, 64), outputs=4, batch=32)
    return mlp, mlp.Problem(activation)


class MLPStep:
    params = (WAYS, ACTIVATIONS)
    param_names = ("way", "activation")
    timer = TIMER
    number = 1
    repeat = (5, 20, 20.0)

    def setup(self, way, activation):
        mlp, p = problem(activation)
        self.step = mlp.make(way, p)
        self.step()  # first-call costs (imports, buffers) out of the timing

    def time_step(self, way, activation):
        self.step()
