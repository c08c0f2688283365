"""What GluonCV's FCN loss (MixSoftmaxCrossEntropyLoss, used unchanged by the Table 9
trainer) does to the gradients, against a numpy reference: each head's gradient is
(softmax - one-hot) / labelled pixels, whatever the aux weight (MXNet's SoftmaxOutput
ignores the gradient it is handed). gluon_tricks/transfer/segmentation.py relies on it
when it keeps the published lr."""
import mxnet as mx
import numpy as np
import pytest
from gluoncv.loss import MixSoftmaxCrossEntropyLoss


def reference_gradient(logits, label):
    """d(mean CE over labelled pixels)/d logits, numpy; logits (N, C, H, W), label (N, H, W)
    with -1 = unlabelled."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    onehot = np.zeros_like(p)
    valid = label >= 0
    n, h, w = np.nonzero(valid)
    onehot[n, label[valid], h, w] = 1
    return (p - onehot) * valid[:, None] / valid.sum()


@pytest.mark.parametrize("aux_weight", [0.2, 0.5, 1.0])
def test_each_head_gets_the_unweighted_mean_gradient(aux_weight):
    rng = np.random.RandomState(0)
    main, aux = (rng.normal(size=(2, 5, 4, 6)).astype(np.float32) for _ in range(2))
    label = rng.randint(-1, 5, size=(2, 4, 6))
    pred1, pred2 = mx.nd.array(main), mx.nd.array(aux)
    for p in (pred1, pred2):
        p.attach_grad()
    loss_fn = MixSoftmaxCrossEntropyLoss(aux=True, aux_weight=aux_weight)
    with mx.autograd.record():
        loss = loss_fn(pred1, pred2, mx.nd.array(label))
    loss.backward()
    np.testing.assert_allclose(pred1.grad.asnumpy(), reference_gradient(main, label),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(pred2.grad.asnumpy(), reference_gradient(aux, label),
                               rtol=1e-4, atol=1e-7)
