"""Tabular data sets from local files: Purchase-100, and any CSV or NPZ file.

- ``purchase``: the binary Purchase data of Shokri et al. (Kaggle "Acquire
  Valued Shoppers"; 197,324 customers x 600 binary features), used by the
  GAN-unlearning paper (000) as Purchase-10/20/50/100. Accepted files:

  * the common ``dataset_purchase`` text file: no header, comma-separated, one
    row per customer, the label first (1..100), then the 600 0/1 features;
  * an ``.npz`` with ``features`` (n, 600) and ``labels`` (n,) or one-hot
    (n, k) (the ``purchase100.npz`` layout).

  Paper 000 clusters the customers with k-means into 10/20/50/100 classes.
  ``classes`` equal to the file's number of labels keeps them (0 also keeps
  them); any other value recomputes the labels with scikit-learn ``KMeans``
  (k-means++, one initialisation, ``seed``), as the paper describes.
  ``samples`` > 0 keeps a seeded random subset (paper 000 reports using 19,324
  rows). Features stay binary (no normalisation).
  Note: paper 002's "Purchase" is a different data set (UCI online shoppers'
  purchasing intention, 18 attributes); load it with ``csv``
  (``label_column = "Revenue"``).
- ``csv``: any delimited text file with a label column. Numeric and boolean
  columns become features; text columns are one-hot encoded (``categorical =
  "onehot"``) or refused (``"error"``). Labels of any type are mapped to
  ``0..k-1`` in sorted order.
- ``npz``: a NumPy archive with a feature array (``x_key``, any shape
  ``(n, ...)``) and a label array (``y_key``, ``(n,)`` or one-hot ``(n, k)``).

``csv`` and ``npz`` standardise each feature over the pool (``standardise``,
default true: unscaled columns such as durations in seconds make plain SGD/Adam
training diverge); constant features are centred only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearnbench import DatasetArrays, DatasetSpec, Param, hookimpl

if TYPE_CHECKING:
    import numpy as np

PURCHASE_FEATURES = 600


def _path(name: str, params: Mapping[str, Any], hint: str) -> Path:
    if not params["path"]:
        raise ValueError(f"{name}: parameter 'path' is required ({hint})")
    path = Path(params["path"]).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{name}: {path} not found; set 'path' to {hint}")
    return path


def _dense_labels(name: str, raw: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels (or one-hot rows) -> int64 in ``0..k-1`` (sorted order) and ``k``."""
    import numpy as np

    if raw.ndim == 2:
        raw = raw.argmax(axis=1)
    if raw.ndim != 1:
        raise ValueError(f"{name}: labels must be a vector or one-hot rows, got shape {raw.shape}")
    values, labels = np.unique(raw, return_inverse=True)
    return labels.astype(np.int64), int(values.size)


def _standardise(x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True)
    std[std == 0] = 1.0
    return (x - mean) / std


def _arrays(
    x: np.ndarray, y: np.ndarray, classes: int, description: str, normalisation: str
) -> DatasetArrays:
    import numpy as np
    import torch

    if not np.isfinite(x).all():
        raise ValueError(f"{description}: the features hold NaN or infinite values")
    tx = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return DatasetArrays(
        x=tx,
        y=torch.from_numpy(y.astype(np.int64)),
        num_classes=classes,
        input_shape=tuple(tx.shape[1:]),
        description=description,
        normalisation=normalisation,
    )


# ---- purchase ------------------------------------------------------------------------


def _read_purchase(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if path.suffix == ".npz":
        with np.load(path) as archive:
            missing = {"features", "labels"} - set(archive.files)
            if missing:
                raise ValueError(
                    f"purchase: {path} lacks {sorted(missing)}; it holds {archive.files}"
                )
            return archive["features"], archive["labels"]
    import pandas as pd

    table = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
    return table[:, 1:], table[:, 0]


def load_purchase(params: Mapping[str, Any]) -> DatasetArrays:
    import numpy as np

    path = _path("purchase", params, "the dataset_purchase file (label, then 600 0/1 features)")
    features, raw_labels = _read_purchase(path)
    if features.ndim != 2 or features.shape[1] != PURCHASE_FEATURES:
        raise ValueError(
            f"purchase: {path} has rows of {features.shape[1:]} features, expected "
            f"{PURCHASE_FEATURES} (label first, then 600 binary features); for other tables "
            "use the 'csv' or 'npz' data set"
        )
    rng = np.random.default_rng(int(params["seed"]))
    samples = int(params["samples"])
    if samples > features.shape[0]:
        raise ValueError(f"purchase: samples={samples} exceeds the {features.shape[0]} rows")
    if samples:
        keep = np.sort(rng.choice(features.shape[0], samples, replace=False))
        features, raw_labels = features[keep], raw_labels[keep]
    labels, found = _dense_labels("purchase", np.asarray(raw_labels))
    classes = int(params["classes"])
    if classes > features.shape[0]:
        raise ValueError(f"purchase: classes={classes} exceeds the {features.shape[0]} rows")
    origin = "file labels"
    if classes and classes != found:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=classes, n_init=1, random_state=int(params["seed"]))
        labels = km.fit_predict(features.astype(np.float32)).astype(np.int64)
        origin = f"k-means labels (k={classes}, seed {params['seed']})"
    return _arrays(
        features,
        labels,
        classes or found,
        f"Purchase ({features.shape[0]} customers x 600 binary features, {origin}) from {path}",
        "none (binary 0/1 features)",
    )


# ---- csv -----------------------------------------------------------------------------


def _label_column(columns: list[Any], wanted: str, header: bool) -> Any:
    if header and wanted in columns:
        return wanted
    try:
        position = int(wanted)
    except ValueError:
        raise ValueError(
            f"csv: label_column {wanted!r} is not a column; columns: {columns[:20]}"
        ) from None
    if not -len(columns) <= position < len(columns):
        raise ValueError(f"csv: label_column {position} is out of range ({len(columns)} columns)")
    return columns[position]


def load_csv(params: Mapping[str, Any]) -> DatasetArrays:
    import numpy as np
    import pandas as pd

    path = _path("csv", params, "a delimited text file with a label column")
    header = bool(params["header"])
    table = pd.read_csv(path, sep=params["delimiter"], header=0 if header else None)
    label = _label_column(list(table.columns), str(params["label_column"]), header)
    names = {str(c): c for c in table.columns}
    wanted = [str(c) for c in params["drop_columns"]]
    unknown = sorted(set(wanted) - set(names))
    drop = [names[c] for c in wanted if c in names]
    if unknown:
        raise ValueError(f"csv: drop_columns {unknown} are not columns of {path}")
    features = table.drop(columns=[label, *drop])
    if table[label].isna().any() or features.isna().any().any():
        bad = [str(c) for c in table.columns if table[c].isna().any()]
        raise ValueError(f"csv: missing values in columns {bad} of {path}")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    text = [c for c in text if not pd.api.types.is_bool_dtype(features[c])]
    if text and params["categorical"] == "error":
        raise ValueError(f"csv: non-numeric columns {text}; set categorical='onehot' or drop them")
    if text:
        features = pd.get_dummies(features, columns=text)
    if features.shape[1] == 0:
        raise ValueError(f"csv: {path} has no feature column besides the label")
    x = features.to_numpy(dtype=np.float64)
    if params["standardise"]:
        x = _standardise(x)
    y, classes = _dense_labels("csv", table[label].to_numpy())
    return _arrays(
        x,
        y,
        classes,
        f"CSV {path.name}: {x.shape[0]} rows, {x.shape[1]} features, label {label!r}",
        "per-feature standardised over the pool" if params["standardise"] else "none",
    )


# ---- npz -----------------------------------------------------------------------------


def load_npz(params: Mapping[str, Any]) -> DatasetArrays:
    import numpy as np

    path = _path("npz", params, "a NumPy .npz archive with feature and label arrays")
    with np.load(path) as archive:
        for key in ("x_key", "y_key"):
            if params[key] not in archive.files:
                raise ValueError(
                    f"npz: {key}={params[key]!r} is not in {path}; it holds {archive.files}"
                )
        x = archive[params["x_key"]].astype(np.float64)
        raw = archive[params["y_key"]]
    if x.ndim < 2 or x.shape[0] != raw.shape[0]:
        raise ValueError(f"npz: features {x.shape} and labels {raw.shape} do not match row by row")
    if params["standardise"]:
        x = _standardise(x.reshape(x.shape[0], -1)).reshape(x.shape)
    y, classes = _dense_labels("npz", raw)
    return _arrays(
        x,
        y,
        classes,
        f"NPZ {path.name}: {x.shape[0]} examples of shape {tuple(x.shape[1:])}",
        "per-feature standardised over the pool" if params["standardise"] else "none",
    )


_PATH_HELP = "path of the file (required)"
_STANDARDISE = Param("standardise", True, "z-score each feature over the pool")


@hookimpl
def unlearnbench_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="purchase",
            load=load_purchase,
            params=(
                Param("path", "", "dataset_purchase CSV (label first) or .npz (features, labels)"),
                Param(
                    "classes",
                    100,
                    "number of classes; differs from the file's labels -> k-means relabelling "
                    "(paper 000's Purchase-10/20/50/100); 0 keeps the file's labels",
                    minimum=0,
                ),
                Param(
                    "samples",
                    0,
                    "keep a seeded random subset of this many rows (0 = all)",
                    minimum=0,
                ),
                Param(
                    "seed",
                    0,
                    "seed of the row subset and of k-means",
                    minimum=0,
                    maximum=2**32 - 1,  # numpy's and scikit-learn's seed range
                ),
            ),
            description=(
                "Purchase-100 of Shokri et al. (600 binary features) from a local file; "
                "k-means relabelling to Purchase-10/20/50 as in the GAN-unlearning paper."
            ),
        ),
        DatasetSpec(
            name="csv",
            load=load_csv,
            params=(
                Param("path", "", _PATH_HELP),
                Param("label_column", "label", "name (or 0-based position) of the label column"),
                Param("header", True, "the first row names the columns"),
                Param("delimiter", ",", "field separator"),
                Param("drop_columns", [], "columns to ignore (ids, leaks)", type=list),
                Param(
                    "categorical",
                    "onehot",
                    "text columns: one-hot encode them, or refuse the file",
                    choices=("onehot", "error"),
                ),
                _STANDARDISE,
            ),
            description="Any CSV table with a label column (text columns one-hot encoded).",
        ),
        DatasetSpec(
            name="npz",
            load=load_npz,
            params=(
                Param("path", "", _PATH_HELP),
                Param("x_key", "x", "name of the feature array (n, ...)"),
                Param("y_key", "y", "name of the label array (n,) or one-hot (n, k)"),
                _STANDARDISE,
            ),
            description="Any NumPy .npz archive with a feature and a label array.",
        ),
    ]
