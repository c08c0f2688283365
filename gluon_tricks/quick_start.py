"""A shorter start for every command: ``import mxnet`` imports two optional packages for
parts of MXNet nothing here uses, each in a ``try: ... except ImportError`` that runs
without it: scikit-learn (with SciPy's statistics and pandas), only so that
``mxnet.model.FeedForward``, MXNet's old training API, can subclass its ``BaseEstimator``;
and ``scipy.stats``, for the entropy calibration of ``mxnet.contrib.quantization`` and the
statistical checks of ``mxnet.test_utils``. The two were 1.2 s of the 3 s ``import mxnet``
took on 2 cores, paid by every command line, Horovod rank and test process. :func:`install`
adds a finder that hides each from the MXNet modules that ask for it while they are being
imported (they then take their own fallback, as where the package is not installed); every
other import finds them as usual."""
import sys

# (MXNet module, the optional import it makes, a name the module defines after that import:
# while it is missing, the module is being imported)
HIDDEN = (("mxnet.model", "sklearn", "FeedForward"),
          ("mxnet.contrib.quantization", "scipy.stats", "quantize_net"),
          ("mxnet.test_utils", "scipy.stats", "new_sym_matrix_with_real_eigvals_nd"))


class OptionalImportsOfMXNet:
    """A meta path finder that refuses the optional imports of :data:`HIDDEN` to the MXNet
    modules that make them, while those are being imported, and leaves every other import to
    the finders after it."""

    def find_spec(self, name, path=None, target=None):
        for importer, hidden, defined_after in HIDDEN:
            module = sys.modules.get(importer)
            if name == hidden and module is not None and not hasattr(module, defined_after):
                raise ModuleNotFoundError(f"{hidden} is not imported for {importer} "
                                          "(gluon_tricks/quick_start.py)", name=name)
        return None


def install():
    """Put the finder first on ``sys.meta_path``, once."""
    if not any(isinstance(f, OptionalImportsOfMXNet) for f in sys.meta_path):
        sys.meta_path.insert(0, OptionalImportsOfMXNet())
