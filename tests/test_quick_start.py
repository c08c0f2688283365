"""gluon_tricks/quick_start.py: importing the package first keeps `import mxnet` from
importing scikit-learn, and nothing else changes: scikit-learn still imports, and MXNet's
old FeedForward gets the base class MXNet gives it without scikit-learn."""
import subprocess
import sys

PROBE = """
import sys
import gluon_tricks, mxnet
print('sklearn' in sys.modules, mxnet.model.FeedForward.__bases__ == (object,))
import sklearn.base
print(sklearn.base.BaseEstimator.__module__)
"""


def test_mxnet_imports_without_scikit_learn_which_still_imports():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True", "sklearn.base"]


def test_other_imports_are_left_to_the_other_finders():
    import mxnet  # noqa: F401 (mxnet.model is imported: the finder is inert)
    from gluon_tricks.quick_start import WithoutScikitLearnInMXNetModel
    finder = WithoutScikitLearnInMXNetModel()
    assert finder.find_spec("sklearn") is None
    assert finder.find_spec("numpy") is None
