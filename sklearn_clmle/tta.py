"""Test-time augmentation: features of an image and of its mirror, concatenated.

The CLMLE paper describes each face by the features of the image and of its
horizontally flipped copy, side by side. :func:`flip_concatenate` does the
same for any fitted transformer whose input rows are flat images (e.g. a
``CLMLEEmbedder`` with ``backbone="cnn2d"``). The training-time counterpart
is :class:`sklearn_clmle.augment.HorizontalFlip`.
"""

import numbers

import numpy as np
from sklearn.utils.validation import check_array

__all__ = ["flip_concatenate"]


def _check_image_shape(image_shape):
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = None
    if (shape is None or len(shape) not in (2, 3)
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                       for s in shape)):
        raise ValueError(
            "image_shape must be a tuple of 2 or 3 positive ints, (height, width) or "
            f"(channels, height, width); got {image_shape!r}."
        )
    return tuple(int(s) for s in shape)


def flip_concatenate(transformer, X, *, image_shape):
    """Transform each image and its mirror, and put both feature rows side by side.

    Returns ``np.hstack([transformer.transform(X),
    transformer.transform(X_flipped)])``, where ``X_flipped`` holds each row
    of ``X`` read as an image of ``image_shape`` and mirrored left-right
    (the last axis reversed).

    Parameters
    ----------
    transformer : object with a ``transform`` method
        A fitted transformer, e.g. a ``CLMLEEmbedder``.
    X : array-like of shape (n_samples, n_features)
        Flat images: each row is an image of ``image_shape`` in row-major
        (C) order, channel first for colour images.
    image_shape : tuple of int
        ``(height, width)`` or ``(channels, height, width)``; its product
        must equal ``n_features``.

    Returns
    -------
    features : ndarray of shape (n_samples, 2 * n_output_features)
        The features of the images, then those of their mirrors.

    See Also
    --------
    sklearn_clmle.augment.HorizontalFlip : Random flips while training.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from sklearn_clmle.tta import flip_concatenate
    >>> identity = FunctionTransformer().fit(np.zeros((1, 4)))
    >>> flip_concatenate(identity, np.array([[1.0, 2.0, 3.0, 4.0]]), image_shape=(2, 2))
    array([[1., 2., 3., 4., 2., 1., 4., 3.]])
    """
    if not callable(getattr(transformer, "transform", None)):
        raise TypeError(
            "transformer must have a transform method (a fitted scikit-learn "
            f"transformer); got {type(transformer).__name__}."
        )
    image_shape = _check_image_shape(image_shape)
    X = check_array(X, dtype="numeric", input_name="X")
    n_pixels = int(np.prod(image_shape))
    if n_pixels != X.shape[1]:
        raise ValueError(
            f"image_shape={image_shape} holds {n_pixels} values but X has "
            f"n_features={X.shape[1]}; the product of image_shape must equal n_features."
        )
    images = X.reshape((X.shape[0],) + image_shape)
    X_flipped = np.ascontiguousarray(images[..., ::-1]).reshape(X.shape)
    return np.hstack([transformer.transform(X), transformer.transform(X_flipped)])
