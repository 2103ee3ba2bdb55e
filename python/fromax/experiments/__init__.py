"""The paper's experiments in small, on data that ships inside installed packages (no downloads):
``python -m fromax.demo <name>`` with name one of :data:`EXPERIMENTS`."""

EXPERIMENTS = ("depth", "paper-depth", "lr-sensitivity", "transformer", "lr-free")


def run(name: str, **kwargs):
    """Run experiment ``name`` (see :data:`EXPERIMENTS`); keyword arguments go to its ``run``."""
    if name == "depth":
        from fromax.experiments.depth import run as fn
    elif name == "paper-depth":
        from fromax.experiments.paper_depth import run as fn
    elif name == "lr-sensitivity":
        from fromax.experiments.lr_sensitivity import run as fn
    elif name == "transformer":
        from fromax.experiments.transformer import run as fn
    elif name == "lr-free":
        from fromax.experiments.lr_free import run as fn
    else:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return fn(**kwargs)
