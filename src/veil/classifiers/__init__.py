"""Classifiers over masked data, as scikit-learn estimators: `nn` (the paper's MLP, Ignite-trained), `rf`, `adaboost`
(scikit-learn ensembles) over masked vectors; `cnn`, `convmixer`, `vit`, `descrambler-cnn` over image-shaped data."""
from veil.classifiers.base import (CLASSIFIERS, MaskedClassifier, classifier_class, load_classifier, preset_params,
                                   register_classifier)
from veil.classifiers.ensemble import AdaBoost, RandomForest
from veil.classifiers.images import CNNClassifier, ConvMixerClassifier, DescramblerCNNClassifier, ViTClassifier
from veil.classifiers.nn import NNClassifier

__all__ = ["CLASSIFIERS", "MaskedClassifier", "classifier_class", "load_classifier", "preset_params",
           "register_classifier", "AdaBoost", "RandomForest", "NNClassifier", "CNNClassifier", "ConvMixerClassifier",
           "ViTClassifier", "DescramblerCNNClassifier"]
