"""Low-rank factorisation with the SVD (document 000: decompose a weight matrix into smaller ones).

For a weight ``W`` (m x n) with SVD ``W = U S V^T``, keeping the ``r`` largest singular values gives
the best rank-r approximation (Eckart-Young), with error ``||W - W_r||_F = sqrt(sum_{i>r} s_i^2)``.
It is applied as two layers: ``n -> r`` (weights ``sqrt(S_r) V_r^T``) then ``r -> m`` (``U_r sqrt(S_r)``),
costing ``r (m + n)`` instead of ``m n`` parameters and MACs per position.

* :func:`factorize_linear` -- ``Linear(n, m)`` -> ``Linear(n, r) -> Linear(r, m)``
* :func:`factorize_conv` -- ``mode="channel"``: k x k conv -> k x k conv to r channels -> 1x1 conv
  (a 1x1 conv is the same thing with k = 1); ``mode="spatial"``: k x k -> (k x 1 to r channels) ->
  (1 x k to the outputs), Jaderberg et al. 2014's vertical/horizontal scheme.
* :func:`rank_for_energy` -- smallest r keeping a fraction of the spectrum's energy sum(s^2).
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from . import validate as V


MODES = ("channel", "spatial")


def _check_rank(rank: int, m: int, n: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise TypeError(f"rank={V.show(rank)} must be an int in 1..{min(m, n)}")
    if not 1 <= rank <= min(m, n):
        raise ValueError(f"rank={rank} must be in 1..min(m, n) = 1..{min(m, n)}")
    return int(rank)


def _check_weight(name: str, w: object) -> torch.Tensor:
    V.tensor(name, w, dtype="number", non_empty=True)
    if w.ndim < 1:
        raise ValueError(f"{name}={V.show(w)} must have at least one dimension (output channels first)")
    return w


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """Singular values of a weight reshaped to ``[out, in * kh * kw]`` (descending).

    Args:
        weight: non-empty real-valued weight, output channels first (``Tensor[out, in, kh, kw]``, ``Tensor[out, in]``
            ...); a 1-d tensor is read as ``[out, 1]``.

    Returns:
        float32 ``Tensor[min(out, in * kh * kw)]``, largest first (computed in float64).
    """
    _check_weight("weight", weight)
    return torch.linalg.svdvals(weight.detach().reshape(weight.shape[0], -1).double()).float()


def low_rank(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``A @ B`` the best rank-``rank`` approximation of ``matrix`` (m x n):
    ``A = U_r sqrt(S_r)`` (m x r), ``B = sqrt(S_r) V_r^T`` (r x n).

    Args:
        matrix: real-valued ``Tensor[m, n]``.
        rank: the rank ``r``, an int in ``1..min(m, n)``.

    Returns:
        ``(A, B)``: ``Tensor[m, r]`` and ``Tensor[r, n]`` in ``matrix``'s dtype (the SVD runs in float64).
    """
    V.tensor("matrix", matrix, dtype="number", ndim=2, layout="Tensor[m, n]")
    m, n = matrix.shape
    rank = _check_rank(rank, m, n)
    U, S, Vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root = S[:rank].sqrt()
    return (U[:, :rank] * root).to(matrix.dtype), (root[:, None] * Vh[:rank]).to(matrix.dtype)


def predicted_error(weight: torch.Tensor, rank: int) -> float:
    """Frobenius error of the rank-``rank`` approximation: sqrt of the discarded squared singular values.

    Args:
        weight: non-empty real-valued weight, output channels first, read as ``[out, rest]`` as in
            :func:`singular_values`.
        rank: the kept rank ``r``, an int in ``1..min(out, rest)``.

    Returns:
        ``float``: ``||W - W_r||_F = sqrt(sum_{i>r} s_i^2)``.
    """
    _check_weight("weight", weight)
    s = singular_values(weight).double()
    _check_rank(rank, weight.shape[0], weight[0].numel())
    return float(s[rank:].pow(2).sum().sqrt())


def rank_for_energy(singular: torch.Tensor, fraction: float) -> int:
    """Smallest r with ``sum(s[:r]^2) / sum(s^2) >= fraction`` (``fraction`` in (0, 1]).

    Args:
        singular: 1-d real ``Tensor`` of singular values, largest first (e.g. :func:`singular_values`); finite,
            >= 0, at least one > 0. The order is not checked: the prefix ``s[:r]`` is what is counted.
        fraction: the energy fraction to keep, a number in (0, 1].

    Returns:
        ``int``: the rank ``r``, in ``1..len(singular)``.
    """
    V.tensor("singular", singular, dtype="number", ndim=1)
    V.real("fraction", fraction, 0, 1, low_open=True)
    e = singular.double().pow(2)
    if e.numel() == 0 or e.sum() <= 0 or bool((singular < 0).any()) or not bool(torch.isfinite(e).all()):
        raise ValueError(f"singular={V.show(singular)} must hold finite values >= 0, at least one positive")
    cum = e.cumsum(0) / e.sum()
    return int(torch.searchsorted(cum, torch.tensor(fraction - 1e-12, dtype=cum.dtype)).item()) + 1


def factorize_linear(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``Linear(n, m)`` -> ``Sequential(Linear(n, r, bias=False), Linear(r, m))`` (bias kept on the second).

    Args:
        linear: the ``nn.Linear(n, m)`` to factorise (not modified).
        rank: the inner width ``r``, an int in ``1..min(m, n)``.

    Returns:
        ``nn.Sequential`` of the two new ``Linear`` layers (created in the default dtype, on the CPU).
    """
    V.module("linear", linear, nn.Linear)
    A, B = low_rank(linear.weight, rank)
    first = nn.Linear(linear.in_features, rank, bias=False)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_(B)
        second.weight.copy_(A)
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


def factorize_conv(conv: nn.Conv2d, rank: int, mode: str = "channel") -> nn.Sequential:
    """Replace ``conv`` by two convolutions of rank ``rank`` (see module doc for the two modes).

    Args:
        conv: the ``nn.Conv2d`` to factorise (not modified): ``groups=1``, and numeric padding for
            ``mode="spatial"``.
        rank: the intermediate channels ``r``, an int in ``1..min(C_out, C_in * kh * kw)`` for ``"channel"``,
            in ``1..min(C_in * kh, C_out * kw)`` for ``"spatial"``.
        mode: one of :data:`MODES`: ``"channel"`` or ``"spatial"``.

    Returns:
        ``nn.Sequential`` of the two new ``Conv2d`` (bias, if any, on the second; created in the default dtype,
        on the CPU); same output shape as ``conv``.
    """
    V.module("conv", conv, nn.Conv2d)
    V.choice("mode", mode, MODES)
    if conv.groups != 1:
        raise ValueError(f"conv.groups={conv.groups}: only groups=1 convolutions can be factorised here")
    if conv.padding_mode != "zeros":
        raise ValueError(f"conv.padding_mode={conv.padding_mode!r}: only zero padding can be factorised here "
                         "(the factorised convs pad with zeros)")
    if mode == "spatial" and isinstance(conv.padding, str):
        raise ValueError(f"conv.padding={conv.padding!r}: mode='spatial' needs numeric padding")
    W = conv.weight.detach()
    o, i, kh, kw = W.shape
    sh, sw = conv.stride
    ph, pw = conv.padding if isinstance(conv.padding, tuple) else (conv.padding, conv.padding)
    dh, dw = conv.dilation
    bias = conv.bias is not None
    if mode == "channel":
        A, B = low_rank(W.reshape(o, i * kh * kw), rank)
        first = nn.Conv2d(i, rank, (kh, kw), stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=False)
        second = nn.Conv2d(rank, o, 1, bias=bias)
        with torch.no_grad():
            first.weight.copy_(B.reshape(rank, i, kh, kw))
            second.weight.copy_(A.reshape(o, rank, 1, 1))
    else:
        # W[o, i, y, x] = sum_r V[r, i, y] H[o, r, x]: SVD of W arranged as M[(i, y), (o, x)]
        M = W.permute(1, 2, 0, 3).reshape(i * kh, o * kw)
        A, B = low_rank(M, rank)                      # A: (i*kh, r), B: (r, o*kw)
        first = nn.Conv2d(i, rank, (kh, 1), stride=(sh, 1), padding=(ph, 0), dilation=(dh, 1), bias=False)
        second = nn.Conv2d(rank, o, (1, kw), stride=(1, sw), padding=(0, pw), dilation=(1, dw), bias=bias)
        with torch.no_grad():
            first.weight.copy_(A.t().reshape(rank, i, kh, 1))
            second.weight.copy_(B.reshape(rank, o, kw).permute(1, 0, 2).reshape(o, rank, 1, kw))
    if bias:
        with torch.no_grad():
            second.bias.copy_(conv.bias)
    return nn.Sequential(first, second)


def factorize_convs(model: nn.Module, fraction: float, mode: str = "channel",
                    skip: tuple[str, ...] = ()) -> tuple[nn.Module, dict[str, int]]:
    """A copy of ``model`` whose ``groups=1`` convolutions are each replaced by :func:`factorize_conv`
    at the rank keeping ``fraction`` of that layer's spectral energy.

    A layer is left alone when it is named in ``skip`` or when the factorised pair would not have fewer
    weights than the original (then factorising saves nothing).

    Args:
        model: the ``nn.Module`` to copy (not modified).
        fraction: the spectral energy to keep per layer, a number in (0, 1] (:func:`rank_for_energy`).
        mode: one of :data:`MODES`, as in :func:`factorize_conv`.
        skip: names of layers (as in ``named_modules``) to leave alone: a tuple, list or set of strings.

    Returns:
        ``(copy, {layer name: rank})``, listing the layers that were replaced.
    """
    import copy

    V.module("model", model)
    V.real("fraction", fraction, 0, 1, low_open=True)
    V.choice("mode", mode, MODES)
    if isinstance(skip, (str, bytes)) or not isinstance(skip, (list, tuple, set, frozenset)):
        raise TypeError(f"skip={V.show(skip)} must be a tuple / list / set of layer names")
    for name in skip:
        V.string("skip[i]", name)
    out = copy.deepcopy(model)
    ranks: dict[str, int] = {}
    for name, conv in list(out.named_modules()):
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or name in skip:
            continue
        o, i, kh, kw = conv.weight.shape
        if mode == "channel":
            r = rank_for_energy(singular_values(conv.weight), fraction)
            new_params = r * (i * kh * kw + o)
        else:
            M = conv.weight.detach().permute(1, 2, 0, 3).reshape(i * kh, o * kw)
            r = rank_for_energy(torch.linalg.svdvals(M.double()), fraction)
            new_params = r * (i * kh + o * kw)
        if new_params >= conv.weight.numel():
            continue
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, factorize_conv(conv, r, mode))
        ranks[name] = r
    return out, ranks
