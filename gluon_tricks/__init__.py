"""gluon-tricks: the paper "Bag of Tricks for Image Classification" on MXNet/Gluon.

Layers, top to bottom (docs/architecture.md; each imports only those below it): ``cli``;
``report``; ``infer``, ``export``; ``train``, ``transfer``; ``run``; ``models``, ``data``,
``gpu``; ``errors``, ``seeds``, ``paper``, ``published``, ``markdown``.
"""
__version__ = "0.1.0"
