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

import torch
from torch import nn


def _check_rank(rank: int, m: int, n: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise TypeError(f"rank={rank!r} must be an int in 1..{min(m, n)}")
    if not 1 <= rank <= min(m, n):
        raise ValueError(f"rank={rank} must be in 1..min(m, n) = 1..{min(m, n)}")
    return rank


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """Singular values of a weight reshaped to ``[out, in * kh * kw]`` (descending)."""
    return torch.linalg.svdvals(weight.detach().reshape(weight.shape[0], -1).double()).float()


def low_rank(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``A @ B`` the best rank-``rank`` approximation of ``matrix`` (m x n):
    ``A = U_r sqrt(S_r)`` (m x r), ``B = sqrt(S_r) V_r^T`` (r x n)."""
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D; got shape {tuple(matrix.shape)}")
    m, n = matrix.shape
    rank = _check_rank(rank, m, n)
    U, S, Vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root = S[:rank].sqrt()
    return (U[:, :rank] * root).to(matrix.dtype), (root[:, None] * Vh[:rank]).to(matrix.dtype)


def predicted_error(weight: torch.Tensor, rank: int) -> float:
    """Frobenius error of the rank-``rank`` approximation: sqrt of the discarded squared singular values."""
    s = singular_values(weight).double()
    _check_rank(rank, weight.shape[0], weight[0].numel())
    return float(s[rank:].pow(2).sum().sqrt())


def rank_for_energy(singular: torch.Tensor, fraction: float) -> int:
    """Smallest r with ``sum(s[:r]^2) / sum(s^2) >= fraction`` (``fraction`` in (0, 1])."""
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1]")
    e = singular.double().pow(2)
    if e.numel() == 0 or e.sum() <= 0:
        raise ValueError("singular must hold at least one positive value")
    cum = e.cumsum(0) / e.sum()
    return int(torch.searchsorted(cum, torch.tensor(fraction - 1e-12, dtype=cum.dtype)).item()) + 1


def factorize_linear(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``Linear(n, m)`` -> ``Sequential(Linear(n, r, bias=False), Linear(r, m))`` (bias kept on the second)."""
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear={type(linear).__name__} must be an nn.Linear")
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
    """Replace ``conv`` by two convolutions of rank ``rank`` (see module doc for the two modes)."""
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv={type(conv).__name__} must be an nn.Conv2d")
    if conv.groups != 1:
        raise ValueError(f"conv.groups={conv.groups}: only groups=1 convolutions can be factorised here")
    if mode not in ("channel", "spatial"):
        raise ValueError(f"mode={mode!r} must be 'channel' or 'spatial'")
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
    weights than the original (then factorising saves nothing). Returns ``(copy, {layer name: rank})``
    listing the layers that were replaced.
    """
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be an nn.Module")
    if mode not in ("channel", "spatial"):
        raise ValueError(f"mode={mode!r} must be 'channel' or 'spatial'")
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
