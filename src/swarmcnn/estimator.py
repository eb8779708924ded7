"""swarmcnn as a scikit-learn classifier: `fit(X, y)` on an array of pictures, clips or signals, then `predict`.

As skorch does for plain PyTorch modules: scikit-learn's conventions (parameters in `__init__`, learned
attributes ending in `_`, `clone`, `get_params`, `GridSearchCV`, `Pipeline`, `cross_val_score`) over swarmcnn's
own training and search, so that the fitted `model_` is the same `TrainedModel` the CLI saves (`model_.save(dir)`
writes a model directory `swarmcnn predict` and `swarmcnn export` take).

X is read as an .npz file's field 'x' is (`swarmcnn.data.npz`): (N, H, W) gray pictures, (N, H, W, C) or
(N, C, H, W) pictures, (N, T, H, W) gray clips, (N, T, H, W, C) or (N, C, T, H, W) clips, (N, L) signals of
one channel, and with layout="NCL" signals (N, C, L) (sktime's "numpy3D"); `layout` settles the shapes that
could be either. Values are stored pixels (uint8 0..255, or any integers or floats), or a signal's values (NaN
where missing, filled along time): the network normalises them with the training set's mean and deviation per
channel (and for signals with normalize="series" each series on its own first).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from swarmcnn.errors import DataError, SwarmCNNError

DEFAULT_EPOCHS = 10  # with arch; a search's final training gets its own default (swarmcnn.search.loop)
SEARCH_VAL_FRACTION = 0.15  # a search scores every candidate on the validation split


class InputError(DataError, ValueError):
    """X or y that cannot be read: swarmcnn's DataError, and the ValueError scikit-learn's conventions expect."""


class SwarmCNNClassifier(ClassifierMixin, BaseEstimator):
    """A CNN classifier of pictures, video clips or signals: trains `arch`, or finds one by swarm search.

    Parameters
    ----------
    arch : spec text ("conv16x3 bn relu maxpool2 fc64 relu") or design name ("lenet5", "vgg-small") to train;
        None: search for one (`swarmcnn.search`) under `budget` seconds or `evaluations` candidates (neither: 40).
    epochs : training epochs; None: 10 with arch, and with a search as many as the search gives its final model.
    budget, evaluations : the search's limits (only without arch).
    lr, batch_size, augment, flip, seed, device, precision : as the options of `swarmcnn train` (None: its
        defaults). A seed repeats a fit on CPU exactly (a search by budget depends on the machine's pace).
    val_fraction : share of X held out for validation. None: nothing with arch (every sample trains, as
        scikit-learn estimators do), 0.15 with a search (which scores its candidates on it).
    layout : how to read X where its shape is ambiguous: None (from the shape), or one of "NHW", "NHWC",
        "NCHW", "NTHW", "NTHWC", "NCTHW" (N samples, C channels, T frames), "NL", "NCL" (signals of L instants).
    normalize : for signals: "channel" (default), or "series" to bring each series to mean 0 and deviation 1
        first (the UCR baselines' z-normalisation), at predict too.
    run_dir : where a search writes its run (journal, best model); None: a temporary folder, removed after fit.
    verbose : show the training's (or the search's) progress.
    members : trainings of arch from seeds seed, seed+1, ..., their class probabilities averaged in one model
        (`swarmcnn.ensemble`; 1 to 5); a search decides its final model's own from its budget.

    Attributes
    ----------
    classes_ : the labels, sorted; `predict` returns them, of the type given to `fit`.
    n_features_in_ : values per sample of X (an image of H x W x C has H*W*C).
    input_shape_ : the network's input, (C, H, W), (C, T, H, W) or (C, L).
    layout_ : how X was read (`predict` reads X the same way).
    model_ : the trained `swarmcnn.TrainedModel` (`model_.save(dir)`, `model_.module`).
    spec_ : the architecture trained, as spec text.
    search_ : with a search, what it found: best_spec, best_val_accuracy, evaluations, seconds and run_dir (None
        for a temporary one).
    """

    def __init__(
        self,
        arch: str | None = None,
        *,
        epochs: int | None = None,
        budget: float | None = None,
        evaluations: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        augment: bool = False,
        flip: bool = False,
        seed: int = 0,
        device: str = "auto",
        precision: str = "auto",
        val_fraction: float | None = None,
        layout: str | None = None,
        run_dir: str | None = None,
        verbose: bool = False,
        normalize: str = "channel",
        members: int = 1,
    ) -> None:
        self.arch = arch
        self.epochs = epochs
        self.budget = budget
        self.evaluations = evaluations
        self.lr = lr
        self.batch_size = batch_size
        self.augment = augment
        self.flip = flip
        self.seed = seed
        self.device = device
        self.precision = precision
        self.val_fraction = val_fraction
        self.layout = layout
        self.run_dir = run_dir
        self.verbose = verbose
        self.normalize = normalize
        self.members = members

    def fit(self, X, y) -> SwarmCNNClassifier:
        """Train arch on (X, y), or search for the architecture and train the best; labels may be of any type."""
        from swarmcnn.data import DataConfig, from_arrays
        from swarmcnn.data.npz import resolve_layout

        self._check_params()
        if y is None:
            raise InputError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        x, y = _array(X, "X"), _array(y, "y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        check_classification_targets(y)
        classes, labels = np.unique(y, return_inverse=True)
        with _as_input_error():
            layout = resolve_layout(_origin(), self.layout, x.shape)
        val_fraction = self.val_fraction
        if val_fraction is None:
            val_fraction = 0.0 if self.arch is not None else SEARCH_VAL_FRACTION
        # no test split: scoring is the caller's (cross_val_score, GridSearchCV, score on held-out data); the
        # split's seed is scikit-learn's random_state, 0..2**32-1
        with _as_input_error():
            splits = DataConfig(val_fraction=val_fraction, test_fraction=0.0, split_seed=self.seed % 2**32,
                                normalize=self.normalize)
        with _as_input_error():
            data = from_arrays(
                x,
                labels.reshape(-1),
                class_names=_class_names(classes),
                layout=layout,
                val_fraction=splits.val_fraction,
                test_fraction=splits.test_fraction,
                seed=splits.split_seed,
                normalize=splits.normalize,
            )
        if self.arch is not None:
            model, search = self._train(data, splits), None
        else:
            model, search = self._search(data, splits)
        self.classes_ = classes
        self.layout_ = layout
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        self.input_shape_ = tuple(model.input_shape)
        self.model_ = model
        self.spec_ = str(model.spec)
        if search is not None:
            self.search_ = search
        else:
            vars(self).pop("search_", None)  # of an earlier fit that searched
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (N, len(classes_)), columns in the order of classes_."""
        import torch

        check_is_fitted(self)
        x = self._inputs(X)
        probabilities = self.model_.predict_proba(torch.from_numpy(x), self._hardware())
        return probabilities.double().numpy()

    def predict_log_proba(self, X) -> np.ndarray:
        """The logarithms of predict_proba (-inf where a probability is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable label of each sample, as given to fit."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    # -- training ---------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        from swarmcnn.ensemble import check_members

        if self.arch is not None and (self.budget is not None or self.evaluations is not None):
            raise SwarmCNNError(
                f"budget and evaluations limit a search (arch=None); arch={self.arch!r} is trained for its epochs"
            )
        check_members(self.members, "members=")
        if self.arch is None and self.members != 1:
            raise SwarmCNNError(f"members={self.members} trains arch that many times; a search (arch=None) decides "
                                "its final model's members from its budget")

    def _train(self, data, splits):
        from swarmcnn.designs import spec_of
        from swarmcnn.package import learned, train_members
        from swarmcnn.train import TrainConfig

        config = TrainConfig(
            epochs=DEFAULT_EPOCHS if self.epochs is None else self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            augment=self.augment,
            flip=self.flip,
            seed=self.seed,
            device=self.device,
            precision=self.precision,
        )
        model, results, _ = train_members(spec_of(self.arch), data, config, self.members, self._train_reporter(),
                                          splits)
        if not learned(results[-1]):  # train_members stops at the first training that did not learn
            raise SwarmCNNError(f"training {results[-1].status}: {results[-1].reason}; try a lower lr, or 'bn' in "
                                "arch")
        result = results[0]
        if result.not_learning:
            warnings.warn(
                f"the training loss stayed at the chance level ({result.chance_loss:.3f}) up to epoch "
                f"{result.not_learning}: the network is not learning; try a lower lr (a third of it, say) or "
                "'bn' after each convolution",
                RuntimeWarning,
                stacklevel=3,
            )
        return model

    def _search(self, data, splits):
        from swarmcnn.checkpoint import load
        from swarmcnn.search.evaluate import EvaluationConfig
        from swarmcnn.search.loop import Search, SearchConfig

        evaluation = EvaluationConfig(
            lr=self.lr, batch_size=self.batch_size, seed=self.seed, device=self.device, precision=self.precision
        )
        config = SearchConfig(
            source=data.source,
            evaluations=self.evaluations,
            budget_seconds=self.budget,
            seed=self.seed,
            final_epochs=self.epochs,
            augment=self.augment,
            flip=self.flip,
            evaluation=evaluation,
            data=splits,
        )
        scratch = None if self.run_dir is not None else Path(tempfile.mkdtemp(prefix="swarmcnn-search-"))
        run_dir = Path(self.run_dir) if scratch is None else scratch / "run"
        try:
            search = Search.start(run_dir, config, self._search_reporter(), data=data)
            try:
                summary = search.run()
            finally:
                search.journal.close()
            found = {
                "best_spec": summary.best_spec,
                "best_val_accuracy": summary.best_val_accuracy,
                "evaluations": summary.evaluations,
                "seconds": summary.seconds,
                "run_dir": None if scratch is not None else str(run_dir),
            }
            return load(summary.model_dir), found
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _train_reporter(self):
        if not self.verbose:
            return None
        from swarmcnn.display import RichTrainReporter

        return RichTrainReporter()

    def _search_reporter(self):
        if not self.verbose:
            return None
        from swarmcnn.display import RichSearchReporter

        return RichSearchReporter()

    # -- prediction ---------------------------------------------------------------------------------------

    def _inputs(self, X) -> np.ndarray:
        """X read as at fit (layout_, the same conversion), as channels-first stored values of the network's shape."""
        from swarmcnn.data.npz import pictures, resolve_layout
        from swarmcnn.data.signals import prepared

        x = _array(X, "X")
        with _as_input_error():
            layout = resolve_layout(_origin(), self.layout_, x.shape)
            x = pictures(_origin(), x, layout)
            if x.ndim == 3:  # signals: missing values filled, as at fit
                x = prepared(x, None, "X")[0]
        if tuple(x.shape[1:]) != self.input_shape_:
            raise InputError(
                f"X holds samples of shape {tuple(x.shape[1:])} read as {layout}, but the classifier was fitted on "
                f"{self.input_shape_}"
            )
        return np.require(x, requirements=("C", "W"))

    def _hardware(self):
        """Where to predict: the device of fit, in fp32 (on CPU: exactly what the saved model predicts)."""
        from swarmcnn.hardware import resolve

        hardware = resolve(self.device, "fp32")
        return None if hardware.device.type == "cpu" else hardware

    # -- scikit-learn protocol ----------------------------------------------------------------------------

    def __sklearn_tags__(self):
        """Pictures and clips, never a table: scikit-learn's common checks that feed 2-D X do not apply."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.arch is None and self.budget is not None  # a budget follows the clock
        return tags

    def _more_tags(self) -> dict:  # scikit-learn < 1.6
        return {"X_types": ["3darray"], "non_deterministic": self.arch is None and self.budget is not None}

    def __getstate__(self) -> dict:
        """Pickle the model as model.json's text and safetensors bytes, never as pickled tensors or modules."""
        state = dict(super().__getstate__())
        model = state.get("model_")
        if model is not None:
            description, weights = model.to_bytes()
            state["model_"] = {"description": description, "weights": weights}
        return state

    def __setstate__(self, state: dict) -> None:
        from swarmcnn.checkpoint import from_bytes

        model = state.get("model_")
        if isinstance(model, dict):
            state = {**state, "model_": from_bytes(model["description"], model["weights"], "pickled classifier")}
        super().__setstate__(state)


def _origin():
    from swarmcnn.data.npz import Origin

    return Origin("the arrays", file=False)


@contextlib.contextmanager
def _as_input_error() -> Iterator[None]:
    """A DataError about X or y raised as an InputError, which scikit-learn's callers catch as a ValueError."""
    try:
        yield
    except DataError as error:
        if isinstance(error, InputError):
            raise
        raise InputError(str(error)) from None


def _array(values, name: str) -> np.ndarray:
    """values as a NumPy array (a torch tensor, a list of pictures), refused in one line when ragged or sparse."""
    if hasattr(values, "detach"):  # a torch tensor, wherever it lives
        values = values.detach().cpu().numpy()
    if hasattr(values, "toarray"):  # scipy.sparse: pictures are dense
        raise InputError(f"{name} is a sparse matrix; pictures and clips must be dense arrays (sparse input is "
                         "not supported)")
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as error:
        raise InputError(f"{name} cannot be read as one array: {error}") from None


def _class_names(classes: np.ndarray) -> tuple[str, ...]:
    """The labels as the texts a model directory stores; labels whose texts coincide are told apart by index."""
    names = tuple(str(c) for c in classes.tolist())
    if len(set(names)) < len(names):
        return tuple(f"{i}: {name}" for i, name in enumerate(names))
    return names

