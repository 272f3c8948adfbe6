"""The package version (its one source), stamped on pickled and saved estimators.

``sklearn_clmle.__version__`` re-exports :data:`__version__`, and the
project metadata reads it from here (``pyproject.toml``, dynamic version).
"""

import warnings

from sklearn_clmle.exceptions import InconsistentVersionWarning

__version__ = "0.1.0"

#: Key of the version stamp in a pickled estimator's state.
PICKLE_VERSION_KEY = "_sklearn_clmle_version"


def package_version():
    """The running package's version, :data:`__version__`."""
    return __version__


def warn_if_other_version(estimator_name, original_version):
    """Warn :class:`InconsistentVersionWarning` unless the versions agree."""
    current = package_version()
    if original_version == current:
        return
    warnings.warn(
        InconsistentVersionWarning(
            f"Loading {estimator_name} saved with sklearn_clmle "
            f"{original_version} using sklearn_clmle {current}. This might break "
            "or give invalid results; refit the model or load it with "
            f"sklearn_clmle {original_version}.",
            estimator_name=estimator_name,
            original_version=original_version,
            current_version=current,
        ),
        stacklevel=3,
    )


class VersionStampMixin:
    """Stamp pickles with the package version; warn when unpickled by another.

    Chains to scikit-learn's ``BaseEstimator.__getstate__``/``__setstate__``,
    so their behaviour (and scikit-learn's own version check, where it
    applies) is kept. A pickle without a stamp (written before stamps
    existed) loads without a warning.
    """

    def __getstate__(self):
        # BaseEstimator may hand back the instance __dict__ itself: copy it.
        state = dict(super().__getstate__() or {})
        state[PICKLE_VERSION_KEY] = package_version()
        return state

    def __setstate__(self, state):
        state = dict(state)
        original = state.pop(PICKLE_VERSION_KEY, None)
        if original is not None:
            warn_if_other_version(type(self).__name__, original)
        super().__setstate__(state)
