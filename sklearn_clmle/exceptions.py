"""Warnings and errors of sklearn_clmle."""

__all__ = ["InconsistentVersionWarning"]


class InconsistentVersionWarning(UserWarning):
    """A model is loaded with another sklearn_clmle version than it was saved with.

    Raised (as a warning) by unpickling and by :func:`sklearn_clmle.load`.
    The model usually still works, but nothing guarantees it; refit it, or
    load it with the version named in the message.

    Parameters
    ----------
    message : str
        The warning text.
    estimator_name : str, default=None
        Class of the loaded estimator.
    original_version : str, default=None
        sklearn_clmle version that saved it.
    current_version : str, default=None
        sklearn_clmle version loading it.

    Attributes
    ----------
    estimator_name : str
        Class of the loaded estimator.
    original_version : str
        sklearn_clmle version that saved it.
    current_version : str
        sklearn_clmle version loading it.
    """

    def __init__(self, message, *, estimator_name=None, original_version=None,
                 current_version=None):
        super().__init__(message)
        self.estimator_name = estimator_name
        self.original_version = original_version
        self.current_version = current_version
