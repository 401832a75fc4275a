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
intercept gradient); it shows most with wide layers, few features and float32.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def fit_time(make, X, y, patched: bool, models: list | None = None) -> float:
    import fastact.sklearn

    model = make()
    t = time.perf_counter()
    if patched:
        with fastact.sklearn.patched():
            model.fit(X, y)
    else:
        model.fit(X, y)
    t = time.perf_counter() - t
    if models is not None:
        models.append(model)
    return t


def coef_difference(a, b) -> float:
    """The largest difference of two fits' coefficients, relative to each layer's largest."""
    return max(
        float(np.max(np.abs(p - q)) / np.max(np.abs(p)))
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


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
        "--threads", type=int, default=None, help="fastact and BLAS threads (default: all)"
    )
    args = ap.parse_args(argv)

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
        f"{args.epochs} epochs (adam), best of {args.repeat}"
    )
    print(
        f"{'activation':>10} {'sklearn s':>10} {'fastact s':>10} {'speedup':>8} {'coef diff':>10}"
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
                base.append(fit_time(make, X, y, False, models))
            fast.append(fit_time(make, X, y, True, models))
        f = min(fast)
        if added:
            print(f"{act:>10} {'-':>10} {f:10.3f} {'-':>8} {'-':>10}")
            continue
        b = min(base)
        diff = coef_difference(models[0], models[1])
        print(f"{act:>10} {b:10.3f} {f:10.3f} {b / f:7.2f}x {diff:10.1e}")


if __name__ == "__main__":
    main()
