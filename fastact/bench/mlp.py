"""One training step of a dense MLP, three ways, from the same data and initial weights.

The network: ``Linear(features, h1) -> act -> ... -> Linear(hk, outputs)``,
loss ``0.5 * sum((y - t)**2) / batch``, plain SGD.  The ways:

* ``unfused``: NumPy with fastact's functions, as written by hand: ``z = x @ W``,
  ``z += b``, ``fastact.NAME(z, out=z)`` (a new output where the gradient needs
  the input), ``NAME_backward``, ``dz.sum(0)`` and the two matrix products.
* ``linear``: :class:`fastact.nn.Sequential` of :class:`fastact.nn.Linear`.
* ``torch``: PyTorch eager on the CPU: ``torch.nn.Linear`` and the activation's
  ``torch.nn`` layer (the table's ``torch.layer``), autograd, the same update.

Neither way computes the gradient with respect to the data.  :func:`gemm_step`
runs only the step's matrix products (same shapes) with NumPy's BLAS or
PyTorch's, for the share of a step spent outside them.  Used by
``benchmarks/bench_mlp.py`` and the asv suite (``asv_bench/benchmarks/mlp.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import fastact
from fastact import nn

WAYS = ("unfused", "linear", "torch")


@dataclass(frozen=True)
class Problem:
    """The network, its data and its training rate."""

    activation: str = "relu"
    features: int = 256
    hidden: tuple[int, ...] = (1024, 1024, 1024)
    outputs: int = 10
    batch: int = 512
    dtype: str = "float32"
    lr: float = 0.01
    seed: int = 0

    @property
    def sizes(self) -> list[tuple[int, int]]:
        units = [self.features, *self.hidden, self.outputs]
        return list(zip(units[:-1], units[1:]))


def initial(p: Problem) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Data, targets and the initial (weight, bias) of every layer (``nn.Linear``'s init)."""
    rng = np.random.default_rng(p.seed)
    X = rng.standard_normal((p.batch, p.features)).astype(p.dtype)
    T = rng.standard_normal((p.batch, p.outputs)).astype(p.dtype)
    params = []
    for i, (n_in, n_out) in enumerate(p.sizes):
        lin = nn.Linear(n_in, n_out, dtype=p.dtype, rng=p.seed + 1 + i)
        params.append((lin.weight, lin.bias))
    return X, T, params


def _loss_grad(y: np.ndarray, T: np.ndarray) -> tuple[float, np.ndarray]:
    r = y - T
    loss = 0.5 * float(np.vdot(r, r)) / len(T)
    r *= 1.0 / len(T)
    return loss, r


def _sgd(params, grads, lr: float) -> None:
    for p, g in zip(params, grads):
        g *= lr
        p -= g


def unfused_step(p: Problem) -> Callable[[], float]:
    """The ``unfused`` way: a closure running one step and returning its loss."""
    X, T, init = initial(p)
    entry = fastact.activation(p.activation)
    act = getattr(fastact, entry.name)
    act_backward = getattr(fastact, f"{entry.name}_backward")
    Ws = [w.copy() for w, _ in init]
    bs = [b.copy() for _, b in init]
    last = len(Ws) - 1

    def step() -> float:
        xs, saved = [X], []
        for i, (W, b) in enumerate(zip(Ws, bs)):
            z = xs[-1] @ W
            z += b
            if i == last:
                y = z
            elif entry.saves == "input":
                y = act(z)
                saved.append(z)
            else:
                y = act(z, out=z)
                saved.append(y)
            xs.append(y)
        loss, g = _loss_grad(xs[-1], T)
        grads = []
        for i in range(last, -1, -1):
            if i < last:
                g = act_backward(g, saved[i], out=g)
            gW, gb = xs[i].T @ g, g.sum(0)
            grads += [gb, gW]
            if i:
                g = g @ Ws[i].T
        grads.reverse()
        _sgd([q for pair in zip(Ws, bs) for q in pair], grads, p.lr)
        return loss

    return step


def linear_net(p: Problem) -> nn.Sequential:
    """The ``linear`` way's network, with the shared initial weights."""
    layers = []
    _, _, init = initial(p)
    last = len(init) - 1
    for i, ((n_in, n_out), (W, b)) in enumerate(zip(p.sizes, init)):
        lin = nn.Linear(n_in, n_out, None if i == last else p.activation, dtype=p.dtype)
        lin.weight[...] = W
        lin.bias[...] = b
        layers.append(lin)
    return nn.Sequential(*layers)


def linear_step(p: Problem) -> Callable[[], float]:
    """The ``linear`` way: a closure running one step and returning its loss."""
    X, T, _ = initial(p)
    net = linear_net(p)
    params = list(net.parameters().values())

    def step() -> float:
        loss, g = _loss_grad(net.forward(X), T)
        net.backward(g, input_grad=False)
        _sgd(params, list(net.gradients().values()), p.lr)
        return loss

    return step


def _torch():
    try:
        import torch
    except ImportError:
        raise NotImplementedError("PyTorch is not installed") from None
    return torch


def torch_step(p: Problem) -> Callable[[], float]:
    """The ``torch`` way (NotImplementedError without PyTorch)."""
    torch = _torch()
    entry = fastact.activation(p.activation)
    if entry.torch is None:
        raise NotImplementedError(f"{entry.name} has no torch.nn layer")
    X, T, init = initial(p)
    layers = []
    last = len(init) - 1
    for i, (W, b) in enumerate(init):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=getattr(torch, p.dtype))
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < last:
            layers.append(getattr(torch.nn, entry.torch.layer)())
    net = torch.nn.Sequential(*layers)
    params = list(net.parameters())
    x, t = torch.from_numpy(X), torch.from_numpy(T)

    def step() -> float:
        for q in params:
            q.grad = None
        r = net(x) - t
        loss = 0.5 * (r * r).sum() / len(t)
        loss.backward()
        with torch.no_grad():
            for q in params:
                q.add_(q.grad, alpha=-p.lr)
        return loss.item()

    return step


def make(way: str, p: Problem) -> Callable[[], float]:
    """The step of ``way`` (one of :data:`WAYS`)."""
    if way not in WAYS:
        raise ValueError(f"way must be one of {', '.join(WAYS)}, got {way!r}")
    return {"unfused": unfused_step, "linear": linear_step, "torch": torch_step}[way](p)


def gemm_step(p: Problem, library: str = "numpy") -> Callable[[], None]:
    """Only the matrix products of one step (forward, weight and input gradients)."""
    X, _, init = initial(p)
    rng = np.random.default_rng(p.seed)
    xs = [X] + [rng.standard_normal((p.batch, n)).astype(p.dtype) for _, n in p.sizes]
    Ws = [w for w, _ in init]
    if library == "torch":
        torch = _torch()
        xs = [torch.from_numpy(a) for a in xs]
        Ws = [torch.from_numpy(w.T.copy()) for w in Ws]

        def step() -> None:
            for i, W in enumerate(Ws):
                torch.nn.functional.linear(xs[i], W)
                g = xs[i + 1]
                torch.mm(g.t(), xs[i])
                if i:
                    torch.mm(g, W)

        return step

    def step() -> None:
        for i, W in enumerate(Ws):
            xs[i] @ W
            g = xs[i + 1]
            xs[i].T @ g
            if i:
                g @ W.T

    return step


def blas_info() -> dict[str, str]:
    """Which BLAS each side runs, in words."""
    info = {}
    try:
        from threadpoolctl import threadpool_info

        blas = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        info["numpy"] = ", ".join(
            f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')}, "
            f"{d.get('num_threads')} threads)"
            for d in blas
        )
    except ImportError:
        info["numpy"] = "see numpy.show_config()"
    try:
        torch = _torch()
    except NotImplementedError:
        return info
    text = torch.__config__.show()
    blas = next((ln.split("=", 1)[1] for ln in text.split(",") if "BLAS_INFO=" in ln), "?")
    info["torch"] = (
        f"{blas.strip()} (mkl {torch.backends.mkl.is_available()}, "
        f"mkldnn {torch.backends.mkldnn.is_available()}, {torch.get_num_threads()} threads)"
    )
    return info
