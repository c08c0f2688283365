"""Weights out of the project: ``gluoncv`` (to and from GluonCV's model zoo layouts) and
``onnx`` (MXNet's ONNX exporter, checked by onnxruntime)."""
