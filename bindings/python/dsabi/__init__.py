"""dsabi: DeepSpeed's training and inference system behind a stable C ABI - Python bindings.

    import dsabi

    with dsabi.Config.parse('{"train_batch_size": 32, "gradient_accumulation_steps": 2}',
                            world_size=4) as cfg:
        cfg.get_int("train_micro_batch_size_per_gpu")      # 4

    t = dsabi.Tensor.full((2, 3), 1.5)                     # library-owned, CPU
    a = t.numpy()                                          # zero-copy NumPy view
    b = numpy.from_dlpack(t)                               # zero-copy through DLPack
    u = dsabi.Tensor.from_numpy(numpy.ones(4))             # zero-copy the other way

    with dsabi.TokenDataset.open("train.dst") as data, \
         dsabi.DataLoader(data, config=cfg, seq_len=1025, window_stride=1024) as loader:
        for batch in loader:                               # one epoch
            ids = batch.tokens.numpy()                     # [B, T], zero-copy

    with dsabi.Comm() as comm:                             # the ranks of a dsrun / torchrun job
        comm.all_reduce(grads, op="avg")                   # NumPy arrays, torch CPU tensors, Tensors

    y = dsabi.ops.layer_norm(x, weight, bias)              # the op layer: dsabi.ops (NumPy, torch)
    skipped = dsabi.ops.optim_step(params, grads, m, v, step=1, kind="adamw", lr=1e-3)

Failed calls raise DsError subclasses carrying ``code`` and the library's ``message``. Calls release
the GIL. The extension refuses to load against a libdsabi of another major.minor version.
"""

from ._loader import lib as _lib_module
from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _errors_all
from ._errors import error_for as _error_for
from ._types import *  # noqa: F401,F403
from ._types import __all__ as _types_all
from ._config import Config, Diagnostic
from ._tensor import Tensor
from ._lib import *  # noqa: F401,F403
from ._lib import __all__ as _lib_all
from ._data import *  # noqa: F401,F403
from ._data import __all__ as _data_all
from ._comm import *  # noqa: F401,F403
from ._comm import __all__ as _comm_all
from . import ops

# Failed calls in the extension raise the exception error_for builds for their code.
_lib_module.set_error_factory(_error_for)

__version__ = _lib_module.version_string()

__all__ = ["Config", "Diagnostic", "Tensor", "ops", "__version__"] + _errors_all + _types_all + _lib_all + _data_all + _comm_all
