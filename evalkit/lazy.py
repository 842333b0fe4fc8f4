"""Package exports that load on first use.

A package's ``__init__`` names what notebooks and the command line use and which module defines each; a name's
module is imported when the name is first asked for (``evalkit.perf.sweep``, ``from evalkit.perf import sweep``),
and a package's submodules are reachable as attributes (``evalkit.perf.guidellm``). So ``evalkit status`` does not
import pandas, matplotlib or ipywidgets, and a notebook's ``import evalkit as ek`` costs what it uses.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping


class LazyPackage(types.ModuleType):
    """A package whose exported names load on first use.

    Importing a submodule binds its name on the package (the import system does that). Where the package exports
    a name from that submodule (the function ``evalkit.serve`` from the package ``evalkit.serve``, the function
    ``scorecard.collect`` from its module), the binding is left out, so the name still resolves to the export, as
    an eager ``__init__`` would have it.
    """

    def __setattr__(self, name: str, value) -> None:
        exported = vars(self).get("__lazy_exports__", {})
        if isinstance(value, types.ModuleType) and exported.get(name) == (value.__name__, name):
            return  # the package exports the submodule's function or class of this name, not the submodule
        super().__setattr__(name, value)


def lazy_exports(package: str, table: Mapping[str, Iterable[str]]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        table: ``{module: names}``: each module (relative to the package, or absolute when it starts with
            ``evalkit.``) and the names it gives the package: ``"name"`` is the module's ``name``,
            ``"alias=name"`` the same under another name, and ``"."`` the module itself under its last name
            (``{"evalkit.perf": (".",)}`` exports the package ``perf``).
    """
    where: dict[str, tuple[str, str | None]] = {}  # name -> (module, its name there; None: the module itself)
    for module, names in table.items():
        full = module if module.startswith("evalkit.") else f"{package}.{module}"
        for entry in names:
            if entry == ".":
                where[full.rsplit(".", 1)[-1]] = (full, None)
            else:
                name, _, original = entry.partition("=")
                where[name] = (full, original or name)

    def __getattr__(name: str):
        if name in where:
            module_name, wanted = where[name]
            module = importlib.import_module(module_name)
            value = module if wanted is None else getattr(module, wanted)
        elif not name.startswith("__"):
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    this = sys.modules[package]
    this.__lazy_exports__ = {name: (module, wanted) for name, (module, wanted) in where.items() if wanted}
    this.__class__ = LazyPackage
    return __getattr__, __dir__, list(where)
