"""gluon_tricks/quick_start.py: importing the package first keeps `import mxnet` from
importing scikit-learn and scipy.stats, and nothing else changes: both still import, and
the MXNet modules that asked for them took the fallback MXNet gives them without."""
import subprocess
import sys

PROBE = """
import sys
import gluon_tricks, mxnet
from mxnet.contrib import quantization
print('sklearn' in sys.modules, 'scipy.stats' in sys.modules,
      mxnet.model.FeedForward.__bases__ == (object,), quantization.stats is None,
      mxnet.test_utils.ss is None)
import sklearn.base, scipy.stats
print(sklearn.base.BaseEstimator.__module__, scipy.stats.norm.cdf(0.0))
"""


def test_mxnet_imports_without_the_optional_packages_which_still_import():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "False", "True", "True", "True", "sklearn.base",
                                  "0.5"]


def test_other_imports_are_left_to_the_other_finders():
    import mxnet.contrib.quantization  # noqa: F401 (imported: the finder is inert)
    import mxnet.test_utils  # noqa: F401
    from gluon_tricks.quick_start import OptionalImportsOfMXNet
    finder = OptionalImportsOfMXNet()
    for name in ("sklearn", "scipy.stats", "numpy"):
        assert finder.find_spec(name) is None
