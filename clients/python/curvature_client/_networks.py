"""Networks: the API's JSON form from layers or from a PyTorch ``nn.Sequential``."""

from __future__ import annotations

import operator
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

#: Which layers' parameters to differentiate: a list of layer indices (negative from the end), one index,
#: or the API's object ``{"layers": [...]}``; None for all.
Selection = Union[Sequence[int], int, Mapping[str, Any], None]

#: The service's activations (its OpenAPI enum; a test keeps the two equal).
ACTIVATIONS: Tuple[str, ...] = ("identity", "tanh", "sigmoid", "relu", "softplus", "gelu", "silu", "leaky-relu", "elu", "softmax")


def _layer(layer: Any, index: int) -> Dict[str, Any]:
    if isinstance(layer, Mapping):
        weights, bias, activation = layer["weights"], layer.get("bias"), layer.get("activation", "identity")
    else:
        items = tuple(layer)
        if not 2 <= len(items) <= 3:
            raise ValueError(f"layer {index}: give (weights, bias[, activation]); got {len(items)} items")
        weights, bias, activation = (items + ("identity",))[:3]
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"layer {index}: weights must be out x in; got shape {w.shape}")
    b: Optional[List[float]] = None
    if bias is not None:
        bv = np.asarray(bias, dtype=np.float64).reshape(-1)
        if bv.shape[0] != w.shape[0]:
            raise ValueError(f"layer {index}: bias must have {w.shape[0]} entries (one per output, as weights are {w.shape}); "
                             f"got {bv.shape[0]}")
        b = bv.tolist()
    if activation not in ACTIVATIONS:
        raise ValueError(f"layer {index}: activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
    return {"weights": w.tolist(), "bias": b, "activation": activation}


def network_from_layers(layers: Iterable[Any]) -> Dict[str, Any]:
    """The API's network from layers given as dicts ``{"weights", "bias", "activation"}`` or tuples
    ``(weights, bias[, activation])``; weights are out x in (as ``nn.Linear.weight``). A bias of
    ``None`` (or a dict without ``"bias"``) is a layer without bias, ``nn.Linear(bias=False)``."""
    out = [_layer(layer, i) for i, layer in enumerate(layers)]
    if not out:
        raise ValueError("a network needs at least one layer")
    return {"layers": out}


_SUPPORTED = ("Linear (with or without bias), Tanh, Sigmoid, ReLU, Softplus(beta=1), GELU(approximate='none'), SiLU, "
              "LeakyReLU(0.01), ELU(alpha=1), Softmax(dim=-1) at the output, Identity, Dropout (as in eval mode) "
              "and Flatten at the input")


def _torch_activation(module: Any) -> Optional[str]:
    """The service's name for an activation module, None if it is not one; ValueError for a
    supported kind with parameters the service does not have."""
    import torch.nn as nn  # only called with torch modules

    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.Softplus):
        if module.beta != 1:
            raise ValueError(f"{module}: only Softplus(beta=1) is supported (the service's softplus is log(1 + e^a))")
        return "softplus"
    if isinstance(module, nn.GELU):
        approximate = getattr(module, "approximate", "none")
        if approximate != "none":
            raise ValueError(f"{module}: only nn.GELU() with approximate='none' is supported (the service's gelu is the "
                             f"exact form a * Phi(a) with the normal CDF by erf), not approximate={approximate!r}")
        return "gelu"
    if isinstance(module, nn.SiLU):
        return "silu"
    if isinstance(module, nn.LeakyReLU):
        if module.negative_slope != 0.01:
            raise ValueError(f"{module}: only nn.LeakyReLU() with the default negative_slope=0.01 is supported "
                             f"(the service's leaky-relu), not {module.negative_slope}")
        return "leaky-relu"
    if isinstance(module, nn.ELU):
        if module.alpha != 1:
            raise ValueError(f"{module}: only nn.ELU() with the default alpha=1 is supported (the service's elu), not {module.alpha}")
        return "elu"
    if isinstance(module, nn.Softmax):
        if module.dim not in (-1, 1):
            raise ValueError(f"{module}: only Softmax over the last dimension (dim=-1) is supported")
        return "softmax"
    return None


def _modules(model: Any) -> List[Any]:
    """The modules of a (possibly nested) nn.Sequential in the order they run."""
    import torch.nn as nn

    if not isinstance(model, nn.Sequential):
        return [model]
    out: List[Any] = []
    for m in model.children():
        out.extend(_modules(m) if isinstance(m, nn.Sequential) else [m])
    return out


def network_from_torch(model: Any) -> Dict[str, Any]:
    """The API's network from a PyTorch ``nn.Sequential`` (or a single ``nn.Linear``).

    Each ``Linear`` (with or without bias) may be followed by one activation: ``Tanh``,
    ``Sigmoid``, ``ReLU``, ``Softplus()``, ``GELU()`` (exact erf form only), ``SiLU``,
    ``LeakyReLU()`` (slope 0.01 only), ``ELU()`` (alpha 1 only), or ``Softmax(dim=-1)`` at the
    output; a Linear with no activation after it is linear (identity), so a model ending in a
    Linear gives logits. ``Identity`` and ``Dropout`` may stand anywhere and are no-ops: the
    curvature is that of the model in eval mode (dropout off), whatever ``model.training`` says.
    ``Flatten()`` may stand at the input, before the first Linear, where it is a no-op for the
    N x D inputs the service takes. Anything else raises ValueError naming the module.
    """
    import torch.nn as nn

    layers: List[Tuple[Any, str]] = []
    pending: Optional[Any] = None
    seen_linear = False
    for i, m in enumerate(_modules(model)):
        if isinstance(m, nn.Linear):
            if pending is not None:
                layers.append((pending, "identity"))
            pending, seen_linear = m, True
            continue
        if isinstance(m, nn.Flatten):
            if seen_linear:
                raise ValueError(f"module {i} {m!r}: Flatten is supported only at the input, before the first Linear "
                                 f"(where it is a no-op for N x D inputs)")
            if m.start_dim != 1:
                raise ValueError(f"module {i} {m!r}: only Flatten(start_dim=1) is supported (start_dim={m.start_dim} "
                                 f"would also flatten the batch dimension)")
            continue
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue
        if isinstance(m, nn.LogSoftmax):
            raise ValueError(f"module {i} {m!r}: LogSoftmax is not supported; drop it and give the logits (a model ending in "
                             f"Linear) with loss 'softmax-cross-entropy', which is LogSoftmax + NLLLoss = nn.CrossEntropyLoss")
        act = _torch_activation(m)
        if act is None:
            raise ValueError(f"unsupported module {i} {m!r}: use {_SUPPORTED}")
        if pending is None:
            raise ValueError(f"module {i} {m!r} does not follow a Linear module (one activation per Linear)")
        layers.append((pending, act))
        pending = None
    if pending is not None:
        layers.append((pending, "identity"))
    if not layers:
        raise ValueError("the model has no Linear module")
    out = []
    for lin, act in layers:
        w = lin.weight.detach().cpu().double().numpy()
        b = None if lin.bias is None else lin.bias.detach().cpu().double().numpy()
        out.append({"weights": w, "bias": b, "activation": act})
    return network_from_layers(out)


def as_network(network: Any) -> Dict[str, Any]:
    """A network given as the API's dict, a list of layers, or a torch module."""
    if isinstance(network, Mapping) and "layers" in network:
        return network_from_layers(network["layers"])
    if hasattr(network, "parameters") and hasattr(network, "children"):
        return network_from_torch(network)
    return network_from_layers(network)


def selection(parameters: Selection) -> Optional[Dict[str, Any]]:
    """The API's ``parameters`` object: ``{"layers": [...]}`` from a list of layer indices."""
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        return dict(parameters)
    if isinstance(parameters, (int, np.integer)):
        return {"layers": [operator.index(parameters)]}
    return {"layers": [operator.index(i) for i in parameters]}


def selected_layers(network: Any, parameters: Selection = None) -> List[int]:
    """The indices (0-based, ascending: the parameter order) of the layers a selection names, as the
    service resolves them: negative indices count from the end; a duplicate or an index out of range
    raises ValueError (the service would refuse it with 422 INVALID_SELECTION)."""
    count = len(as_network(network)["layers"])
    sel = selection(parameters)
    if sel is None:
        return list(range(count))
    resolved: List[int] = []
    for given in sel.get("layers", []):
        i = operator.index(given)
        r = i + count if i < 0 else i
        if not 0 <= r < count:
            raise ValueError(f"parameters: layer {i} does not exist; the network has {count} layers (0 to {count - 1}, "
                             f"or -1 to -{count} from the end)")
        if r in resolved:
            raise ValueError(f"parameters: layer {i} is named twice")
        resolved.append(r)
    if not resolved:
        raise ValueError("parameters: name at least one layer")
    return sorted(resolved)


def parameter_count(network: Any, parameters: Selection = None) -> int:
    """W: the number of parameters (of the selected layers), sum over them of out_l * in_l, plus out_l
    for a layer with a bias; the side of every Hessian the service answers for this network."""
    layers = as_network(network)["layers"]
    total = 0
    for i in selected_layers(network, parameters):
        out_l, in_l = len(layers[i]["weights"]), len(layers[i]["weights"][0])
        total += out_l * in_l + (out_l if layers[i]["bias"] is not None else 0)
    return total
