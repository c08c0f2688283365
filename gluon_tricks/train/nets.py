"""The networks of a classification run: the student of the recipe (§2.1 initialisation,
§3.1 zero gamma, §3.2 FP16 cast), how it is hybridized, and the distillation teacher
(§5.3)."""
from ..errors import RunError
from ..models import get_model, initializer
from ..models.weights import load_network
from ..run.folder import params_of


def check_devices(dtype, contexts):
    """FP16 needs a GPU: MXNet has no FP16 GEMM on CPU."""
    if dtype == "float16" and all(c.device_type == "cpu" for c in contexts):
        raise RunError("dtype float16 needs a GPU (MXNet: 'FP16 gemm on cpu not implemented'); "
                       "pass --gpus, or --set dtype=float32 to train on CPU")


def build_net(cfg, contexts):
    """The network of the recipe (§2.1 init, §3.1 zero gamma), cast for FP16 (§3.2)."""
    net = get_model(cfg.model, classes=cfg.classes, zero_gamma=cfg.zero_gamma,
                    zero_gamma_basic=cfg.zero_gamma_basic)
    net.initialize(initializer(cfg.initializer), ctx=contexts)
    if cfg.dtype == "float16":
        net.cast("float16")
    return net


def hybridize_student(net, contexts):
    """Hybridize the network being trained. On GPUs with static memory and shapes (as
    GluonCV trains); on CPU plainly: identical CPU runs and resumed runs are bit-equal with
    it (naive engine), and static_alloc was not seen to be faster there."""
    on_gpu = any(c.device_type == "gpu" for c in contexts)
    net.hybridize(static_alloc=on_gpu, static_shape=on_gpu)


def load_teacher(cfg, contexts):
    """The distillation teacher (§5.3): inference mode, no gradient."""
    fix = "--set teacher=RUN_DIR or a .params file of the teacher (ours or GluonCV's)"
    if cfg.teacher is None:
        raise RunError(f"distill: true needs a teacher; {fix}")
    path = params_of(cfg.teacher, "; " + fix)
    # a teacher trained in FP16 (the teacher recipe) saved FP16 weights: cast on load
    teacher = load_network(cfg.teacher_model, cfg.classes, path, contexts)
    teacher.collect_params().setattr("grad_req", "null")
    if cfg.dtype == "float16":
        teacher.cast("float16")
    teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher
