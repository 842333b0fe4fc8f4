"""Profiles: the parameters ``evalkit run`` gives each notebook (``profiles.yaml``), checked before anything runs.

:data:`NOTEBOOKS` is every notebook of a run in order and the run sub-folder it writes into (from the registry).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from evalkit import layers
from evalkit.errors import ConfigError
from evalkit.settings import get_settings

# notebook -> the folder of the run it writes into ("" = the run folder itself)
NOTEBOOKS: dict[str, str] = layers.notebooks()


def notebooks_dir() -> Path:
    return get_settings().project_dir / "notebooks"


def load_profiles(path: Path | None = None) -> dict:
    path = path or get_settings().project_dir / "profiles.yaml"
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read profiles from {path}: {exc}", fix="restore profiles.yaml.") from None


def with_overrides(profiles: dict, profile: str, overrides: list[str] | None) -> dict:
    """``profiles`` with ``NOTEBOOK.PARAM=VALUE`` items (``evalkit run --set``) laid over one profile's values.

    VALUE is read as YAML (``5``, ``null``, ``[a, b]``, ``text``). The result is a copy; the names and values are
    checked later with the profile's own (:func:`profile_parameters`).
    """
    if not overrides:
        return profiles
    if profile not in profiles:
        raise ConfigError(f"Unknown profile {profile!r}.", fix=f"use one of: {', '.join(profiles)}.")
    out = {**profiles, profile: {**(profiles[profile] or {})}}
    notebooks = {name: dict(values or {}) for name, values in (out[profile].get("notebooks") or {}).items()}
    for item in overrides:
        target, sep, text = item.partition("=")
        notebook, dot, param = target.strip().partition(".")
        if not sep or not dot or not notebook or not param:
            raise ConfigError(f"--set {item!r} is not NOTEBOOK.PARAM=VALUE.",
                              fix="e.g. --set 03_accuracy.LIMIT=2 or --set 04_safety.COMPARE_MODEL=null.")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not YAML ({exc}).",
                              fix="quote text, write lists as [a, b].") from None
        if notebook not in NOTEBOOKS:
            raise ConfigError(f"--set {item!r}: unknown notebook {notebook!r}.",
                              fix=f"use one of: {', '.join(NOTEBOOKS)}.")
        notebooks.setdefault(notebook, {})[param.strip()] = value
    out[profile]["notebooks"] = notebooks
    return out


BASE_WEIGHTS = "base"  # a notebook's MODEL in a profile: the run model's base weights (see notebook_model)


def notebook_model(value: str, served: str) -> str:
    """The model a notebook is given for a profile's ``MODEL`` ``value``, on a server for the run model ``served``.

    ``base`` names the base weights of ``served`` when it is a LoRA adapter (the same server serves both), and
    ``served`` itself otherwise (another model given with ``--model``, a server attached with ``--base-url``); any
    other value is itself.
    """
    if value != BASE_WEIGHTS:
        return value
    from evalkit.models import PRESETS

    preset = PRESETS.get(served)
    return preset.base if preset is not None and preset.base else served


def profile_parameters(profile: str, profiles: dict | None = None) -> dict:
    """``{notebook: {PARAM: value}}`` of a named profile, checked against each notebook's parameters cell."""
    import papermill

    profiles = profiles if profiles is not None else load_profiles()
    if profile not in profiles:
        raise ConfigError(f"Unknown profile {profile!r}.", fix=f"use one of: {', '.join(profiles)}.")
    spec = profiles[profile] or {}
    params = {}
    for name, values in (spec.get("notebooks") or {}).items():
        if name not in NOTEBOOKS:
            raise ConfigError(f"profiles.yaml, profile {profile}: unknown notebook {name!r}.",
                              fix=f"use one of: {', '.join(NOTEBOOKS)}.")
        known = set(papermill.inspect_notebook(str(notebooks_dir() / f"{name}.ipynb")))
        unknown = set(values or {}) - known
        if unknown:
            raise ConfigError(f"profiles.yaml, profile {profile}, notebook {name}: unknown parameter(s) "
                              f"{', '.join(sorted(unknown))}.", fix=f"valid: {', '.join(sorted(known))}.")
        _check_layer_values(profile, name, values or {})
        params[name] = dict(values or {})
    return params


def _check_layer_values(profile: str, notebook: str, values: dict) -> None:
    """A layer notebook's parameters that name a run argument (``LIMIT`` -> ``limit``) obey its typed limits."""
    layer = next((la for la in layers.LAYERS if la.notebook == notebook), None)
    if layer is None:
        return
    args = layer.args_class()
    for key, value in values.items():
        if key.lower() in args.model_fields and value is not None:
            try:
                args.check_value(key.lower(), value)
            except ConfigError as exc:
                raise ConfigError(f"profiles.yaml, profile {profile}, notebook {notebook}, {key}: {exc.problem}",
                                  fix=exc.fix) from None
