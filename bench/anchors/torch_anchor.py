#!/usr/bin/python3
"""PyTorch anchor of `npm run bench:train`: the same two models, batch and optimizer as
the TypeScript benchmark, timed the same way, on this machine's CPU.

Prints one JSON object on stdout. When PyTorch is not installed it prints
`{"skipped": "..."}` and exits 0, so the TypeScript benchmark can report the reason.

Run with Debian's interpreter (`/usr/bin/python3`) and `python3-torch`; install
`libopenblas0-pthread` too, or torch's dense layers run on the reference BLAS, about 10x
slower. The BLAS actually loaded is reported (threadpoolctl when available, else the
shared objects mapped into this process), with the thread count (2 by default,
`--threads N`).

Models (as `bench/train.bench.ts`):
- MLP: 784-256-256-10, ReLU, batch 64.
- CNN: 32x32x3 input, conv3x3x32 'same' + ReLU + maxpool 2, conv3x3x64 'same' + ReLU +
  maxpool 2, dense 10, batch 64.
A training step is forward + softmax cross-entropy + backward + Adam (lr 1e-3, torch's
multi-tensor `foreach` form) update + `loss.item()`, timed with 1 … `--threads` intra-op
threads and reported at the fastest (each model's JSON says how many); forward-only is `model(x)` under `torch.no_grad()` plus reading one value.
Median over at least 7 timed steps (and up to 1.5 s or 50 steps) after 3 warm-up steps.
"""
import argparse
import json
import os
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    return parser.parse_args()


ARGS = parse_args()
# OpenBLAS reads its thread count when it loads, so set it before importing torch.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

try:
    import torch
    import torch.nn as nn
except ImportError as error:  # pragma: no cover - depends on the machine
    print(json.dumps({"skipped": f"PyTorch is not installed ({error}); apt-get install python3-torch libopenblas0-pthread"}))
    sys.exit(0)

WARMUP = 3
MIN_RUNS = 7
MIN_SECONDS = 1.5
MAX_RUNS = 50


def blas_info():
    """Which BLAS this process actually loaded (not what torch was built against)."""
    try:
        from threadpoolctl import threadpool_info

        libs = [
            {k: lib.get(k) for k in ("internal_api", "version", "filepath", "num_threads", "threading_layer")}
            for lib in threadpool_info()
            if lib.get("user_api") == "blas"
        ]
        if libs:
            return {"source": "threadpoolctl", "libraries": libs}
    except ImportError:
        pass
    mapped = set()
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "blas" in os.path.basename(path).lower():
                    mapped.add(os.path.realpath(path))
    except OSError:
        pass
    return {"source": "/proc/self/maps", "libraries": [{"filepath": p} for p in sorted(mapped)]}


def openblas_core():
    """The kernel OpenBLAS picked for this CPU (`openblas_get_corename`), and its config line.

    `OPENBLAS_CORETYPE` forces a core and `OPENBLAS_L2_SIZE` a cache size; the benchmark
    runs this anchor without them, and this says what OpenBLAS then chose.
    """
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if len(line.split()) >= 6 and "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {"core": lib.openblas_get_corename().decode(), "config": lib.openblas_get_config().decode().strip(), "filepath": path}
        except (OSError, AttributeError):
            continue
    return None


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def time_ms(fn):
    for _ in range(WARMUP):
        fn()
    samples = []
    begin = time.perf_counter()
    while len(samples) < MIN_RUNS or (time.perf_counter() - begin < MIN_SECONDS and len(samples) < MAX_RUNS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return median(samples), len(samples)


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 10),
    )


def adam(params):
    """torch's multi-tensor Adam (`foreach=True`): its fastest on CPU here. The default
    single-tensor loop measured 2.5 ms a step on the MLP against 0.4 ms for this one."""
    try:
        return torch.optim.Adam(params, lr=1e-3, foreach=True)
    except TypeError:  # pragma: no cover - a torch without `foreach`
        return torch.optim.Adam(params, lr=1e-3)


def measure_at_best(build, x, y):
    """`measure` with 1 … `--threads` intra-op threads; the fastest training step wins.

    Within the threads budget, fewer threads can be faster for small models (thread
    hand-offs cost more than they save), and the anchor is meant to be PyTorch at its best.
    """
    best = None
    for threads in range(1, ARGS.threads + 1):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        figures = {**measure(build(), x, y), "threads": threads}
        if best is None or figures["trainStepMs"] < best["trainStepMs"]:
            best = figures
    torch.set_num_threads(ARGS.threads)
    return best


def measure(model, x, y):
    optimizer = adam(model.parameters())
    loss_fn = nn.CrossEntropyLoss()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()

    def forward():
        with torch.no_grad():
            model(x)[0, 0].item()

    train_ms, train_n = time_ms(train_step)
    forward_ms, forward_n = time_ms(forward)
    return {"trainStepMs": round(train_ms, 3), "forwardMs": round(forward_ms, 3), "trainSamples": train_n, "forwardSamples": forward_n}


def main():
    torch.manual_seed(0)
    torch.set_num_threads(ARGS.threads)
    batch = ARGS.batch
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "optimizer": "adam",
        "mlp": measure_at_best(mlp, torch.randn(batch, 784), torch.randint(0, 10, (batch,))),
        "cnn": measure_at_best(cnn, torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))),
    }
    # After the models ran, so every lazily loaded library is mapped.
    result["blas"] = blas_info()
    result["openblas"] = openblas_core()
    result["env"] = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
