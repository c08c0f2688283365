"""Using trained weights: ``checkpoint`` (a run folder or .params file as a network and its
validation pipeline), ``validate`` (top-1/top-5 on a val .rec) and ``predict`` (class names
for image files)."""
