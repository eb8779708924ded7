"""SwarmCNNClassifier: scikit-learn's conventions over swarmcnn's training and search, on pictures and clips."""

from __future__ import annotations

import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks

import swarmcnn
from swarmcnn import SwarmCNNClassifier
from swarmcnn.errors import SwarmCNNError
from swarmcnn.estimator import InputError

SMALL = "conv4x3 relu maxpool2 fc16 relu"  # trains in a fraction of a second on a few hundred digits
GOOD = "conv16x3 bn relu maxpool2 fc64 relu"
NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def digits():
    """sklearn's digits as pictures: (1797, 8, 8) floats 0..16, labels 0..9."""
    bunch = load_digits()
    return bunch.images, bunch.target


@pytest.fixture(scope="module")
def few(digits):
    """300 digits, for the tests of behaviour rather than accuracy."""
    return digits[0][:300], digits[1][:300]


def _small(**params) -> SwarmCNNClassifier:
    return SwarmCNNClassifier(SMALL, epochs=1, device="cpu", **params)


def test_cross_val_score_on_digits_pictures_is_above_0_9(digits):
    scores = cross_val_score(SwarmCNNClassifier(GOOD, epochs=3, device="cpu"), *digits, cv=3)
    assert scores.mean() > 0.9, scores


def test_grid_search_over_two_specs_scores_both_and_refits_the_best(digits):
    x, y = digits[0][:600], digits[1][:600]
    search = GridSearchCV(_small(), {"arch": [SMALL, GOOD]}, cv=2).fit(x, y)
    assert set(search.cv_results_["param_arch"]) == {SMALL, GOOD}
    assert search.best_estimator_.spec_ == search.best_params_["arch"]
    assert search.best_estimator_.predict(x[:5]).shape == (5,)


def test_string_labels_round_trip_through_fit_predict_and_classes(few):
    x, y = few[0], NAMES[few[1]]
    classifier = _small().fit(x, y)
    assert list(classifier.classes_) == sorted(NAMES) and classifier.classes_.dtype == y.dtype
    assert set(classifier.predict(x)) <= set(NAMES)
    assert classifier.model_.class_names == tuple(sorted(NAMES))


def test_labels_of_any_type_keep_their_type(few):
    x, y = few
    for labels in (y + 100, y.astype(float), NAMES[y].astype(object)):
        predicted = _small().fit(x, labels).predict(x[:4])
        assert predicted.dtype == np.asarray(labels).dtype and set(predicted) <= set(labels.tolist())


def test_clone_keeps_the_parameters_and_none_of_the_fit(few):
    fitted = _small(seed=3, lr=0.01).fit(*few)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "model_") and not hasattr(copy, "classes_")


class _NoTorch(pickle.Unpickler):
    """Unpickles nothing of torch: what a pickled classifier holds of its model is JSON text and bytes."""

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "torch":
            raise AssertionError(f"the pickle holds {module}.{name}")
        return super().find_class(module, name)


def test_pickled_classifier_holds_json_and_safetensors_and_predicts_the_same(few):
    x, y = few[0], NAMES[few[1]]
    classifier = _small().fit(x, y)
    data = pickle.dumps(classifier)
    restored = _NoTorch(io.BytesIO(data)).load()
    assert np.array_equal(restored.predict_proba(x), classifier.predict_proba(x))
    assert np.array_equal(restored.predict(x), classifier.predict(x))
    assert restored.get_params() == classifier.get_params()
    assert isinstance(restored.model_, swarmcnn.TrainedModel)


def test_damaged_pickled_weights_are_refused_as_a_model_directory_would_be(few):
    state = _small().fit(*few).__getstate__()
    state["model_"]["weights"] = state["model_"]["weights"][:-40]
    with pytest.raises(SwarmCNNError, match="pickled classifier"):
        SwarmCNNClassifier().__setstate__(state)


def test_pipeline_with_a_step_before_the_classifier(few):
    x, y = few
    scale = FunctionTransformer(lambda x: np.asarray(x, np.float32) * 16)  # 0..16 -> 0..256
    pipeline = Pipeline([("scale", scale), ("cnn", _small())]).fit(x, y)
    alone = _small().fit(x.astype(np.float32) * 16, y)
    assert np.array_equal(pipeline.predict_proba(x), alone.predict_proba(x.astype(np.float32) * 16))
    assert pipeline.score(x, y) == alone.score(x.astype(np.float32) * 16, y)


def test_design_name_as_arch_trains_that_design(few):
    classifier = SwarmCNNClassifier("lenet5", epochs=1, device="cpu").fit(*few)
    assert classifier.spec_ == str(swarmcnn.parse(swarmcnn.designs.DESIGNS["lenet5"]))


def test_without_arch_a_search_of_two_evaluations_picks_a_spec_and_removes_its_temporary_run(few, tmp_path):
    classifier = SwarmCNNClassifier(evaluations=2, epochs=1, device="cpu").fit(*few)
    assert classifier.search_["evaluations"] == 2 and classifier.search_["run_dir"] is None
    assert classifier.spec_ == classifier.search_["best_spec"]
    assert classifier.predict(few[0][:5]).shape == (5,)
    kept = SwarmCNNClassifier(evaluations=1, epochs=1, device="cpu", run_dir=str(tmp_path / "run")).fit(*few)
    assert (tmp_path / "run" / "best" / "model.json").is_file() and kept.search_["run_dir"] == str(tmp_path / "run")


def test_budget_with_arch_is_refused_before_any_work(few):
    with pytest.raises(SwarmCNNError, match="budget and evaluations limit a search"):
        SwarmCNNClassifier(SMALL, budget=10).fit(*few)


def test_video_clips_are_classified_with_3d_layers():
    data = swarmcnn.load_data("moving-digits")
    clips = data.train.x[:, 0].numpy()  # (N, T, H, W): gray clips
    labels = np.array(data.class_names)[data.train.y.numpy()]
    classifier = _small(layout="NTHW").fit(clips, labels)
    assert classifier.input_shape_ == (1, *clips.shape[1:]) and classifier.layout_ == "NTHW"
    assert isinstance(classifier.model_.module[0], torch.nn.Conv3d)
    assert classifier.predict_proba(clips[:4]).shape == (4, 4)


# -- scikit-learn's common checks, and their equivalents on pictures ---------------------------------------

# The checks of sklearn.utils.estimator_checks that hold for an image classifier, run as they are.
APPLICABLE = {
    "check_estimator_cloneable": "clone",
    "check_estimator_tags_renamed": "tags",
    "check_valid_tag_types": "tags",
    "check_estimator_repr": "repr",
    "check_no_attributes_set_in_init": "__init__ stores its parameters only",
    "check_do_not_raise_errors_in_init_or_set_params": "parameters are checked in fit",
    "check_mixin_order": "ClassifierMixin before BaseEstimator",
    "check_parameters_default_constructible": "every parameter has a default",
    "check_get_params_invariance": "get_params",
    "check_set_params": "set_params",
    "check_estimators_unfitted": "NotFittedError before fit, whatever X",
    "check_requires_y_none": "y=None is refused before X is read",
    "check_classifiers_regression_target": "continuous y is refused before X is read",
    "check_supervised_y_no_nan": "NaN in y is refused before X is read",
    "check_fit1d": "1-D X is refused with a ValueError",
    "check_estimator_sparse_tag": "sparse X is refused saying so",
    "check_estimator_sparse_array": "sparse X is refused saying so",
    "check_estimator_sparse_matrix": "sparse X is refused saying so",
}
TABULAR = "feeds tabular X of shape (N, features), which a picture classifier refuses; tested on pictures by "
# The checks that do not hold, and why: the behaviour each one checks is tested here on pictures where it applies.
SKIPPED = {
    "check_fit_score_takes_y": TABULAR + "test_fit_returns_self_and_refitting_with_the_same_seed_predicts_the_same",
    "check_estimators_overwrite_params": TABULAR + "test_fit_returns_self_and_refitting_...",
    "check_dont_overwrite_parameters": TABULAR + "test_fit_returns_self_and_refitting_...",
    "check_estimators_fit_returns_self": TABULAR + "test_fit_returns_self_and_refitting_...",
    "check_fit_idempotent": TABULAR + "test_fit_returns_self_and_refitting_...",
    "check_dict_unchanged": TABULAR + "test_fit_returns_self_and_refitting_...",
    "check_readonly_memmap_input": TABULAR + "test_pictures_of_any_number_type_in_read_only_memory_are_taken",
    "check_estimators_dtypes": TABULAR + "test_pictures_of_any_number_type_in_read_only_memory_are_taken",
    "check_dtype_object": TABULAR + "test_labels_of_any_type_keep_their_type",
    "check_f_contiguous_array_estimator": TABULAR + "test_pictures_of_any_number_type_in_read_only_memory_...",
    "check_classifier_data_not_an_array": TABULAR + "test_pictures_of_any_number_type_in_read_only_memory_...",
    "check_complex_data": TABULAR + "test_empty_nan_complex_and_one_class_inputs_are_refused_as_value_errors",
    "check_estimators_empty_data_messages": TABULAR + "test_empty_nan_complex_and_one_class_inputs_...",
    "check_estimators_nan_inf": TABULAR + "test_empty_nan_complex_and_one_class_inputs_...",
    "check_classifiers_one_label": TABULAR + "test_empty_nan_complex_and_one_class_inputs_...",
    "check_fit2d_1sample": TABULAR + "test_empty_nan_complex_and_one_class_inputs_...",
    "check_fit2d_1feature": TABULAR + "test_n_features_in_counts_the_values_of_a_sample_and_predict_refuses_others",
    "check_fit2d_predict1d": TABULAR + "test_n_features_in_counts_the_values_of_a_sample_and_predict_refuses_others",
    "check_n_features_in": TABULAR + "test_n_features_in_counts_the_values_of_a_sample_and_predict_refuses_others",
    "check_n_features_in_after_fitting": TABULAR + "test_n_features_in_counts_the_values_of_a_sample_...",
    "check_fit_check_is_fitted": TABULAR + "test_n_features_in_counts_the_values_of_a_sample_...",
    "check_positive_only_tag_during_fit": TABULAR + "test_pictures_of_any_number_type_in_read_only_memory_...",
    "check_estimators_pickle": TABULAR + "test_pickled_classifier_holds_json_and_safetensors_and_predicts_the_same",
    "check_pipeline_consistency": TABULAR + "test_pipeline_with_a_step_before_the_classifier",
    "check_classifiers_classes": TABULAR + "test_string_labels_round_trip_through_fit_predict_and_classes",
    "check_supervised_y_2d": TABULAR + "test_labels_of_one_column_are_taken_as_one_label_per_sample",
    "check_classifiers_train": TABULAR + "test_cross_val_score_on_digits_pictures_is_above_0_9",
    "check_methods_sample_order_invariance": TABULAR + "test_predictions_do_not_depend_on_order_or_batch",
    "check_methods_subset_invariance": TABULAR + "test_predictions_do_not_depend_on_order_or_batch",
    "check_array_api_input": "array API namespaces (CuPy, PyTorch arrays through array_api_compat) of tabular X",
    "check_classifiers_one_label_sample_weights": "needs fit(sample_weight=...), which this classifier does not take",
    "check_estimators_partial_fit_n_features": "needs partial_fit, which this classifier does not have",
    "check_non_transformer_estimators_n_iter": "needs n_iter_, which this classifier does not have",
    "check_decision_proba_consistency": "needs decision_function, which this classifier does not have",
}


class _ClaimsTabular(SwarmCNNClassifier):
    """The classifier as scikit-learn would check a tabular one: to list every check it has."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


def _checks(estimator) -> list[tuple[str, object]]:
    generator = getattr(estimator_checks, "estimator_checks_generator", None)
    if generator is None:
        pytest.skip("scikit-learn < 1.6 has no estimator_checks_generator")
    return [(getattr(check, "func", check).__name__, check) for _, check in generator(estimator, mark=None)]


def test_every_check_of_scikit_learn_is_run_or_skipped_for_a_stated_reason():
    names = {name for name, _ in _checks(_ClaimsTabular(SMALL))}
    unconsidered = names - set(APPLICABLE) - set(SKIPPED)
    assert not unconsidered, f"checks of this scikit-learn not yet run or skipped: {sorted(unconsidered)}"
    assert not set(APPLICABLE) & set(SKIPPED)


def test_the_checks_of_scikit_learn_that_apply_to_an_image_classifier_pass():
    estimator = _small()
    ran = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, check in _checks(_ClaimsTabular(SMALL)):
            if name in APPLICABLE:
                check(estimator)
                ran.add(name)
    assert ran == set(APPLICABLE)


def test_tags_say_pictures_not_tables():
    tags = _small().__sklearn_tags__()
    assert not tags.input_tags.two_d_array and tags.input_tags.three_d_array
    assert not tags.non_deterministic and SwarmCNNClassifier(budget=60).__sklearn_tags__().non_deterministic


def test_fit_returns_self_and_refitting_with_the_same_seed_predicts_the_same(few):
    x, y = few
    before = x.copy()
    classifier = _small(seed=5)
    params = classifier.get_params()
    assert classifier.fit(x, y) is classifier
    first = classifier.predict_proba(x)
    state = {k: v for k, v in vars(classifier).items() if k.endswith("_") and k != "model_"}
    classifier.fit(x, y)
    assert np.array_equal(classifier.predict_proba(x), first)
    assert classifier.get_params() == params and np.array_equal(x, before)  # neither parameters nor X change
    assert vars(classifier).keys() >= state.keys()
    classifier.predict(x)
    assert {k: v for k, v in vars(classifier).items() if k.endswith("_") and k != "model_"}.keys() == state.keys()


def test_predictions_do_not_depend_on_order_or_batch(few):
    x, y = few
    classifier = _small().fit(x, y)
    whole = classifier.predict_proba(x)
    order = np.random.default_rng(0).permutation(len(x))
    assert np.allclose(classifier.predict_proba(x[order]), whole[order], atol=1e-6)
    assert np.allclose(np.concatenate([classifier.predict_proba(x[i : i + 7]) for i in range(0, 300, 7)]), whole,
                       atol=1e-6)
    assert np.allclose(whole.sum(1), 1) and np.array_equal(classifier.predict(x), classifier.classes_[whole.argmax(1)])


def test_pictures_of_any_number_type_in_read_only_memory_are_taken(few, tmp_path):
    x, y = few
    for kind in (np.uint8, np.int64, np.float32, np.float64):
        classifier = _small().fit(x.astype(kind), y)
        assert classifier.predict_proba(x.astype(kind)[:3]).shape == (3, 10)
    stored = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=x.shape)
    stored[:] = x
    del stored
    read_only = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert _small().fit(read_only, y).predict(read_only[:2]).shape == (2,)
    assert _small().fit(np.asfortranarray(x), list(y)).predict(x.tolist()[:2]).shape == (2,)  # lists, Fortran order
    negative = _small().fit(x - 8, y)  # values need not be positive: the network normalises them
    assert negative.predict((x - 8)[:2]).shape == (2,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: (x[:0], y[:0]), "hold no samples"),
        (lambda x, y: (np.where(x == 0, np.nan, x), y), "NaN or infinite"),
        (lambda x, y: (np.where(x == 0, np.inf, x), y), "NaN or infinite"),
        (lambda x, y: (x + 1j, y), "expected integers or floats"),
        (lambda x, y: (x, np.zeros_like(y)), "only one class"),
        (lambda x, y: (x[:1], y[:1]), "only one class"),
        (lambda x, y: (x.reshape(-1), np.resize(y, x.size)), r"has shape \(19200,\)"),
    ],
)
def test_empty_nan_complex_and_one_class_inputs_are_refused_as_value_errors(few, change, message):
    with pytest.raises(ValueError, match=message) as caught:
        _small().fit(*change(*few))
    assert isinstance(caught.value, SwarmCNNError) and isinstance(caught.value, InputError)


def test_labels_of_one_column_are_taken_as_one_label_per_sample(few):
    x, y = few
    assert np.array_equal(_small().fit(x, y[:, None]).classes_, np.arange(10))


def test_n_features_in_counts_the_values_of_a_sample_and_predict_refuses_others(few):
    x, y = few
    classifier = _small().fit(x[..., None], y)  # (N, 8, 8, 1): channels last
    assert classifier.n_features_in_ == 64 and classifier.input_shape_ == (1, 8, 8) and classifier.layout_ == "NHWC"
    with pytest.raises(ValueError, match=r"fitted on \(1, 8, 8\)"):
        classifier.predict(np.zeros((2, 9, 9, 1)))
    with pytest.raises(ValueError, match="layout is 'NHWC' but array x has shape"):
        classifier.predict(x[:2])
    with pytest.raises(ValueError, match="sparse"):
        from scipy import sparse

        classifier.predict(sparse.csr_matrix(np.zeros((2, 64))))
