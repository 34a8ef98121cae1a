"""Study settings as data: presets, their meanings and type-checked dotted overrides.

``configs/<study>.yaml`` holds one mapping per preset and a ``help`` mapping::

    quick:                      # complete: every setting of the study
      train: {epochs: 40, lr: 0.002}
    paper:                      # an overlay on quick: only what differs
      train: {epochs: 60}
    paper-gpu:                  # an overlay on paper (``extends`` names the preset it overlays)
      extends: paper
      train: {device: cuda}
    help:                       # one-line meanings by dotted key; a block's covers its leaves
      train: "training of every model"
      train.epochs: "training epochs of every model"

Overlays and overrides follow one rule: mappings merge key by key, anything else (numbers,
strings, lists) replaces. An override ``{"train.epochs": 3}`` changes one setting;
``{"train": {...}}`` replaces the whole block. Each overriding value must have the type of the
value it replaces in the preset (see :func:`preset_config`).
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from hepchain.core.errors import UsageError

BASE_PRESET = "quick"
HELP_KEY = "help"
EXTENDS_KEY = "extends"

_KIND_NAMES = {"bool": ("true or false", "true/false values"), "int": ("an integer", "integers"),
               "float": ("a number", "numbers"), "str": ("a string", "strings"),
               "list": ("a list", "lists"), "mapping": ("a mapping", "mappings")}


def config_file(study: str) -> Traversable | None:
    """Where ``study``'s presets are written: ``hepchain/configs/<study>.yaml`` for a built-in
    study, else ``<study>.yaml`` beside the module its registry entry names (a plugin's presets
    travel with its code); None if neither exists. Nothing is imported but that module's
    parent packages."""
    packaged = resources.files("hepchain.configs").joinpath(f"{study}.yaml")
    if packaged.is_file():
        return packaged
    from hepchain.studies import REGISTRY

    module = REGISTRY.get(study, "").partition(":")[0]
    try:
        spec = importlib.util.find_spec(module) if module else None
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        return None
    beside = Path(spec.origin).with_name(f"{study}.yaml")
    return beside if beside.is_file() else None


def has_config_file(study: str) -> bool:
    """Whether ``study`` keeps its presets in a YAML file (see :func:`config_file`)."""
    return config_file(study) is not None


def read_config_file(study: str) -> dict[str, Any]:
    """The parsed presets file of ``study`` (presets and ``help``), exactly as written."""
    path = config_file(study)
    if path is None:
        raise UsageError(f"Study {study!r} has no configs/{study}.yaml to read its presets from.")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, Mapping):
        raise UsageError(f"configs/{study}.yaml must be a mapping of presets and help.")
    return dict(data)


def overlay(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` updated by ``top``: mappings merge recursively, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def presets_from(data: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The effective presets of a parsed config file named ``source`` in messages.

    Every top-level key but ``help`` is a preset; ``quick`` is taken as written and every other
    preset is overlaid on ``quick``, or on the effective preset its ``extends`` key names.
    """
    written = {name: body or {} for name, body in data.items() if name != HELP_KEY}
    if BASE_PRESET not in written:
        raise UsageError(f"{source} has no {BASE_PRESET!r} preset, which every other preset "
                         "overlays.")
    for name, body in written.items():
        if not isinstance(body, Mapping):
            raise UsageError(f"Preset {name!r} of {source} must be a mapping of settings.")
    effective: dict[str, dict[str, Any]] = {BASE_PRESET: copy.deepcopy(dict(written[BASE_PRESET]))}

    def resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if name not in effective:
            body = dict(written[name])
            parent = body.pop(EXTENDS_KEY, BASE_PRESET)
            if parent not in written or parent == name or parent in chain:
                raise UsageError(f"Preset {name!r} of {source} extends {parent!r}, which is "
                                 f"not another preset of the file (presets: {sorted(written)}) "
                                 "or extends it back.")
            effective[name] = overlay(resolve(parent, (*chain, name)), body)
        return effective[name]

    return {name: resolve(name, ()) for name in written}


def load_presets(study: str) -> dict[str, dict[str, Any]]:
    """The effective presets of ``study``, read from ``configs/<study>.yaml``."""
    return presets_from(read_config_file(study), f"configs/{study}.yaml")


def load_help(study: str) -> dict[str, str]:
    """The one-line meanings of ``study``'s settings, by dotted key (blocks included)."""
    meanings = read_config_file(study).get(HELP_KEY) or {}
    if not isinstance(meanings, Mapping):
        raise UsageError(f"The help of configs/{study}.yaml must map dotted keys to meanings.")
    return {str(key): str(text) for key, text in meanings.items()}


def leaves(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf setting of ``config`` by dotted key; a leaf is anything but a non-empty
    mapping (so a list of mappings, or an empty mapping, is one setting)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(leaves(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def meaning(meanings: Mapping[str, str], key: str) -> str:
    """The meaning of dotted ``key``: its own, else that of its closest enclosing block
    (``""`` if neither has one)."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        text = meanings.get(".".join(parts[:n]))
        if text:
            return text
    return ""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__


def _fits(value: Any, kind: str) -> bool:
    """Whether ``value`` may stand where a value of ``kind`` stood (int for float, never bool
    for a number)."""
    have = _kind(value)
    return have == kind or (kind == "float" and have == "int")


def _element_kind(items: list[Any]) -> str | None:
    """The one kind of every element of a non-empty homogeneous list (int and float mixed
    count as float), else None."""
    kinds = {_kind(item) for item in items}
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else None


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


@dataclass(frozen=True)
class _Reference:
    """What overrides of ``preset`` are checked against: its values first, then those of the
    study's other presets (so quick takes a key only paper has, e.g. a named variant)."""

    study: str
    preset: str
    presets: Mapping[str, Mapping[str, Any]]

    def lookup(self, parts: list[str]) -> tuple[str, Any]:
        """(preset, value) of the dotted key ``parts``; None as the value below an empty
        mapping, which takes any key and value."""
        for name in (self.preset, *(p for p in self.presets if p != self.preset)):
            node: Any = self.presets[name]
            for depth, part in enumerate(parts):
                if isinstance(node, Mapping) and not node and depth:
                    return name, None
                if not isinstance(node, Mapping) or part not in node:
                    break
                node = node[part]
            else:
                return name, node
        raise self.unknown(".".join(parts))

    def unknown(self, key: str) -> UsageError:
        known = list(dict.fromkeys(k for cfg in self.presets.values() for k in _all_keys(cfg)))
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        hint = (f"closest: {', '.join(repr(k) for k in close)}" if close else
                f"`hepchain {self.study} settings --preset {self.preset}` lists them all")
        return UsageError(f"{key!r} is not a setting of {self.study}/{self.preset}; {hint}.")


def _all_keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, Mapping):
            keys.extend(_all_keys(value, f"{prefix}{key}."))
    return keys


def _check(parts: list[str], value: Any, reference: _Reference) -> None:
    """Refuse ``value`` for the dotted key ``parts`` unless it has the type of the value it
    replaces: bool only for bool; int for int; int or float for float; str for str; a list
    for a list (with the element type of a non-empty homogeneous default list); a mapping for
    a mapping, checked key by key; anything for null."""
    preset, default = reference.lookup(parts)
    if default is None:
        return
    key, kind = ".".join(parts), _kind(default)

    def refuse(words: str) -> UsageError:
        return UsageError(f"{key} must be {words} ({preset} has {_show(default)}), "
                          f"got {_show(value)}.")

    if not _fits(value, kind):
        raise refuse(_KIND_NAMES.get(kind, (f"a {kind}",))[0])
    element = _element_kind(default) if kind == "list" and default else None
    if element and not all(_fits(item, element) for item in value):
        raise refuse(f"a list of {_KIND_NAMES.get(element, ('', f'{element} values'))[1]}")
    if kind == "mapping":
        for sub, sub_value in value.items():
            _check([*parts, str(sub)], sub_value, reference)


def preset_config(presets: Mapping[str, Mapping[str, Any]], preset: str,
                  overrides: Mapping[str, Any] | None = None, *, study: str) -> dict[str, Any]:
    """The config of ``preset`` with ``overrides`` (dotted key -> value) applied in order.

    ``{"train.epochs": 3}`` changes one setting and keeps the rest; a key whose value is a
    mapping takes a mapping, which replaces that whole block. A key must be a setting of one
    of the study's presets and its value must have the type of that setting in ``preset``
    (else in the first preset that has it); otherwise one sentence (:class:`UsageError`).
    """
    if preset not in presets:
        raise UsageError(f"Study {study!r} has no preset {preset!r}; choose one of "
                         f"{sorted(presets)}.")
    reference = _Reference(study, preset, presets)
    config = copy.deepcopy(dict(presets[preset]))
    for key, value in (overrides or {}).items():
        parts = key.split(".")
        _check(parts, value, reference)
        block = config
        for part in parts[:-1]:
            if not isinstance(block.get(part), dict):
                block[part] = {}
            block = block[part]
        block[parts[-1]] = copy.deepcopy(value)
    return config
