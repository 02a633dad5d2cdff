"""Classifiers over masked data: `nn` (the paper's MLP, Ignite-trained), `rf`, `adaboost` (scikit-learn)."""
from veil.classifiers.base import CLASSIFIERS, MaskedClassifier, classifier_class, load_classifier, register_classifier
from veil.classifiers.ensemble import AdaBoost, RandomForest
from veil.classifiers.nn import NNClassifier

__all__ = ["CLASSIFIERS", "MaskedClassifier", "classifier_class", "load_classifier", "register_classifier",
           "AdaBoost", "RandomForest", "NNClassifier"]
