"""gluon-tricks: the paper "Bag of Tricks for Image Classification" on MXNet/Gluon."""
__version__ = "0.1.0"
