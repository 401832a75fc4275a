"""Training time of scikit-learn's MLP with and without fastact's kernels.

    python benchmarks/bench_sklearn.py                 # defaults below
    python benchmarks/bench_sklearn.py --samples 50000 --hidden 256 256 --repeat 5
    python benchmarks/bench_sklearn.py --activations relu gelu silu

For each activation the same model is fitted alternately with scikit-learn's
own functions and under ``fastact.sklearn.patched()``; the best time of
``--repeat`` fits of each is reported, with their ratio and the largest
difference between the two fits' coefficients (relative to the largest
coefficient of each layer).  Activations scikit-learn does not have
(``fastact.sklearn.ADDED``: gelu, silu...) are fitted patched only.  Most of
an MLP's time goes to the matrix products (BLAS), so the gain is bounded by
the share of the passes around them (intercept, activation, derivative,
intercept gradient, the solver's step); it shows most with wide layers, few
features and float32.  ``--blas`` adds the time of the fit's matrix products
alone (same shapes and count, one batch's data) and their share of the
patched fit.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def fit_time(
    make, X, y, patched: bool, models: list | None = None, clock=time.perf_counter
) -> float:
    import fastact.sklearn

    model = make()
    t = clock()
    if patched:
        with fastact.sklearn.patched():
            model.fit(X, y)
    else:
        model.fit(X, y)
    t = clock() - t
    if models is not None:
        models.append(model)
    return t


def blas_time(model, X, batch_size: int, clock=time.perf_counter) -> float:
    """The matrix products of ``model``'s fit, timed alone: per batch, each layer's
    forward product, its coefficient gradient and (but the first) its input gradient."""
    coefs = [c.copy() for c in model.coefs_]
    a = [X[:batch_size]]
    for c in coefs:
        a.append(a[-1] @ c)
    n_batches = -(-len(X) // batch_size) * model.n_iter_
    t = clock()
    for _ in range(n_batches):
        for i, c in enumerate(coefs):
            np.matmul(a[i], c, out=a[i + 1])
        for i in range(len(coefs) - 1, -1, -1):
            a[i].T @ a[i + 1]
            if i:
                a[i + 1] @ coefs[i].T
    return clock() - t


def coef_difference(a, b) -> float:
    """The largest difference of two fits' coefficients, relative to each layer's largest."""
    return max(
        float(np.max(np.abs(p - q)) / np.max(np.abs(p)))
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


def frobenius_difference(a, b) -> float:
    """The Frobenius norm of the two fits' coefficient differences, relative to ``a``'s."""
    pairs = list(zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))
    num = sum(float(np.sum((p.astype(np.float64) - q) ** 2)) for p, q in pairs)
    den = sum(float(np.sum(p.astype(np.float64) ** 2)) for p, _ in pairs)
    return (num / den) ** 0.5


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--activations", nargs="+", default=["relu", "tanh", "logistic"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--regressor", action="store_true", help="MLPRegressor instead")
    ap.add_argument(
        "--blas",
        action="store_true",
        help="also time the fit's matrix products alone (their share of the patched fit)",
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="fastact and BLAS threads (default: all)"
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also scikit-learn's own spread of coefficients: its unpatched fit against "
        "itself with BLAS on 1 and 2 threads, and on the data moved by one ulp",
    )
    ap.add_argument(
        "--cpu",
        action="store_true",
        help="time with the process's CPU time instead of the wall clock (with --threads 1, "
        "it leaves out the time a loaded machine gives to other processes)",
    )
    args = ap.parse_args(argv)
    if args.cpu and args.threads != 1:
        ap.error("--cpu needs --threads 1 (CPU time adds up every thread's, waiting included)")
    clock = time.process_time if args.cpu else time.perf_counter

    import sklearn
    from sklearn.datasets import make_classification, make_regression
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    import fastact
    import fastact.sklearn

    warnings.simplefilter("ignore", ConvergenceWarning)
    if args.threads:
        fastact.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads, user_api="blas")
        except ImportError:
            print("threadpoolctl is not installed: BLAS keeps its own thread count")
    if args.regressor:
        X, y = make_regression(args.samples, args.features, noise=0.1, random_state=0)
        y = (y / np.std(y)).astype(args.dtype)
        Model = MLPRegressor
    else:
        X, y = make_classification(
            args.samples, args.features, n_informative=8, n_classes=4, random_state=0
        )
        Model = MLPClassifier
    X = X.astype(args.dtype)
    print(
        f"scikit-learn {sklearn.__version__}, fastact {fastact.__version__} "
        f"(backend {fastact.get_backend()}, {fastact.get_num_threads()} threads); "
        f"{Model.__name__}, X {X.shape} {args.dtype}, hidden {tuple(args.hidden)}, "
        f"{args.epochs} epochs (adam), best of {args.repeat}" + (", CPU time" if args.cpu else "")
    )
    blas_head = f" {'BLAS s':>7} {'share':>6}" if args.blas else ""
    print(
        f"{'activation':>10} {'sklearn s':>10} {'fastact s':>10} {'speedup':>8} {'coef diff':>10}"
        + blas_head
    )
    for act in args.activations:

        def make(act=act):
            return Model(
                hidden_layer_sizes=tuple(args.hidden),
                activation=act,
                max_iter=args.epochs,
                batch_size=200,
                random_state=0,
                tol=0.0,
                n_iter_no_change=10**9,
            )

        fit_time(make, X[:1000], y[:1000], True)  # warm up (imports, first calls)
        added = act in fastact.sklearn.ADDED
        base, fast, models = [], [], []
        for _ in range(args.repeat):
            if not added:
                base.append(fit_time(make, X, y, False, models, clock))
            fast.append(fit_time(make, X, y, True, models, clock))
        f = min(fast)
        blas = ""
        if args.blas:
            m = min(blas_time(models[0], X, 200, clock) for _ in range(args.repeat))
            blas = f" {m:7.3f} {m / f:6.0%}"
        if added:
            print(f"{act:>10} {'-':>10} {f:10.3f} {'-':>8} {'-':>10}{blas}")
            continue
        b = min(base)
        diff = coef_difference(models[0], models[1])
        print(f"{act:>10} {b:10.3f} {f:10.3f} {b / f:7.2f}x {diff:10.1e}{blas}")
        if args.floor:
            frob = frobenius_difference(models[0], models[1])
            print(f"{'':>10} patched: largest {diff:.1e}, Frobenius {frob:.1e}")
            print(f"{'':>10} scikit-learn's own spread: " + floor(make, X, y, models[0]))


def floor(make, X, y, reference) -> str:
    """The coefficient differences of scikit-learn's unpatched fit from ``reference``
    (an unpatched fit) with BLAS on 1 and 2 threads, and on X moved by one ulp: the
    differences that last-bit changes make, against which the patched fit's is judged
    (two epochs of Adam amplify a last-bit change of any sum to about 3e-2)."""
    from threadpoolctl import threadpool_limits

    out = []
    for t in (1, 2):
        with threadpool_limits(t, user_api="blas"):
            m = make().fit(X, y)
        out.append(f"BLAS {t} thread{'s' if t > 1 else ''} {coef_difference(reference, m):.1e}")
    m = make().fit(np.nextafter(X, np.inf), y)
    out.append(
        f"X + 1 ulp {coef_difference(reference, m):.1e} "
        f"(Frobenius {frobenius_difference(reference, m):.1e})"
    )
    return ", ".join(out)


if __name__ == "__main__":
    main()
