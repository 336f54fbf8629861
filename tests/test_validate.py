"""lessons_lib.validate: the shared argument check names the parameter, the value and the rule."""
import numpy as np
import pytest

from lessons_lib.validate import int_at_least


@pytest.mark.parametrize("value, minimum", [(1, 1), (7, 2), (np.int64(3), 1), (0, 0)])
def test_accepts_integers_at_or_above_the_minimum(value, minimum):
    out = int_at_least("n", value, minimum)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value, err", [(0, ValueError), (-3, ValueError), (2.0, TypeError), ("4", TypeError),
                                        (True, TypeError), (None, TypeError)])
def test_rejects_with_a_message_naming_parameter_value_and_rule(value, err):
    with pytest.raises(err) as info:
        int_at_least("groups", value)
    assert str(info.value) == f"groups={value!r} must be an int >= 1"


def test_fixes_found_by_reading_the_api():
    """Bad calls that used to leak torch / numpy errors or name the wrong parameter."""
    import numpy as np
    import torch
    from torch import nn

    from lessons_lib import data, fold, machine, train
    from lessons_lib.blocks import GhostModule, InvertedResidual, ShuffleV1Unit, make_divisible
    from lessons_lib.conv import layer_cost

    with pytest.raises(ValueError, match="dw_size=2 must be odd"):
        GhostModule(8, 8, dw_size=2)
    assert make_divisible(0, 8) == 8
    InvertedResidual(2, 2, expanded_ch=2, kernel_size=3, use_se=True)  # squeeze e // 4 = 0 -> 8, as torchvision
    with pytest.raises(ValueError, match="out_ch=2 must be >= 4"):
        ShuffleV1Unit(2, 2, groups=1)
    assert layer_cost(nn.Conv2d(3, 4, 3, padding="valid"), 8).macs == 6 * 6 * 3 * 4 * 9
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            machine.resolve_device(torch.device("cuda"))
    data.make_shapes(2, difficulty=np.int64(1), size=8)  # numpy integers are numbers
    with pytest.raises(ValueError, match=r"kind=\(\)"):
        fold.count_modules(nn.ReLU(), ())
    with pytest.raises(ValueError, match="empty"):
        train.predict(nn.Linear(2, 2), (torch.zeros(0, 2), torch.zeros(0)))


def test_machine_facts_without_proc_cpuinfo(monkeypatch):
    """macOS / Windows have no /proc/cpuinfo: machine facts say "unknown" (or False), they never crash."""
    import builtins

    from lessons_lib import machine

    real_open = builtins.open

    def no_proc(path, *a, **k):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert isinstance(machine.cpu_name(), str) and machine.cpu_name()
    feats = machine.cpu_features()
    assert isinstance(feats, dict) and isinstance(machine.describe_cpu_features(), str)
    assert isinstance(machine.describe("cpu"), str)


def test_more_fixes_found_by_reading_the_api():
    import torch
    from torch import nn

    from lessons_lib import distill, lowrank, train
    from lessons_lib.models import StudentCNN
    from lessons_lib.quant.intarith import IntegerConv2d

    with pytest.raises(ValueError, match="square kernel"):
        IntegerConv2d.from_float(torch.randn(2, 3, 3, 1), None, x_scale=0.1, x_zp=0, out_scale=0.1, out_zp=0)
    with pytest.raises(ValueError, match="out_zp=200"):
        IntegerConv2d.from_float(torch.randn(2, 3, 3, 3), None, x_scale=0.1, x_zp=0, out_scale=0.1, out_zp=200,
                                 out_symmetric=True)
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        lowrank.factorize_conv(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), 2)
    # RKD with a last batch of one row (len(train) % batch_size == 1) trains instead of raising
    x, n = torch.randn(5, 3, 8, 8), 5
    loss_fn = distill.indexed_objective(torch.zeros(n, dtype=torch.long), teacher_emb=torch.randn(n, 32),
                                        rkd_d=1.0, rkd_a=2.0)
    train.fit(StudentCNN(), torch.utils.data.TensorDataset(x, torch.arange(n)), epochs=1, batch_size=4,
              loss_fn=loss_fn, seed=0)
