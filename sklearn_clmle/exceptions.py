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

    Examples
    --------
    Turn it into an error where a silently different model is not acceptable:

    >>> import warnings
    >>> from sklearn_clmle import InconsistentVersionWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", InconsistentVersionWarning)
    ...     try:
    ...         warnings.warn(InconsistentVersionWarning(
    ...             "saved by 0.0.1", original_version="0.0.1", current_version="0.1.0"))
    ...     except InconsistentVersionWarning as w:
    ...         print(w.original_version)
    0.0.1
    """

    def __init__(self, message, *, estimator_name=None, original_version=None,
                 current_version=None):
        super().__init__(message)
        self.estimator_name = estimator_name
        self.original_version = original_version
        self.current_version = current_version
