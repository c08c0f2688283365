"""The transfer trainer (paper §6, Tables 8 and 9): ``config``, ``loop``, GluonCV's
Faster-RCNN and FCN on our backbones (``nets``), their data and metrics (``detection``,
``segmentation``) and the miniature digit scenes (``scenes``)."""
