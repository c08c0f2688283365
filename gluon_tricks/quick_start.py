"""A shorter start for every command: ``import mxnet`` imports scikit-learn (and with it
SciPy's statistics and pandas) when it is installed, only so that ``mxnet.model.FeedForward``,
MXNet's old training API which nothing here uses, can subclass scikit-learn's
``BaseEstimator``. That was 0.9 s of the 3 s `import mxnet` took on 2 cores, paid by every
command line, Horovod rank and test process. :func:`install` adds a finder that hides
scikit-learn from ``mxnet.model`` alone, while it is being imported (``mxnet.model`` then
falls back to ``object``, as without scikit-learn); every other import finds it as usual."""
import sys


class WithoutScikitLearnInMXNetModel:
    """A meta path finder that refuses ``sklearn`` while ``mxnet.model`` is being imported
    (it is in ``sys.modules`` and has not yet defined ``FeedForward``) and leaves every other
    import to the finders after it."""

    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" and _importing_mxnet_model():
            raise ModuleNotFoundError("scikit-learn is not imported for mxnet.model "
                                      "(gluon_tricks/quick_start.py)", name=name)
        return None


def _importing_mxnet_model():
    module = sys.modules.get("mxnet.model")
    return module is not None and not hasattr(module, "FeedForward")


def install():
    """Put the finder first on ``sys.meta_path``, once."""
    if not any(isinstance(f, WithoutScikitLearnInMXNetModel) for f in sys.meta_path):
        sys.meta_path.insert(0, WithoutScikitLearnInMXNetModel())
